"""OCPP connector status → provincial ``ConnectorStatusInfo.Status`` (ocpp-bridge §5), as tables. Pure.

A connector's provincial Status is decided in two steps:

1. ``provincial_status``: its own OCPP status through the table of its charger's OCPP version (2.0.1 ``Occupied``
   is refined by the chargingState of the transaction running on it);
2. ``effective_status``: the charger-wide overrides. Offline beats everything (0); a charger-level fault
   (1.6 connectorId 0 / 2.0.1 evseId 0 reporting Faulted or Unavailable) makes every connector 255 until that
   charger-level status is replaced by a newer one that is not a fault (Available).

A change of the effective Status of a configured connector is one notification_stationStatus push (D9,
``status_push``); a connector that never reported a status is not decided and not pushed.

The latest charger timestamp wins: a status report older than the one applied for that connector is logged but
changes nothing (``apply_report``). A report with the same timestamp as the applied one is applied (arrival order).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from edge_bridge.domain.events import ConnectorStatusReported, Reading
from edge_bridge.domain.pushes import STATION_STATUS, Push, Pushes

OFFLINE = 0
IDLE = 1
OCCUPIED = 2
CHARGING = 3
RESERVED = 4
FAULT = 255
UNKNOWN = OFFLINE  # no status reported yet (or a text outside the tables): the province is told "not available"

V16 = "1.6"
V201 = "2.0.1"

STATUS_16: Mapping[str, int] = {
    "Available": IDLE,
    "Preparing": OCCUPIED,
    "Charging": CHARGING,
    "SuspendedEV": CHARGING,
    "SuspendedEVSE": CHARGING,
    "Finishing": OCCUPIED,
    "Reserved": RESERVED,
    "Unavailable": FAULT,
    "Faulted": FAULT,
}

STATUS_201: Mapping[str, int] = {
    "Available": IDLE,
    "Occupied": OCCUPIED,  # refined by CHARGING_STATE_201
    "Reserved": RESERVED,
    "Unavailable": FAULT,
    "Faulted": FAULT,
}

# 2.0.1 connectorStatus Occupied, by the chargingState of the transaction on the EVSE ("" = no transaction)
CHARGING_STATE_201: Mapping[str, int] = {
    "": OCCUPIED,
    "EVConnected": OCCUPIED,
    "Idle": OCCUPIED,
    "Charging": CHARGING,
    "SuspendedEV": CHARGING,
    "SuspendedEVSE": CHARGING,
}

TABLES: Mapping[str, Mapping[str, int]] = {V16: STATUS_16, V201: STATUS_201}
ANY_VERSION: Mapping[str, int] = {**STATUS_16, **STATUS_201}  # a charger whose version we do not know yet

NO_SENSOR = 0  # ParkStatus / LockStatus: unknown (no parking or lock sensor)

CHARGER_LEVEL_FAULTS = frozenset({"Faulted", "Unavailable"})
CHARGER_LEVEL_EVSE = 0


def ocpp_version(text: str) -> str:
    """``ocpp1.6``/``1.6`` → ``1.6``, ``ocpp2.0.1``/``2.0.1`` → ``2.0.1``; anything else unchanged."""
    return text.removeprefix("ocpp")


REFINED_BY_CHARGING_STATE = "Occupied"  # 2.0.1: the only status whose meaning depends on the transaction


def provincial_status(version: str, ocpp_status: str, charging_state: str = "") -> int:
    """A connector's own provincial Status from its OCPP status (§5 tables)."""
    if ocpp_status == REFINED_BY_CHARGING_STATE:
        return CHARGING_STATE_201.get(charging_state, OCCUPIED)
    return TABLES.get(version, ANY_VERSION).get(ocpp_status, UNKNOWN)


def effective_status(own: int, charger_level_fault: bool, offline: bool) -> int:
    """The Status the province sees: offline (0) over a charger-level fault (255) over the connector's own."""
    if offline:
        return OFFLINE
    if charger_level_fault:
        return FAULT
    return own


def is_charger_level(evse: int) -> bool:
    """1.6 connectorId 0 / 2.0.1 evseId 0: the whole charger."""
    return evse == CHARGER_LEVEL_EVSE


def is_charger_level_fault(ocpp_status: str) -> bool:
    """Whether the charger-level status makes every connector of the charger 255."""
    return ocpp_status in CHARGER_LEVEL_FAULTS


def is_offline(last_seen: datetime | None, now: datetime, offline_after_s: float) -> bool:
    """Silent for ``offline_after_s`` (or never heard from)."""
    return last_seen is None or (now - last_seen).total_seconds() >= offline_after_s


def supersedes(at: datetime, applied_at: datetime | None) -> bool:
    """The latest charger timestamp wins; an equal one is applied (arrival order)."""
    return applied_at is None or at >= applied_at


@dataclass(frozen=True)
class ConnectorState:
    """One connector as stored: its applied OCPP status, the provincial Status last decided, live readings."""

    charger: str
    evse: int
    connector: int
    ocpp_status: str = ""
    error_code: str = ""
    info: str = ""
    vendor_error_code: str = ""
    status_at: datetime | None = None  # charger time of the applied status
    status_received_at: datetime | None = None
    provincial_status: int | None = None  # effective Status last decided; None: never decided
    power_w: Decimal | None = None
    soc: Decimal | None = None
    current_a: Decimal | None = None
    voltage_v: Decimal | None = None
    readings_at: datetime | None = None


@dataclass(frozen=True)
class StatusChange:
    """The provincial Status of one connector moved from ``before`` (None: first decision) to ``after``."""

    charger: str
    evse: int
    connector: int
    before: int | None
    after: int


@dataclass(frozen=True)
class ConnectorOutcome:
    """A re-decided connector: the state to store, the change (None: same Status), and what to push."""

    state: ConnectorState
    change: StatusChange | None = None
    pushes: Pushes = ()  # notification_stationStatus of ``change``, when the connector is configured


AVAILABLE = "Available"  # the same word in 1.6 and 2.0.1


def apply_report(state: ConnectorState, report: ConnectorStatusReported) -> ConnectorState | None:
    """The state with ``report`` applied, or None when an newer status is already applied (older-timestamp rule)."""
    if not supersedes(report.at, state.status_at):
        return None
    if report.status == AVAILABLE:  # nothing plugged in: the last charge's power and SoC are history, not live
        state = replace(state, power_w=None, soc=None, current_a=None, voltage_v=None)
    return replace(
        state,
        ocpp_status=report.status,
        error_code=report.error_code,
        info=report.info,
        vendor_error_code=report.vendor_error_code,
        status_at=report.at,
        status_received_at=report.received_at,
    )


def apply_readings(state: ConnectorState, readings: tuple[Reading, ...]) -> ConnectorState:
    """Live readings: each reading not older than the last applied one replaces the values it carries."""
    for reading in sorted(readings, key=lambda r: r.at):
        if supersedes(reading.at, state.readings_at):
            state = replace(
                state,
                power_w=_or(reading.power_w, state.power_w),
                soc=_or(reading.soc, state.soc),
                current_a=_or(reading.current_a, state.current_a),
                voltage_v=_or(reading.voltage_v, state.voltage_v),
                readings_at=reading.at,
            )
    return state


def live_targets(evse: int, connector: int, known: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The connectors whose live readings a reading addressed to (evse, connector) updates. A 2.0.1 reading for a
    whole EVSE (connector 0, evse not 0) goes to that EVSE's known connectors, or to its connector 1."""
    if connector != 0 or is_charger_level(evse):
        return [(evse, connector)]
    mine = sorted({k for k in known if k[0] == evse and k[1] != 0})
    return mine or [(evse, 1)]


def _or(new: Decimal | None, old: Decimal | None) -> Decimal | None:
    return old if new is None else new


def restatus(
    state: ConnectorState,
    *,
    version: str,
    charger_level_fault: bool,
    offline: bool,
    charging_state: str = "",
    connector_id: str | None = None,
) -> ConnectorOutcome:
    """Decide the connector's effective Status again; ``charging_state`` is that of its open 2.0.1 transaction.

    A connector that never reported a status is not decided (the province hears of it when it reports). A change
    of a configured connector (``connector_id``: its provincial ConnectorID) is pushed (D9)."""
    if not state.ocpp_status:
        return ConnectorOutcome(state)
    own = provincial_status(version, state.ocpp_status, charging_state)
    fault = charger_level_fault and not is_charger_level(state.evse)
    after = effective_status(own, fault, offline)
    if after == state.provincial_status:
        return ConnectorOutcome(state)
    change = StatusChange(state.charger, state.evse, state.connector, state.provincial_status, after)
    pushes = () if connector_id is None else (status_push(connector_id, after),)
    return ConnectorOutcome(replace(state, provincial_status=after), change, pushes)


def connector_status_info(connector_id: str, value: int) -> dict[str, Any]:
    """One ConnectorStatusInfo (§4.3, §4.8): pushed on a change and answered to query_station_status alike."""
    return {"ConnectorID": connector_id, "Status": value, "ParkStatus": NO_SENSOR, "LockStatus": NO_SENSOR}


def status_push(connector_id: str, value: int) -> Push:
    """notification_stationStatus of one connector (D9), keyed by its ConnectorID so its pushes stay in order."""
    return Push(STATION_STATUS, connector_id, {"ConnectorStatusInfo": connector_status_info(connector_id, value)})

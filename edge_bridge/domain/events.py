"""Normalized charger events: what OCPP 1.6J and 2.0.1 messages mean, in one vocabulary for both versions.

``charger/normalize.py`` is the only producer (the only code that knows OCPP field names); ``bridge.py`` applies
them to the store in one transaction. Pure values: frozen, times aware UTC, energy in Wh as ``Decimal``.

Connector addressing: ``evse`` is the 1.6 connectorId (0 = the whole charger) or the 2.0.1 evseId (0 = the whole
station); ``connector`` is the 2.0.1 connectorId within the EVSE (1 for 1.6).

Every event keeps ``at`` (the charger's timestamp after the clock rules of ocpp-bridge §3) and ``received_at``
(when the bridge got it). ``flags`` records sanity problems (``clock_no_offset``, ``clock_replaced``, ...);
they never make an event fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

Flags = tuple[str, ...]


@dataclass(frozen=True)
class Reading:
    """One sampled moment of a connector, from a MeterValue (§4). None: not reported in that sample."""

    at: datetime
    energy_wh: Decimal | None = None  # the Energy.Active.Import.Register (or the sum of its phases)
    power_w: Decimal | None = None
    soc: Decimal | None = None
    current_a: Decimal | None = None
    voltage_v: Decimal | None = None
    context: str = ""  # Sample.Periodic, Transaction.Begin, Transaction.End, ...
    raw_skipped: tuple[str, ...] = ()  # values that could not be parsed, kept verbatim (and SignedData)


@dataclass(frozen=True)
class ChargerBooted:
    charger: str
    received_at: datetime
    vendor: str = ""
    model: str = ""
    serial: str = ""
    firmware: str = ""


@dataclass(frozen=True)
class ChargerSeen:
    """Heartbeat, or any frame that proves the charger is alive."""

    charger: str
    received_at: datetime


@dataclass(frozen=True)
class ConnectorStatusReported:
    """1.6 StatusNotification or 2.0.1 StatusNotification (connectorStatus)."""

    charger: str
    evse: int
    connector: int
    status: str  # OCPP status text: Available, Preparing, Charging, Occupied, Faulted, ...
    at: datetime
    received_at: datetime
    error_code: str = "NoError"  # 1.6 errorCode; "NoError" for 2.0.1
    info: str = ""
    vendor_error_code: str = ""
    flags: Flags = ()


@dataclass(frozen=True)
class MeterSampled:
    """1.6 MeterValues (with or without a transactionId) or readings outside a transaction."""

    charger: str
    evse: int
    connector: int
    readings: tuple[Reading, ...]
    received_at: datetime
    transaction_ref: str | None = None  # 1.6 transactionId as text
    flags: Flags = ()


SessionKind = Literal["started", "updated", "ended"]


@dataclass(frozen=True)
class SessionEvent:
    """A transaction report of either version.

    1.6: StartTransaction → ``started`` with ``transaction_ref=None`` (the bridge allocates the id) and
    ``meter_wh=meterStart``; StopTransaction → ``ended`` with ``transaction_ref=str(transactionId)``,
    ``meter_wh=meterStop`` and the transactionData readings. 2.0.1: each TransactionEvent → its eventType, keyed by
    (transactionId, seqNo), its meterValue readings, and the chargingState it reports.
    """

    charger: str
    kind: SessionKind
    at: datetime
    received_at: datetime
    transaction_ref: str | None = None
    seq_no: int | None = None  # 2.0.1 only
    evse: int | None = None
    connector: int | None = None
    id_tag: str = ""
    meter_wh: Decimal | None = None  # 1.6 meterStart / meterStop
    readings: tuple[Reading, ...] = ()
    stop_reason: str = ""  # OCPP text: Local, Remote, EVDisconnected, ... ("" when not given)
    charging_state: str = ""  # 2.0.1 transactionInfo.chargingState
    trigger_reason: str = ""  # 2.0.1
    offline: bool = False  # 2.0.1 offline flag: a replay of queued events
    flags: Flags = ()


@dataclass(frozen=True)
class FaultReported:
    """2.0.1 NotifyEvent on a problem variable: raised (``active``) or cleared (§7)."""

    charger: str
    evse: int
    connector: int
    component: str
    variable: str
    active: bool
    at: datetime
    received_at: datetime
    detail: str = ""
    flags: Flags = field(default=())


Event = ChargerBooted | ChargerSeen | ConnectorStatusReported | MeterSampled | SessionEvent | FaultReported

"""OCPP → provincial Status (ocpp-bridge §5): a row per table line, the charger-wide overrides, the timestamp rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from edge_bridge.domain import status
from edge_bridge.domain.events import ConnectorStatusReported, Reading
from edge_bridge.domain.status import (
    ConnectorState,
    StatusChange,
    apply_readings,
    apply_report,
    effective_status,
    provincial_status,
    restatus,
)

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


# ocpp-bridge §5, written out by hand: (OCPP status, provincial Status) and, for 2.0.1, the chargingState too
ROWS_16: list[tuple[str, int]] = [
    ("Available", 1),
    ("Preparing", 2),
    ("Charging", 3),
    ("SuspendedEV", 3),
    ("SuspendedEVSE", 3),
    ("Finishing", 2),
    ("Reserved", 4),
    ("Unavailable", 255),
    ("Faulted", 255),
]
ROWS_201: list[tuple[str, str, int]] = [
    ("Available", "", 1),
    ("Occupied", "", 2),  # no transaction
    ("Occupied", "EVConnected", 2),
    ("Occupied", "Idle", 2),
    ("Occupied", "Charging", 3),
    ("Occupied", "SuspendedEV", 3),
    ("Occupied", "SuspendedEVSE", 3),
    ("Reserved", "", 4),
    ("Unavailable", "", 255),
    ("Faulted", "", 255),
]


@pytest.mark.parametrize(("ocpp", "expected"), ROWS_16)
def test_ocpp16_table(ocpp: str, expected: int) -> None:
    assert provincial_status("1.6", ocpp) == expected


@pytest.mark.parametrize(("ocpp", "charging_state", "expected"), ROWS_201)
def test_ocpp201_table(ocpp: str, charging_state: str, expected: int) -> None:
    assert provincial_status("2.0.1", ocpp, charging_state) == expected


def test_every_table_row_is_tested() -> None:
    assert len(status.STATUS_16) == 9
    assert len(status.STATUS_201) == 5
    assert len(status.CHARGING_STATE_201) == 6
    assert set(status.STATUS_16) == {ocpp for ocpp, _ in ROWS_16}
    assert dict(status.STATUS_16) == dict(ROWS_16)
    assert set(status.STATUS_201) == {ocpp for ocpp, _, _ in ROWS_201}
    assert dict(status.STATUS_201) == {ocpp: code for ocpp, state, code in ROWS_201 if state == ""}
    occupied = {state: code for ocpp, state, code in ROWS_201 if ocpp == "Occupied"}
    assert set(status.CHARGING_STATE_201) == set(occupied)
    assert dict(status.CHARGING_STATE_201) == occupied


def test_no_status_yet_or_an_unknown_text_is_offline() -> None:
    assert provincial_status("1.6", "") == 0
    assert provincial_status("1.6", "Exploded") == 0


def test_a_charger_of_unknown_version_uses_both_tables() -> None:
    assert provincial_status("", "Preparing") == 2
    assert provincial_status("", "Occupied", "Charging") == 3


@pytest.mark.parametrize(
    ("own", "fault", "offline", "expected"),
    [
        (1, False, False, 1),
        (3, False, False, 3),
        (1, True, False, 255),  # connector 0 Faulted/Unavailable: every connector 255
        (3, True, False, 255),
        (1, False, True, 0),  # charger offline: every connector 0
        (255, False, True, 0),
        (3, True, True, 0),  # offline wins over a charger-level fault
    ],
)
def test_effective_status(own: int, fault: bool, offline: bool, expected: int) -> None:
    assert effective_status(own, fault, offline) == expected


@pytest.mark.parametrize(("ocpp", "fault"), [("Faulted", True), ("Unavailable", True), ("Available", False)])
def test_charger_level_faults(ocpp: str, fault: bool) -> None:
    assert status.is_charger_level_fault(ocpp) is fault


def test_charger_level_row_keeps_its_own_status() -> None:
    row = ConnectorState("CP", 0, 1, ocpp_status="Faulted")
    assert restatus(row, version="1.6", charger_level_fault=True, offline=False).state.provincial_status == 255
    charging = ConnectorState("CP", 1, 1, ocpp_status="Charging", provincial_status=3)
    outcome = restatus(charging, version="1.6", charger_level_fault=True, offline=False)
    assert outcome.change == StatusChange("CP", 1, 1, 3, 255)
    back = restatus(outcome.state, version="1.6", charger_level_fault=False, offline=False)
    assert back.change == StatusChange("CP", 1, 1, 255, 3)  # connector 0 Available: the connector's own again


def test_restatus_reports_no_change_when_the_value_is_the_same() -> None:
    row = ConnectorState("CP", 1, 1, ocpp_status="Preparing", provincial_status=2)
    outcome = restatus(row, version="1.6", charger_level_fault=False, offline=False)
    assert outcome.change is None
    assert outcome.pushes == ()
    new = ConnectorState("CP", 1, 1, ocpp_status="Preparing")
    first = restatus(new, version="1.6", charger_level_fault=False, offline=False)
    assert first.change == StatusChange("CP", 1, 1, None, 2)


def report(ocpp: str, at: datetime) -> ConnectorStatusReported:
    return ConnectorStatusReported("CP", 1, 1, ocpp, at, at + timedelta(seconds=1), error_code="NoError")


def test_newer_report_applies() -> None:
    applied = apply_report(ConnectorState("CP", 1, 1), report("Preparing", T0))
    assert applied is not None
    newer = apply_report(applied, report("Charging", T0 + timedelta(seconds=5)))
    assert newer is not None
    assert (newer.ocpp_status, newer.status_at) == ("Charging", T0 + timedelta(seconds=5))


def test_older_report_does_not_change_the_status() -> None:
    applied = apply_report(ConnectorState("CP", 1, 1), report("Charging", T0))
    assert applied is not None
    assert apply_report(applied, report("Available", T0 - timedelta(seconds=1))) is None


def test_report_with_the_same_timestamp_applies_in_arrival_order() -> None:
    applied = apply_report(ConnectorState("CP", 1, 1), report("Preparing", T0))
    assert applied is not None
    again = apply_report(applied, report("Available", T0))
    assert again is not None and again.ocpp_status == "Available"


def test_live_readings_latest_wins_and_keep_what_a_reading_lacks() -> None:
    state = ConnectorState("CP", 1, 1)
    state = apply_readings(state, (Reading(T0, power_w=Decimal(7000), soc=Decimal(40)),))
    state = apply_readings(state, (Reading(T0 + timedelta(seconds=60), power_w=Decimal(6500)),))
    state = apply_readings(state, (Reading(T0 - timedelta(seconds=60), power_w=Decimal(1), soc=Decimal(1)),))
    assert (state.power_w, state.soc, state.readings_at) == (Decimal(6500), Decimal(40), T0 + timedelta(seconds=60))


def test_an_available_connector_has_no_live_readings_left() -> None:
    charging = apply_readings(ConnectorState("CP", 1, 1), (Reading(T0, power_w=Decimal(60000), soc=Decimal(80)),))
    finishing = apply_report(charging, report("Finishing", T0 + timedelta(seconds=1)))
    assert finishing is not None and finishing.power_w == Decimal(60000)
    idle = apply_report(finishing, report("Available", T0 + timedelta(seconds=2)))
    assert idle is not None and (idle.power_w, idle.soc, idle.current_a, idle.voltage_v) == (None, None, None, None)


@pytest.mark.parametrize(("text", "version"), [("ocpp1.6", "1.6"), ("1.6", "1.6"), ("ocpp2.0.1", "2.0.1")])
def test_ocpp_version_names(text: str, version: str) -> None:
    assert status.ocpp_version(text) == version


def test_offline_after_silence() -> None:
    assert status.is_offline(None, T0, 120)
    assert not status.is_offline(T0, T0 + timedelta(seconds=119), 120)
    assert status.is_offline(T0, T0 + timedelta(seconds=120), 120)


@pytest.mark.parametrize(
    ("evse", "connector", "known", "targets"),
    [
        (1, 1, [], [(1, 1)]),  # 1.6 connector / 2.0.1 EVSE connector: itself
        (0, 1, [(1, 1)], [(0, 1)]),  # the charger's own meter
        (2, 0, [(1, 1), (2, 1), (2, 2)], [(2, 1), (2, 2)]),  # 2.0.1 whole EVSE: its known connectors
        (2, 0, [(1, 1)], [(2, 1)]),  # none known yet: its connector 1
    ],
)
def test_live_targets(evse: int, connector: int, known: list[tuple[int, int]], targets: list[tuple[int, int]]) -> None:
    assert status.live_targets(evse, connector, known) == targets

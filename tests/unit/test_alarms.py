"""The alarm tables (a test per row) and the AlarmInfos item (D8), checked by the strict mock province."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from edge_bridge.domain import alarms
from simulators.province_checks import check_alarm_report

ROWS_16 = [
    ("ConnectorLockFailure", 13, 1, 2),
    ("GroundFailure", 4, 1, 1),
    ("HighTemperature", 17, 1, 2),
    ("OverCurrentFailure", 31, 1, 2),
    ("OverVoltage", 31, 1, 2),
    ("UnderVoltage", 31, 1, 2),
    ("PowerMeterFailure", 31, 1, 3),
    ("PowerSwitchFailure", 31, 1, 3),
    ("ReaderFailure", 31, 1, 3),
    ("ResetFailure", 31, 1, 3),
    ("InternalError", 31, 1, 3),
    ("OtherError", 31, 1, 3),
    ("WeakSignal", 27, 1, 3),
    ("LocalListConflict", 27, 1, 3),
    ("EVCommunicationError", 101, 2, 3),
]


@pytest.mark.parametrize(("error_code", "code", "kind", "level"), ROWS_16)
def test_every_1_6_error_code_row(error_code: str, code: int, kind: int, level: int) -> None:
    assert alarms.alarm_for_error_code(error_code) == alarms.AlarmKind(code, kind, level)


def test_the_table_has_a_test_for_every_row() -> None:
    assert {row[0] for row in ROWS_16} == set(alarms.ERROR_CODES)


def test_no_error_raises_nothing_and_an_unknown_code_is_a_notice() -> None:
    assert alarms.alarm_for_error_code("NoError") is None and alarms.alarm_for_error_code("") is None
    assert alarms.alarm_for_error_code("VendorSpecial") == alarms.DEVICE_NOTICE


@pytest.mark.parametrize(
    ("component", "variable", "code"),
    [
        ("ConnectorPlugRetentionLock", "Problem", 13),
        ("RCD", "Tripped", 4),
        ("ElectricalFeed", "Problem", 31),
        ("OverCurrentProtection", "Tripped", 31),
        ("TemperatureSensor", "Problem", 17),
        ("ISO15118Ctrlr", "Problem", 101),
        ("EVSE", "OverTemperature", 17),
        ("EVSE", "Tripped", 31),
        ("ChargingStation", "Problem", 31),
        ("Connector", "Fault", 31),
        ("EVSE", "AvailabilityState", 31),
        ("Whatever", "Unheard", 31),
    ],
)
def test_every_2_0_1_problem_variable_row(component: str, variable: str, code: int) -> None:
    assert alarms.alarm_for_variable(component, variable).code == code


def test_offline_is_the_backend_communication_fault() -> None:
    assert alarms.AlarmKind(27, 1, 3) == alarms.OFFLINE


def test_an_alarm_item_passes_the_strict_province_checks() -> None:
    site = alarms.AlarmSite("370202000001", "MA7G5YA24", "MA7G5YA24", "370202000001001", "370202000001001A")
    at = datetime(2026, 1, 5, 7, 30, tzinfo=UTC)
    item = alarms.alarm_info(site, alarms.INSULATION, True, at, ZoneInfo("Asia/Shanghai"), "x" * 300)
    assert (item["AlarmTime"], item["AlarmStatus"], len(item["NoteString"])) == ("2026-01-05 15:30:00", 1, 255)
    assert check_alarm_report({"AlarmInfos": [item]}, "MA7G5YA24") == []

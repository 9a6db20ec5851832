"""When alarms are raised and recovered (ocpp-bridge §7, D8): status errorCodes, 2.0.1 faults, offline; every
alarm_report payload passes the strict mock province."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from edge_bridge.domain import alarm_rules
from edge_bridge.domain.alarm_rules import ActiveAlarm, AlarmChange, on_fault, on_offline, on_status
from edge_bridge.domain.alarms import COMMUNICATION, INSULATION, AlarmSite
from edge_bridge.domain.events import ConnectorStatusReported, FaultReported
from simulators.province_checks import check_alarm_report

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")
SITE = AlarmSite("370202000001", "MA7G5YA24", "MA7G5YA24", "370202000001001", "370202000001001A")


def report(error: str, evse: int = 1, info: str = "", vendor: str = "", second: int = 0) -> ConnectorStatusReported:
    at = T0 + timedelta(seconds=second)
    status = "Available" if error == "NoError" else "Faulted"
    return ConnectorStatusReported("CP", evse, 1, status, at, at, error, info, vendor)


def fault(active: bool, variable: str = "Tripped", component: str = "RCD", second: int = 0) -> FaultReported:
    at = T0 + timedelta(seconds=second)
    return FaultReported("CP", 1, 1, component, variable, active, at, at, detail="actualValue=true")


def raised(changes: Sequence[AlarmChange]) -> list[ActiveAlarm]:
    assert all(c.raised for c in changes)
    return [c.alarm for c in changes]


# ------------------------------------------------------------------------------------------------ 1.6 status


def test_an_error_code_raises_once() -> None:
    (change,) = on_status(report("GroundFailure", info="leak", vendor="E12"), [])
    assert (change.raised, change.at, change.alarm.kind, change.alarm.key) == (
        True, T0, INSULATION, "status|1|1|GroundFailure"
    )  # fmt: skip
    assert change.alarm.note == "GroundFailure; info=leak; vendorErrorCode=E12"
    assert on_status(report("GroundFailure", second=5), [change.alarm]) == ()  # a repeat while active


def test_another_error_code_raises_its_own_alarm() -> None:
    first = raised(on_status(report("GroundFailure"), []))
    second = raised(on_status(report("HighTemperature"), first))
    assert [a.key for a in second] == ["status|1|1|HighTemperature"]


def test_no_error_recovers_every_status_alarm_of_the_connector_and_only_those() -> None:
    active = [
        *raised(on_status(report("GroundFailure"), [])),
        *raised(on_status(report("HighTemperature"), [])),
        *raised(on_status(report("GroundFailure", evse=2), [])),
        *raised(on_fault(fault(True), [])),
    ]
    changes = on_status(report("NoError", second=60), active)
    assert [(c.raised, c.alarm.key, c.at) for c in changes] == [
        (False, "status|1|1|GroundFailure", T0 + timedelta(seconds=60)),
        (False, "status|1|1|HighTemperature", T0 + timedelta(seconds=60)),
    ]


def test_no_error_without_an_active_alarm_changes_nothing() -> None:
    assert on_status(report("NoError"), []) == ()


def test_connector_zero_is_its_own_connector() -> None:
    (change,) = on_status(report("PowerMeterFailure", evse=0), [])
    assert (change.alarm.evse, change.alarm.key) == (0, "status|0|1|PowerMeterFailure")
    assert on_status(report("NoError", evse=1), [change.alarm]) == ()


# ------------------------------------------------------------------------------------------------ 2.0.1 faults


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([True], [True]),  # raise
        ([True, True], [True]),  # a repeat raises nothing
        ([True, False], [True, False]),  # raise, then recover
        ([False], []),  # a clear of nothing active
        ([True, False, False], [True, False]),  # a repeated clear
        ([True, False, True], [True, False, True]),  # it came back
    ],
)
def test_faults_are_idempotent_both_ways(events: list[bool], expected: list[bool]) -> None:
    current: list[ActiveAlarm] = []
    seen = []
    for n, flag in enumerate(events):
        for change in on_fault(fault(flag, second=n), current):
            seen.append(change.raised)
            current = [change.alarm] if change.raised else []
    assert seen == expected


def test_faults_of_different_variables_are_different_alarms() -> None:
    first = raised(on_fault(fault(True, "Tripped"), []))
    assert len(on_fault(fault(True, "Problem", component="EVSE"), first)) == 1
    assert on_fault(fault(False, "Problem", component="EVSE"), first) == ()


def test_a_fault_carries_its_component_variable_and_detail() -> None:
    (alarm,) = raised(on_fault(fault(True), []))
    assert (alarm.key, alarm.note, alarm.kind) == ("fault|1|1|RCD|Tripped", "RCD.Tripped; actualValue=true", INSULATION)


# ------------------------------------------------------------------------------------------------ offline


def test_offline_raises_27_for_the_whole_charger_and_back_recovers() -> None:
    (change,) = on_offline("CP", True, [], T0)
    assert (change.raised, change.alarm.kind, change.alarm.evse, change.alarm.key) == (
        True,
        COMMUNICATION,
        0,
        "offline",
    )
    assert on_offline("CP", True, [change.alarm], T0) == ()  # still offline: nothing again
    (back,) = on_offline("CP", False, [change.alarm], T0 + timedelta(minutes=5))
    assert (back.raised, back.alarm, back.at) == (False, change.alarm, T0 + timedelta(minutes=5))
    assert on_offline("CP", False, [], T0) == ()  # online, nothing active


# ------------------------------------------------------------------------------------------------ the push


@pytest.mark.parametrize("is_raise", [True, False])
def test_alarm_push_passes_the_strict_province(is_raise: bool) -> None:
    (change,) = on_status(report("GroundFailure", info="x" * 300), [])
    push = alarm_rules.alarm_push(AlarmChange(change.alarm, is_raise, T0), SITE, SHANGHAI)
    assert (push.interface, push.key) == ("alarm_report", "370202000001001A")
    (item,) = push.data["AlarmInfos"]
    assert (item["AlarmStatus"], item["AlarmCode"], item["AlarmTime"]) == (int(is_raise), 4, "2024-05-01 16:00:00")
    assert len(item["NoteString"]) == 255
    assert check_alarm_report(push.data, "MA7G5YA24") == []


def test_an_alarm_of_the_whole_equipment_is_keyed_by_the_equipment() -> None:
    (change,) = on_offline("CP", True, [], T0)
    whole = AlarmSite("370202000001", "MA7G5YA24", "MA7G5YA24", "370202000001001", "")
    push = alarm_rules.alarm_push(change, whole, SHANGHAI)
    assert (push.key, push.data["AlarmInfos"][0]["ConnectorID"]) == ("370202000001001", "")
    assert check_alarm_report(push.data, "MA7G5YA24") == []

"""charger/normalize.py: OCPP payloads of both versions → domain events, the clock rules, robustness.

Payloads are written the way the ``ocpp`` library hands them to an ``@on`` handler (snake_case keys at every depth);
the ``*_WIRE`` ones are real camelCase frames run through the library's own ``camel_to_snake_case``, so the shape is
proven rather than assumed.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ocpp.charge_point import camel_to_snake_case

from edge_bridge.charger import normalize
from edge_bridge.charger.normalize import (
    CLOCK_NO_OFFSET,
    CLOCK_REPLACED,
    CLOCK_UNPARSEABLE,
    NormalizeError,
    charger_time,
)
from edge_bridge.domain.events import (
    ChargerBooted,
    ChargerSeen,
    ConnectorStatusReported,
    Event,
    FaultReported,
    MeterSampled,
    Reading,
    SessionEvent,
)

D = Decimal
RECEIVED = datetime(2024, 5, 1, 8, 5, tzinfo=UTC)
T = "2024-05-01T08:00:00Z"
AT = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
CP = "CP-1"

Normalizer = Callable[[str, Mapping[str, Any], datetime], tuple[Event, ...]]


def wire(frame: dict[str, Any]) -> dict[str, Any]:
    """A camelCase OCPP payload as the library delivers it to a handler."""
    converted: dict[str, Any] = camel_to_snake_case(frame)
    return converted


def one(events: tuple[Event, ...]) -> Any:
    assert len(events) == 1
    return events[0]


# ------------------------------------------------------------------------------------------------ clock (§3)


@pytest.mark.parametrize(
    ("text", "expected", "flags"),
    [
        pytest.param("2024-05-01T08:00:00Z", AT, (), id="Z"),
        pytest.param("2024-05-01T08:00:00z", AT, (), id="lowercase-z"),
        pytest.param("2024-05-01T08:00:00+00:00", AT, (), id="+00:00"),
        pytest.param("2024-05-01T16:00:00+08:00", AT, (), id="+08:00"),
        pytest.param("2024-05-01T16:00:00+0800", AT, (), id="+0800"),
        pytest.param("2024-05-01T16:00:00+08", AT, (), id="+08"),
        pytest.param("2024-05-01T03:00:00-05:00", AT, (), id="-05:00"),
        pytest.param("2024-05-01T13:45:00+05:45", AT, (), id="+05:45"),
        pytest.param("2024-05-01T08:00:00.123Z", AT.replace(microsecond=123000), (), id="millis"),
        pytest.param("2024-05-01T08:00:00.1Z", AT.replace(microsecond=100000), (), id="one-digit-fraction"),
        pytest.param("2024-05-01T08:00:00.123456Z", AT.replace(microsecond=123456), (), id="micros"),
        pytest.param("2024-05-01T08:00:00.123456789Z", AT.replace(microsecond=123456), (), id="nanos-truncated"),
        pytest.param("2024-05-01T08:00:00.9999999999Z", AT.replace(microsecond=999999), (), id="long-fraction"),
        pytest.param("2024-05-01T08:00:00,5Z", AT.replace(microsecond=500000), (), id="decimal-comma"),
        pytest.param("2024-05-01 08:00:00Z", AT, (), id="space-separator"),
        pytest.param("2024-05-01T08:00Z", AT, (), id="no-seconds"),
        pytest.param(" 2024-05-01T08:00:00Z ", AT, (), id="surrounding-spaces"),
        pytest.param("2024-05-01T08:00:00", AT, (CLOCK_NO_OFFSET,), id="no-offset-taken-as-UTC"),
        pytest.param("2024-05-01T08:00:00.5", AT.replace(microsecond=500000), (CLOCK_NO_OFFSET,), id="no-offset-frac"),
        pytest.param("2024-05-01T02:05:00Z", RECEIVED - timedelta(hours=6), (), id="hours-in-the-past-kept"),
        pytest.param("2015-01-01T00:00:00Z", datetime(2015, 1, 1, tzinfo=UTC), (), id="2015-kept"),
        pytest.param("2024-05-01T08:15:00Z", RECEIVED + timedelta(minutes=10), (), id="10-min-ahead-kept"),
        pytest.param("2014-12-31T23:59:59Z", RECEIVED, (CLOCK_REPLACED,), id="before-2015-replaced"),
        pytest.param("2015-01-01T05:00:00+08:00", RECEIVED, (CLOCK_REPLACED,), id="before-2015-in-UTC"),
        pytest.param("1970-01-01T00:00:00Z", RECEIVED, (CLOCK_REPLACED,), id="epoch-replaced"),
        pytest.param("2024-05-01T08:15:01Z", RECEIVED, (CLOCK_REPLACED,), id="future-replaced"),
        pytest.param("2030-01-01T00:00:00Z", RECEIVED, (CLOCK_REPLACED,), id="far-future-replaced"),
        pytest.param("2024-05-01T16:05:00", RECEIVED, (CLOCK_NO_OFFSET, CLOCK_REPLACED), id="local-time-no-offset"),
        pytest.param("0001-01-01T00:00:00+05:00", RECEIVED, (CLOCK_REPLACED,), id="year-1-overflow"),
        pytest.param("9999-12-31T23:59:59-05:00", RECEIVED, (CLOCK_REPLACED,), id="year-9999-overflow"),
        pytest.param(None, RECEIVED, (CLOCK_UNPARSEABLE,), id="missing"),
        pytest.param("", RECEIVED, (CLOCK_UNPARSEABLE,), id="empty"),
        pytest.param("yesterday", RECEIVED, (CLOCK_UNPARSEABLE,), id="garbage"),
        pytest.param("2024-05-01", RECEIVED, (CLOCK_UNPARSEABLE,), id="date-only"),
        pytest.param("2024-13-01T08:00:00Z", RECEIVED, (CLOCK_UNPARSEABLE,), id="month-13"),
        pytest.param("2024-02-30T08:00:00Z", RECEIVED, (CLOCK_UNPARSEABLE,), id="feb-30"),
        pytest.param("2024-05-01T24:00:00Z", RECEIVED, (CLOCK_UNPARSEABLE,), id="hour-24"),
        pytest.param("2024-05-01T08:00:60Z", RECEIVED, (CLOCK_UNPARSEABLE,), id="leap-second"),
        pytest.param("2024-05-01T08:00:00+24:00", RECEIVED, (CLOCK_UNPARSEABLE,), id="offset-24h"),
        pytest.param("2024-05-01T08:00:00+08:60", RECEIVED, (CLOCK_UNPARSEABLE,), id="offset-60-min"),
        pytest.param("1714550400", RECEIVED, (CLOCK_UNPARSEABLE,), id="unix-seconds"),
        pytest.param("2024-05-01T08:00:00Zjunk", RECEIVED, (CLOCK_UNPARSEABLE,), id="trailing-junk"),
        pytest.param("２０２４-05-01T08:00:00Z", RECEIVED, (CLOCK_UNPARSEABLE,), id="full-width-digits"),
    ],
)
def test_charger_time(text: str | None, expected: datetime, flags: tuple[str, ...]) -> None:
    at, got_flags = charger_time(text, RECEIVED)
    assert (at, got_flags) == (expected, flags)
    assert at.tzinfo is UTC


def test_charger_time_returns_utc_for_a_non_utc_receive_time() -> None:
    received = RECEIVED.astimezone(timezone(timedelta(hours=8)))
    at, flags = charger_time(None, received)
    assert (at, at.tzinfo, flags) == (RECEIVED, UTC, (CLOCK_UNPARSEABLE,))


def test_charger_time_refuses_a_naive_receive_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        charger_time(T, datetime(2024, 5, 1, 8, 5))


# ------------------------------------------------------------------------------------------------- 1.6 Boot etc.

V16_BOOT_WIRE = {
    "chargePointVendor": "Acme",
    "chargePointModel": "DC60",
    "chargePointSerialNumber": "SN-0001",
    "chargeBoxSerialNumber": "BOX-1",
    "firmwareVersion": "1.2.3",
    "iccid": "8986",
    "meterType": "DCM",
}


def test_v16_boot_from_the_wire() -> None:
    payload = wire(V16_BOOT_WIRE)
    assert "charge_point_serial_number" in payload
    booted = one(normalize.v16_boot_notification(CP, payload, RECEIVED))
    assert booted == ChargerBooted(CP, RECEIVED, vendor="Acme", model="DC60", serial="SN-0001", firmware="1.2.3")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"charge_point_vendor": "A", "charge_point_model": "M"}, ChargerBooted(CP, RECEIVED, vendor="A", model="M")),
        (
            {"charge_point_vendor": "A", "charge_point_model": "M", "charge_box_serial_number": "BOX"},
            ChargerBooted(CP, RECEIVED, vendor="A", model="M", serial="BOX"),
        ),
        ({}, ChargerBooted(CP, RECEIVED)),
        ({"charge_point_vendor": 7, "charge_point_model": ["x"]}, ChargerBooted(CP, RECEIVED, vendor="7")),
    ],
    ids=["minimal", "chargeBox-serial-fallback", "empty", "mistyped"],
)
def test_v16_boot(payload: dict[str, Any], expected: ChargerBooted) -> None:
    assert normalize.v16_boot_notification(CP, payload, RECEIVED) == (expected,)


@pytest.mark.parametrize("fn", [normalize.v16_heartbeat, normalize.v201_heartbeat])
def test_heartbeat(fn: Normalizer) -> None:
    assert fn(CP, {}, RECEIVED) == (ChargerSeen(CP, RECEIVED),)
    assert fn(CP, {"junk": 1}, RECEIVED) == (ChargerSeen(CP, RECEIVED),)


# ------------------------------------------------------------------------------------------- 1.6 StatusNotification


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            {"connector_id": 1, "error_code": "NoError", "status": "Preparing", "timestamp": T},
            ConnectorStatusReported(CP, 1, 1, "Preparing", AT, RECEIVED),
            id="preparing",
        ),
        pytest.param(
            {
                "connector_id": 2,
                "error_code": "GroundFailure",
                "status": "Faulted",
                "info": "RCD tripped",
                "vendor_error_code": "E42",
                "vendor_id": "acme",
                "timestamp": T,
            },
            ConnectorStatusReported(CP, 2, 1, "Faulted", AT, RECEIVED, "GroundFailure", "RCD tripped", "E42"),
            id="faulted-with-error-code",
        ),
        pytest.param(
            {"connector_id": 0, "error_code": "NoError", "status": "Unavailable", "timestamp": T},
            ConnectorStatusReported(CP, 0, 1, "Unavailable", AT, RECEIVED),
            id="connector-0-whole-charger",
        ),
        pytest.param(
            {"connector_id": 1, "error_code": "NoError", "status": "Available"},
            ConnectorStatusReported(CP, 1, 1, "Available", RECEIVED, RECEIVED, flags=(CLOCK_UNPARSEABLE,)),
            id="no-timestamp",
        ),
        pytest.param(
            {"connector_id": "1", "status": " Available ", "timestamp": T},
            ConnectorStatusReported(CP, 1, 1, "Available", AT, RECEIVED, flags=("error_code_missing",)),
            id="string-connector-and-missing-error-code",
        ),
        pytest.param(
            {"connector_id": 1, "error_code": "NoError", "status": "Charging", "timestamp": T, "info": {"x": 1}},
            ConnectorStatusReported(CP, 1, 1, "Charging", AT, RECEIVED, flags=("info_invalid",)),
            id="mistyped-info",
        ),
    ],
)
def test_v16_status_notification(payload: dict[str, Any], expected: ConnectorStatusReported) -> None:
    assert normalize.v16_status_notification(CP, payload, RECEIVED) == (expected,)


def test_v16_status_from_the_wire() -> None:
    frame = {"connectorId": 1, "errorCode": "OtherError", "status": "Faulted", "vendorErrorCode": "7", "timestamp": T}
    status = one(normalize.v16_status_notification(CP, wire(frame), RECEIVED))
    assert (status.evse, status.error_code, status.vendor_error_code) == (1, "OtherError", "7")


@pytest.mark.parametrize(
    "payload",
    [
        {"error_code": "NoError", "status": "Available"},
        {"connector_id": "one", "error_code": "NoError", "status": "Available"},
        {"connector_id": 1.5, "error_code": "NoError", "status": "Available"},
        {"connector_id": True, "error_code": "NoError", "status": "Available"},
        {"connector_id": 1, "error_code": "NoError"},
        {"connector_id": 1, "error_code": "NoError", "status": ""},
        {"connector_id": 1, "error_code": "NoError", "status": None},
    ],
    ids=["no-connector", "word-connector", "fractional-connector", "bool-connector", "no-status", "empty", "null"],
)
def test_v16_status_essentials(payload: dict[str, Any]) -> None:
    with pytest.raises(NormalizeError, match="StatusNotification"):
        normalize.v16_status_notification(CP, payload, RECEIVED)


# ---------------------------------------------------------------------------------------------- 1.6 MeterValues

V16_METER_WIRE = {
    "connectorId": 1,
    "transactionId": 42,
    "meterValue": [
        {
            "timestamp": T,
            "sampledValue": [
                {
                    "value": "30.72",
                    "context": "Sample.Periodic",
                    "format": "Raw",
                    "measurand": "Energy.Active.Import.Register",
                    "location": "Outlet",
                    "unit": "kWh",
                },
                {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW", "context": "Sample.Periodic"},
                {"value": "55", "measurand": "SoC", "unit": "Percent", "location": "EV", "context": "Sample.Periodic"},
                {"value": "16", "measurand": "Current.Import", "unit": "A", "phase": "L1"},
                {"value": "17", "measurand": "Current.Import", "unit": "A", "phase": "L2"},
                {"value": "230", "measurand": "Voltage", "unit": "V", "phase": "L1-N"},
                {"value": "232", "measurand": "Voltage", "unit": "V", "phase": "L2-N"},
                {"value": "AbCd==", "format": "SignedData", "context": "Sample.Periodic"},
            ],
        }
    ],
}


def test_v16_meter_values_from_the_wire() -> None:
    payload = wire(V16_METER_WIRE)
    assert set(payload) == {"connector_id", "transaction_id", "meter_value"}
    assert "sampled_value" in payload["meter_value"][0]
    sampled = one(normalize.v16_meter_values(CP, payload, RECEIVED))
    expected_reading = Reading(
        at=AT,
        energy_wh=D("30720"),
        power_w=D("7200"),
        soc=D("55"),
        current_a=D("17"),
        voltage_v=D("231"),
        context="Sample.Periodic",
        raw_skipped=("AbCd==",),
    )
    assert sampled == MeterSampled(CP, 1, 1, (expected_reading,), RECEIVED, transaction_ref="42")


def _mv(value: Any = "1500", **extra: Any) -> dict[str, Any]:
    return {"timestamp": T, "sampled_value": [{"value": value, **extra}]}


@pytest.mark.parametrize(
    ("payload", "energies", "ref", "flags"),
    [
        pytest.param({"connector_id": 1, "meter_value": [_mv()]}, [D(1500)], None, (), id="no-transaction"),
        pytest.param(
            {"connector_id": 1, "transaction_id": "7", "meter_value": [_mv(1500)]},
            [D(1500)],
            "7",
            (),
            id="numbers-where-strings-belong",
        ),
        pytest.param(
            {"connector_id": 1, "meter_value": [_mv("1"), _mv("2", unit="kWh")]},
            [D(1), D(2000)],
            None,
            (),
            id="two-meter-values",
        ),
        pytest.param(
            {"connector_id": 1, "transaction_id": "abc", "meter_value": [_mv()]},
            [D(1500)],
            None,
            ("transaction_id_invalid",),
            id="garbage-transaction-id",
        ),
        pytest.param({"connector_id": 1}, [], None, ("meter_value_missing",), id="no-meter-value"),
        pytest.param({"connector_id": 1, "meter_value": {}}, [], None, ("meter_value_invalid",), id="not-a-list"),
        pytest.param(
            {"connector_id": 1, "meter_value": ["x", _mv()]}, [D(1500)], None, ("meter_value_invalid",), id="bad-item"
        ),
        pytest.param(
            {"connector_id": 1, "meter_value": [{"timestamp": T}]},
            [None],
            None,
            ("sampled_value_missing",),
            id="no-sampled-value",
        ),
        pytest.param(
            {"connector_id": 1, "meter_value": [{"timestamp": T, "sampled_value": [3, {"value": "9"}]}]},
            [D(9)],
            None,
            ("sampled_value_invalid",),
            id="bad-sampled-value",
        ),
        pytest.param(
            {"connector_id": 1, "meter_value": [{"timestamp": "2024-05-01T08:00:00", "sampled_value": []}]},
            [None],
            None,
            (CLOCK_NO_OFFSET,),
            id="reading-clock-flag-on-the-event",
        ),
    ],
)
def test_v16_meter_values(
    payload: dict[str, Any], energies: list[Decimal | None], ref: str | None, flags: tuple[str, ...]
) -> None:
    sampled = one(normalize.v16_meter_values(CP, payload, RECEIVED))
    assert [r.energy_wh for r in sampled.readings] == energies
    assert (sampled.transaction_ref, sampled.flags) == (ref, flags)


def test_v16_meter_values_reading_time_goes_through_the_clock() -> None:
    payload = {"connector_id": 1, "meter_value": [{"timestamp": "2010-01-01T00:00:00Z", "sampled_value": []}]}
    sampled = one(normalize.v16_meter_values(CP, payload, RECEIVED))
    assert (sampled.readings[0].at, sampled.flags) == (RECEIVED, (CLOCK_REPLACED,))


def test_v16_meter_values_without_a_connector_are_kept_on_the_whole_charger() -> None:
    (sampled,) = normalize.v16_meter_values(CP, {"meter_value": [_mv()], "transaction_id": 7}, RECEIVED)
    assert isinstance(sampled, MeterSampled)
    assert (sampled.evse, sampled.transaction_ref, len(sampled.readings)) == (0, "7", 1)
    assert "connector_id_missing" in sampled.flags


def test_v16_garbage_and_signed_values_kept_raw() -> None:
    payload = {
        "connector_id": 1,
        "meter_value": [
            {"timestamp": T, "sampled_value": [{"value": "n/a"}, {"value": "x==", "format": "SignedData"}]}
        ],
    }
    reading = one(normalize.v16_meter_values(CP, payload, RECEIVED)).readings[0]
    assert (reading.energy_wh, reading.raw_skipped) == (None, ("n/a", "x=="))


# ------------------------------------------------------------------------------------------- 1.6 Start / Stop


def test_v16_start_transaction_from_the_wire() -> None:
    frame = {"connectorId": 2, "idTag": "04E1A2B3", "meterStart": 1500, "timestamp": T, "reservationId": 3}
    started = one(normalize.v16_start_transaction(CP, wire(frame), RECEIVED))
    assert started == SessionEvent(
        CP, "started", AT, RECEIVED, transaction_ref=None, evse=2, connector=1, id_tag="04E1A2B3", meter_wh=D(1500)
    )


@pytest.mark.parametrize(
    ("payload", "meter_wh", "id_tag", "at", "flags"),
    [
        pytest.param(
            {"connector_id": 1, "id_tag": "T", "meter_start": "1500", "timestamp": T}, D(1500), "T", AT, (), id="str"
        ),
        pytest.param(
            {"connector_id": "1", "id_tag": 1234, "meter_start": 1500.5, "timestamp": T},
            D("1500.5"),
            "1234",
            AT,
            (),
            id="mistyped-but-readable",
        ),
        pytest.param(
            {"connector_id": 1, "id_tag": "T", "timestamp": T}, None, "T", AT, ("meter_start_missing",), id="no-meter"
        ),
        pytest.param(
            {"connector_id": 1, "id_tag": "T", "meter_start": "lots", "timestamp": T},
            None,
            "T",
            AT,
            ("meter_start_invalid",),
            id="bad-meter",
        ),
        pytest.param(
            {"connector_id": 1, "meter_start": 0, "timestamp": T}, D(0), "", AT, ("id_tag_missing",), id="no-id-tag"
        ),
        pytest.param(
            {"connector_id": 1, "id_tag": "T", "meter_start": 5, "timestamp": "2024-04-30T20:00:00+00:00"},
            D(5),
            "T",
            datetime(2024, 4, 30, 20, tzinfo=UTC),
            (),
            id="replayed-hours-later",
        ),
        pytest.param(
            {"connector_id": 1, "id_tag": "T", "meter_start": 5},
            D(5),
            "T",
            RECEIVED,
            (CLOCK_UNPARSEABLE,),
            id="no-timestamp",
        ),
    ],
)
def test_v16_start_transaction(
    payload: dict[str, Any], meter_wh: Decimal | None, id_tag: str, at: datetime, flags: tuple[str, ...]
) -> None:
    started = one(normalize.v16_start_transaction(CP, payload, RECEIVED))
    assert (started.kind, started.transaction_ref, started.evse, started.connector) == ("started", None, 1, 1)
    assert (started.meter_wh, started.id_tag, started.at, started.flags) == (meter_wh, id_tag, at, flags)


def test_v16_start_transaction_without_a_connector_is_kept_on_the_whole_charger() -> None:
    (started,) = normalize.v16_start_transaction(CP, {"id_tag": "T", "meter_start": 5, "timestamp": T}, RECEIVED)
    assert isinstance(started, SessionEvent)
    assert (started.evse, started.id_tag, started.meter_wh) == (0, "T", Decimal(5))
    assert "connector_id_missing" in started.flags


V16_STOP_WIRE = {
    "transactionId": 17,
    "idTag": "04E1A2B3",
    "meterStop": 1234600,
    "timestamp": T,
    "reason": "EVDisconnected",
    "transactionData": [
        {
            "timestamp": "2024-05-01T07:00:00Z",
            "sampledValue": [{"value": "0", "context": "Transaction.Begin", "unit": "Wh"}],
        },
        {
            "timestamp": "2024-05-01T07:30:00Z",
            "sampledValue": [{"value": "1234567.8", "context": "Sample.Periodic", "unit": "Wh"}],
        },
        {
            "timestamp": T,
            "sampledValue": [{"value": "1234.6", "context": "Transaction.End", "unit": "kWh"}],
        },
    ],
}


def test_v16_stop_transaction_from_the_wire() -> None:
    payload = wire(V16_STOP_WIRE)
    assert "transaction_data" in payload
    ended = one(normalize.v16_stop_transaction(CP, payload, RECEIVED))
    assert (ended.kind, ended.transaction_ref, ended.meter_wh, ended.stop_reason) == (
        "ended",
        "17",
        D(1234600),
        "EVDisconnected",
    )
    assert (ended.id_tag, ended.at, ended.evse, ended.connector, ended.flags) == ("04E1A2B3", AT, None, None, ())
    # §9: a Transaction.Begin of 0 then lifetime readings: parsed as they are, the baseline is the rules' job
    assert [(r.context, r.energy_wh) for r in ended.readings] == [
        ("Transaction.Begin", D(0)),
        ("Sample.Periodic", D("1234567.8")),
        ("Transaction.End", D(1234600)),
    ]
    assert [r.at.hour for r in ended.readings] == [7, 7, 8]


@pytest.mark.parametrize(
    ("payload", "ref", "meter_wh", "reason", "flags"),
    [
        pytest.param({"transaction_id": -1, "meter_stop": 5, "timestamp": T}, "-1", D(5), "", (), id="minus-1"),
        pytest.param({"transaction_id": 0, "meter_stop": 5, "timestamp": T}, "0", D(5), "", (), id="zero"),
        pytest.param({"transaction_id": "17", "meter_stop": "5", "timestamp": T}, "17", D(5), "", (), id="strings"),
        pytest.param(
            {"transaction_id": 17, "timestamp": T, "reason": "Local"},
            "17",
            None,
            "Local",
            ("meter_stop_missing",),
            id="no-meter-stop",
        ),
        pytest.param(
            {"transaction_id": 17, "meter_stop": 1499, "timestamp": T, "reason": "Remote"},
            "17",
            D(1499),
            "Remote",
            (),
            id="one-below-start-just-parsed",
        ),
        pytest.param(
            {"transaction_id": 17, "meter_stop": 5, "timestamp": T, "transaction_data": "junk"},
            "17",
            D(5),
            "",
            ("transaction_data_invalid",),
            id="junk-transaction-data",
        ),
    ],
)
def test_v16_stop_transaction(
    payload: dict[str, Any], ref: str, meter_wh: Decimal | None, reason: str, flags: tuple[str, ...]
) -> None:
    ended = one(normalize.v16_stop_transaction(CP, payload, RECEIVED))
    assert (ended.kind, ended.transaction_ref, ended.meter_wh, ended.stop_reason, ended.flags) == (
        "ended",
        ref,
        meter_wh,
        reason,
        flags,
    )


def test_v16_stop_transaction_twice_gives_the_same_event() -> None:
    """§9: the first answer was lost and the charger repeats: normalize is a pure function of the payload."""
    payload = wire(V16_STOP_WIRE)
    before = copy.deepcopy(payload)
    expected = SessionEvent(
        CP,
        "ended",
        AT,
        RECEIVED,
        transaction_ref="17",
        id_tag="04E1A2B3",
        meter_wh=D(1234600),
        readings=(
            Reading(datetime(2024, 5, 1, 7, 0, tzinfo=UTC), energy_wh=D(0), context="Transaction.Begin"),
            Reading(datetime(2024, 5, 1, 7, 30, tzinfo=UTC), energy_wh=D("1234567.8"), context="Sample.Periodic"),
            Reading(AT, energy_wh=D(1234600), context="Transaction.End"),  # 1234.6 kWh
        ),
        stop_reason="EVDisconnected",
    )
    assert normalize.v16_stop_transaction(CP, payload, RECEIVED) == (expected,)
    assert normalize.v16_stop_transaction(CP, payload, RECEIVED) == (expected,)  # the repeat
    assert payload == before  # the payload is not changed by normalizing it


@pytest.mark.parametrize("transaction_id", [None, "abc", 1.5, [], True])
def test_v16_stop_transaction_without_a_readable_id_is_kept_as_an_orphan(transaction_id: Any) -> None:
    payload = {"transaction_id": transaction_id, "meter_stop": 5, "timestamp": T}
    (ended,) = normalize.v16_stop_transaction(CP, payload, RECEIVED)
    assert isinstance(ended, SessionEvent)
    assert (ended.transaction_ref, ended.meter_wh) == ("-1", Decimal(5))
    assert any(flag.startswith("transaction_id_") for flag in ended.flags)


# ---------------------------------------------------------------------------------------------- 2.0.1 Boot, Status

V201_BOOT_WIRE = {
    "chargingStation": {
        "model": "AC22",
        "vendorName": "Acme",
        "serialNumber": "S-201",
        "firmwareVersion": "2.0.1-4",
        "modem": {"iccid": "8986", "imsi": "4600"},
    },
    "reason": "PowerUp",
}


def test_v201_boot_from_the_wire() -> None:
    payload = wire(V201_BOOT_WIRE)
    assert payload["charging_station"]["vendor_name"] == "Acme"
    booted = one(normalize.v201_boot_notification(CP, payload, RECEIVED))
    assert booted == ChargerBooted(CP, RECEIVED, vendor="Acme", model="AC22", serial="S-201", firmware="2.0.1-4")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"charging_station": {"model": "M", "vendor_name": "V"}}, ChargerBooted(CP, RECEIVED, vendor="V", model="M")),
        ({"charging_station": "junk"}, ChargerBooted(CP, RECEIVED)),
        ({}, ChargerBooted(CP, RECEIVED)),
    ],
    ids=["minimal", "junk-station", "empty"],
)
def test_v201_boot(payload: dict[str, Any], expected: ChargerBooted) -> None:
    assert normalize.v201_boot_notification(CP, payload, RECEIVED) == (expected,)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            {"timestamp": T, "connector_status": "Occupied", "evse_id": 1, "connector_id": 1},
            ConnectorStatusReported(CP, 1, 1, "Occupied", AT, RECEIVED),
            id="occupied",
        ),
        pytest.param(
            {"timestamp": T, "connector_status": "Faulted", "evse_id": 2, "connector_id": 3},
            ConnectorStatusReported(CP, 2, 3, "Faulted", AT, RECEIVED),
            id="faulted-evse-2-connector-3",
        ),
        pytest.param(
            {"timestamp": "2024-05-01T08:00:00", "connector_status": "Available", "evse_id": "1", "connector_id": "1"},
            ConnectorStatusReported(CP, 1, 1, "Available", AT, RECEIVED, flags=(CLOCK_NO_OFFSET,)),
            id="strings-and-no-offset",
        ),
    ],
)
def test_v201_status_notification(payload: dict[str, Any], expected: ConnectorStatusReported) -> None:
    assert normalize.v201_status_notification(CP, payload, RECEIVED) == (expected,)


def test_v201_status_from_the_wire() -> None:
    frame = {"timestamp": T, "connectorStatus": "Reserved", "evseId": 1, "connectorId": 2}
    status = one(normalize.v201_status_notification(CP, wire(frame), RECEIVED))
    assert (status.evse, status.connector, status.status, status.error_code) == (1, 2, "Reserved", "NoError")


@pytest.mark.parametrize(
    "payload",
    [
        {"timestamp": T, "connector_status": "Occupied", "connector_id": 1},
        {"timestamp": T, "connector_status": "Occupied", "evse_id": 1},
        {"timestamp": T, "evse_id": 1, "connector_id": 1},
    ],
    ids=["no-evse", "no-connector", "no-status"],
)
def test_v201_status_essentials(payload: dict[str, Any]) -> None:
    with pytest.raises(NormalizeError):
        normalize.v201_status_notification(CP, payload, RECEIVED)


# ------------------------------------------------------------------------------------------- 2.0.1 MeterValues


def test_v201_meter_values_from_the_wire() -> None:
    frame = {
        "evseId": 1,
        "meterValue": [
            {
                "timestamp": T,
                "sampledValue": [
                    {
                        "value": 12.345,
                        "measurand": "Energy.Active.Import.Register",
                        "context": "Sample.Periodic",
                        "unitOfMeasure": {"unit": "Wh", "multiplier": 3},
                        "signedMeterValue": {
                            "signedMeterData": "SIGNED",
                            "signingMethod": "ECDSA",
                            "encodingMethod": "OCMF",
                            "publicKey": "PK",
                        },
                    },
                    {"value": 3.7, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "kW"}},
                    {"value": 61, "measurand": "SoC", "unitOfMeasure": {"unit": "Percent"}},
                ],
            }
        ],
    }
    payload = wire(frame)
    assert payload["meter_value"][0]["sampled_value"][0]["unit_of_measure"] == {"unit": "Wh", "multiplier": 3}
    sampled = one(normalize.v201_meter_values(CP, payload, RECEIVED))
    reading = Reading(
        at=AT,
        energy_wh=D("12345"),
        power_w=D("3700"),
        soc=D(61),
        context="Sample.Periodic",
        raw_skipped=("SIGNED",),
    )
    assert sampled == MeterSampled(CP, 1, 0, (reading,), RECEIVED)


@pytest.mark.parametrize(
    ("unit_of_measure", "expected", "raw"),
    [
        pytest.param({"unit": "Wh", "multiplier": 3}, D("1234500"), (), id="multiplier-3"),
        pytest.param({"unit": "Wh", "multiplier": -1}, D("123.45"), (), id="multiplier-minus-1"),
        pytest.param({"unit": "kWh"}, D("1234500"), (), id="kWh"),
        pytest.param({"multiplier": 0}, D("1234.5"), (), id="default-unit"),
        pytest.param({"unit": "Wh", "multiplier": "3"}, D("1234500"), (), id="string-multiplier"),
        pytest.param({"unit": "Wh", "multiplier": "x"}, None, ("1234.5",), id="garbage-multiplier"),
        pytest.param({"unit": 5}, None, ("1234.5",), id="numeric-unit"),
        pytest.param({"unit": ["Wh"]}, None, ("1234.5",), id="list-unit"),
        pytest.param("kWh", D("1234500"), (), id="unit-as-bare-text"),
        pytest.param(None, D("1234.5"), (), id="none"),
    ],
)
def test_v201_unit_of_measure(unit_of_measure: Any, expected: Decimal | None, raw: tuple[str, ...]) -> None:
    payload = {"evse_id": 1, "meter_value": [_mv(1234.5, unit_of_measure=unit_of_measure)]}
    reading = one(normalize.v201_meter_values(CP, payload, RECEIVED)).readings[0]
    assert (reading.energy_wh, reading.raw_skipped) == (expected, raw)


def test_v201_meter_values_without_an_evse_are_kept_on_the_whole_station() -> None:
    (sampled,) = normalize.v201_meter_values(CP, {"evse_id": "x", "meter_value": [_mv()]}, RECEIVED)
    assert isinstance(sampled, MeterSampled)
    assert (sampled.evse, len(sampled.readings)) == (0, 1) and "evse_id_invalid" in sampled.flags


# --------------------------------------------------------------------------------------- 2.0.1 TransactionEvent


def _tx_wire(event_type: str, seq_no: int, **extra: Any) -> dict[str, Any]:
    frame = {
        "eventType": event_type,
        "timestamp": T,
        "triggerReason": "MeterValuePeriodic",
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": "a1b2-c3", "chargingState": "Charging"},
        **extra,
    }
    return wire(frame)


def test_v201_transaction_started_from_the_wire() -> None:
    payload = _tx_wire(
        "Started",
        0,
        triggerReason="Authorized",
        evse={"id": 1, "connectorId": 1},
        idToken={"idToken": "04E1A2B3", "type": "ISO14443"},
        meterValue=[
            {"timestamp": T, "sampledValue": [{"value": 0, "context": "Transaction.Begin"}]},
        ],
        numberOfPhasesUsed=3,
    )
    assert payload["id_token"] == {"id_token": "04E1A2B3", "type": "ISO14443"}
    started = one(normalize.v201_transaction_event(CP, payload, RECEIVED))
    assert started == SessionEvent(
        CP,
        "started",
        AT,
        RECEIVED,
        transaction_ref="a1b2-c3",
        seq_no=0,
        evse=1,
        connector=1,
        id_tag="04E1A2B3",
        readings=(Reading(at=AT, energy_wh=D(0), context="Transaction.Begin"),),
        charging_state="Charging",
        trigger_reason="Authorized",
    )


def test_v201_transaction_updated() -> None:
    payload = _tx_wire("Updated", 3, meterValue=[{"timestamp": T, "sampledValue": [{"value": 7200.5}]}])
    updated = one(normalize.v201_transaction_event(CP, payload, RECEIVED))
    assert (updated.kind, updated.seq_no, updated.evse, updated.connector) == ("updated", 3, None, None)
    assert [r.energy_wh for r in updated.readings] == [D("7200.5")]
    assert (updated.trigger_reason, updated.offline, updated.flags) == ("MeterValuePeriodic", False, ())


def test_v201_transaction_ended_offline_without_evse() -> None:
    """§9: an Ended replayed offline, before the Updated events it follows, and without an evse."""
    payload = {
        "event_type": "Ended",
        "timestamp": "2024-05-01T02:00:00.000Z",
        "trigger_reason": "EVCommunicationLost",
        "seq_no": 4,
        "offline": True,
        "transaction_info": {"transaction_id": "a1b2-c3", "charging_state": "Idle", "stopped_reason": "EVDisconnected"},
        "meter_value": [
            {
                "timestamp": "2024-05-01T02:00:00.000Z",
                "sampled_value": [{"value": 15.2, "context": "Transaction.End", "unit_of_measure": {"unit": "kWh"}}],
            }
        ],
    }
    ended = one(normalize.v201_transaction_event(CP, payload, RECEIVED))
    at = datetime(2024, 5, 1, 2, tzinfo=UTC)
    assert ended == SessionEvent(
        CP,
        "ended",
        at,
        RECEIVED,
        transaction_ref="a1b2-c3",
        seq_no=4,
        evse=None,
        connector=None,
        readings=(Reading(at=at, energy_wh=D(15200), context="Transaction.End"),),
        stop_reason="EVDisconnected",
        charging_state="Idle",
        trigger_reason="EVCommunicationLost",
        offline=True,
    )


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        pytest.param({"seq_no": None}, lambda e: (e.seq_no, e.flags) == (None, ("seq_no_missing",)), id="no-seq-no"),
        pytest.param({"seq_no": "5"}, lambda e: e.seq_no == 5, id="string-seq-no"),
        pytest.param({"seq_no": "five"}, lambda e: e.flags == ("seq_no_invalid",), id="garbage-seq-no"),
        pytest.param({"offline": "true"}, lambda e: e.offline is True, id="string-offline"),
        pytest.param({"offline": "maybe"}, lambda e: (e.offline, e.flags) == (False, ("offline_invalid",)), id="bad"),
        pytest.param({"event_type": "ENDED"}, lambda e: e.kind == "ended", id="event-type-case"),
        pytest.param({"evse": {"id": 2}}, lambda e: (e.evse, e.connector) == (2, None), id="evse-without-connector"),
        pytest.param(
            {"evse": {"id": "x", "connector_id": 1}},
            lambda e: (e.evse, e.flags) == (None, ("evse_id_invalid",)),
            id="garbage-evse",
        ),
        pytest.param({"transaction_info": {"transaction_id": 991}}, lambda e: e.transaction_ref == "991", id="num-id"),
        pytest.param({"id_token": "junk"}, lambda e: e.id_tag == "", id="junk-id-token"),
        pytest.param({"trigger_reason": None}, lambda e: e.flags == ("trigger_reason_missing",), id="no-trigger"),
        pytest.param({"timestamp": None}, lambda e: (e.at, e.flags) == (RECEIVED, (CLOCK_UNPARSEABLE,)), id="no-ts"),
    ],
)
def test_v201_transaction_event_tolerates(changes: dict[str, Any], check: Callable[[SessionEvent], bool]) -> None:
    payload = {**_tx_wire("Updated", 1), **changes}
    assert check(one(normalize.v201_transaction_event(CP, payload, RECEIVED)))


@pytest.mark.parametrize(
    "changes",
    [
        {"event_type": None},
        {"event_type": "Paused"},
        {"event_type": 3},
        {"transaction_info": None},
        {"transaction_info": {"charging_state": "Charging"}},
        {"transaction_info": {"transaction_id": ""}},
    ],
    ids=["no-event-type", "unknown-event-type", "numeric-event-type", "no-info", "no-id", "empty-id"],
)
def test_v201_transaction_event_essentials(changes: dict[str, Any]) -> None:
    with pytest.raises(NormalizeError, match="TransactionEvent"):
        normalize.v201_transaction_event(CP, {**_tx_wire("Updated", 1), **changes}, RECEIVED)


# --------------------------------------------------------------------------------------------- 2.0.1 NotifyEvent


def _event_item(variable: str, value: str, trigger: str = "Delta", **extra: Any) -> dict[str, Any]:
    return {
        "event_id": 1,
        "timestamp": T,
        "trigger": trigger,
        "actual_value": value,
        "event_notification_type": "HardWiredNotification",
        "component": {"name": "Connector", "evse": {"id": 1, "connector_id": 1}},
        "variable": {"name": variable},
        **extra,
    }


def _notify(*items: dict[str, Any]) -> dict[str, Any]:
    return {"generated_at": T, "seq_no": 0, "event_data": list(items)}


def test_v201_notify_event_raise_and_clear_from_the_wire() -> None:
    frame = {
        "generatedAt": T,
        "seqNo": 0,
        "tbc": False,
        "eventData": [
            {
                "eventId": 11,
                "timestamp": T,
                "trigger": "Delta",
                "actualValue": "true",
                "techCode": "E17",
                "techInfo": "RCD",
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "ElectricalFeed", "evse": {"id": 1}},
                "variable": {"name": "Problem"},
            },
            {
                "eventId": 12,
                "cause": 11,
                "timestamp": T,
                "trigger": "Delta",
                "actualValue": "true",
                "cleared": True,
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "Connector", "evse": {"id": 2, "connectorId": 1}},
                "variable": {"name": "Tripped"},
            },
        ],
    }
    raised, cleared = normalize.v201_notify_event(CP, wire(frame), RECEIVED)
    assert raised == FaultReported(
        CP,
        evse=1,
        connector=0,
        component="ElectricalFeed",
        variable="Problem",
        active=True,
        at=AT,
        received_at=RECEIVED,
        detail="actualValue=true; techCode=E17; techInfo=RCD; trigger=Delta",
    )
    assert isinstance(cleared, FaultReported)
    assert (cleared.evse, cleared.connector, cleared.variable, cleared.active) == (2, 1, "Tripped", False)


@pytest.mark.parametrize(
    ("item", "active"),
    [
        pytest.param(_event_item("Problem", "true"), True, id="problem-true-delta-raises"),
        pytest.param(_event_item("Problem", "true", "Alerting"), True, id="problem-true-alerting-raises"),
        pytest.param(_event_item("Problem", "false"), False, id="problem-false-recovers"),
        pytest.param(_event_item("Problem", "true", cleared=True), False, id="cleared-recovers"),
        pytest.param(_event_item("Problem", "true", cleared="true"), False, id="cleared-as-text"),
        pytest.param(_event_item("Problem", "true", "Periodic"), None, id="periodic-true-no-event"),
        pytest.param(_event_item("Problem", "false", "Periodic"), False, id="periodic-false-recovers"),
        pytest.param(_event_item("Problem", "TRUE"), True, id="case-insensitive"),
        pytest.param(_event_item("Problem", "maybe"), None, id="unjudgeable-delta-no-event"),
        pytest.param(_event_item("AvailabilityState", "Faulted"), True, id="availability-faulted-raises"),
        pytest.param(_event_item("AvailabilityState", "Available"), False, id="availability-available-recovers"),
        pytest.param(_event_item("AvailabilityState", "Faulted", cleared=True), False, id="availability-cleared"),
        pytest.param(_event_item("AvailabilityState", "", "Delta"), None, id="availability-empty-no-event"),
        pytest.param(_event_item("Temperature", "95", "Alerting"), None, id="not-a-problem-variable"),
        pytest.param(_event_item("Power", "7000"), None, id="plain-delta-no-event"),
    ],
)
def test_v201_notify_event_item(item: dict[str, Any], active: bool | None) -> None:
    events = normalize.v201_notify_event(CP, _notify(item), RECEIVED)
    assert [e.active for e in events if isinstance(e, FaultReported)] == ([] if active is None else [active])


PROBLEM_ROWS = [
    ("Problem", "true", True),
    ("Fault", "true", True),
    ("Tripped", "true", True),
    ("OverTemperature", "true", True),
    ("Overload", "true", True),
    ("AvailabilityState", "Faulted", True),
]


@pytest.mark.parametrize(("variable", "problem_value", "_"), PROBLEM_ROWS)
def test_problem_variable_row(variable: str, problem_value: str, _: bool) -> None:
    raised = one(normalize.v201_notify_event(CP, _notify(_event_item(variable, problem_value)), RECEIVED))
    recovered = one(normalize.v201_notify_event(CP, _notify(_event_item(variable, "false")), RECEIVED))
    assert (raised.active, raised.variable, recovered.active) == (True, variable, False)


def test_every_problem_variable_is_tested() -> None:
    assert set(normalize.PROBLEM_VARIABLES) == {row[0] for row in PROBLEM_ROWS}


@pytest.mark.parametrize(
    ("trigger", "cleared", "problem", "active"),
    [
        ("Delta", False, True, True),
        ("Alerting", False, True, True),
        ("Periodic", False, True, None),
        ("Delta", False, False, False),
        ("Periodic", False, False, False),
        ("Delta", True, True, False),
        ("Periodic", True, None, False),
        ("Alerting", False, None, True),
        ("Delta", False, None, None),
        ("", False, True, None),
    ],
)
def test_fault_active(trigger: str, cleared: bool, problem: bool | None, active: bool | None) -> None:
    assert normalize.fault_active(trigger, cleared, problem) is active


def test_v201_notify_event_reports_each_item_tbc_not_assembled() -> None:
    payload = {**_notify(_event_item("Problem", "true"), _event_item("Tripped", "true")), "tbc": True}
    events = normalize.v201_notify_event(CP, payload, RECEIVED)
    assert [e.variable for e in events if isinstance(e, FaultReported)] == ["Problem", "Tripped"]


@pytest.mark.parametrize(
    ("component", "evse", "connector", "flags"),
    [
        ({"name": "ChargingStation"}, 0, 0, ()),
        ({"name": "EVSE", "evse": {"id": 2}}, 2, 0, ()),
        ({"name": "Connector", "evse": {"id": "2", "connector_id": "1"}}, 2, 1, ()),
        ({"name": "Connector", "evse": {"id": "two"}}, 0, 0, ("component_evse_id_invalid",)),
        ("junk", 0, 0, ()),
    ],
)
def test_v201_notify_event_addressing(component: Any, evse: int, connector: int, flags: tuple[str, ...]) -> None:
    item = {**_event_item("Problem", "true"), "component": component}
    fault = one(normalize.v201_notify_event(CP, _notify(item), RECEIVED))
    assert (fault.evse, fault.connector, fault.flags) == (evse, connector, flags)


@pytest.mark.parametrize(
    "payload",
    [{}, {"event_data": "junk"}, {"event_data": [1, "x", None]}, {"event_data": [{"variable": "Problem"}]}],
    ids=["empty", "not-a-list", "not-objects", "variable-not-an-object"],
)
def test_v201_notify_event_without_usable_items(payload: dict[str, Any]) -> None:
    assert normalize.v201_notify_event(CP, payload, RECEIVED) == ()


def test_v201_notify_event_time_goes_through_the_clock() -> None:
    item = {**_event_item("Problem", "true"), "timestamp": "2024-05-01T08:00:00"}
    fault = one(normalize.v201_notify_event(CP, _notify(item), RECEIVED))
    assert (fault.at, fault.flags) == (AT, (CLOCK_NO_OFFSET,))


# ------------------------------------------------------------------------------------------------- robustness

ALL_NORMALIZERS: list[Normalizer] = [
    normalize.v16_boot_notification,
    normalize.v16_heartbeat,
    normalize.v16_status_notification,
    normalize.v16_meter_values,
    normalize.v16_start_transaction,
    normalize.v16_stop_transaction,
    normalize.v201_boot_notification,
    normalize.v201_heartbeat,
    normalize.v201_status_notification,
    normalize.v201_meter_values,
    normalize.v201_transaction_event,
    normalize.v201_notify_event,
]

KEYS = [
    "connector_id",
    "evse_id",
    "transaction_id",
    "meter_start",
    "meter_stop",
    "id_tag",
    "timestamp",
    "reason",
    "status",
    "error_code",
    "info",
    "vendor_error_code",
    "meter_value",
    "transaction_data",
    "sampled_value",
    "value",
    "measurand",
    "phase",
    "location",
    "unit",
    "unit_of_measure",
    "multiplier",
    "format",
    "context",
    "signed_meter_value",
    "signed_meter_data",
    "charge_point_vendor",
    "charge_point_model",
    "charge_point_serial_number",
    "charge_box_serial_number",
    "firmware_version",
    "charging_station",
    "vendor_name",
    "model",
    "serial_number",
    "connector_status",
    "event_type",
    "trigger_reason",
    "seq_no",
    "transaction_info",
    "charging_state",
    "stopped_reason",
    "id_token",
    "evse",
    "id",
    "offline",
    "event_data",
    "trigger",
    "actual_value",
    "cleared",
    "component",
    "variable",
    "name",
    "instance",
    "tech_code",
    "tech_info",
    "tbc",
]
VALUE_WORDS = [
    "Problem",
    "AvailabilityState",
    "Faulted",
    "true",
    "false",
    "Started",
    "Updated",
    "Ended",
    "Delta",
    "Alerting",
    "SignedData",
    "Energy.Active.Import.Register",
    "Voltage",
    "Current.Import",
    "L1",
    "L1-N",
    "L1-L2",
    "Outlet",
    "kWh",
    "Wh",
    "1500",
    "30.72",
    "1e999",
    "-1",
    T,
    "2024-05-01T08:00:00",
    "2014-01-01T00:00:00Z",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(VALUE_WORDS),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), children, max_size=6),
    ),
    max_leaves=30,
)
payloads = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=10)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=payloads, index=st.integers(min_value=0, max_value=len(ALL_NORMALIZERS) - 1))
def test_any_payload_gives_events_or_normalize_error(payload: dict[str, Any], index: int) -> None:
    try:
        events = ALL_NORMALIZERS[index](CP, payload, RECEIVED)
    except NormalizeError:
        return
    assert isinstance(events, tuple)
    for event in events:
        assert event.received_at == RECEIVED
        at = getattr(event, "at", RECEIVED)
        assert at.tzinfo is UTC
        assert datetime(2015, 1, 1, tzinfo=UTC) <= at <= RECEIVED + timedelta(minutes=10)


@settings(max_examples=200, deadline=None)
@given(payload=payloads)
def test_any_payload_every_normalizer(payload: dict[str, Any]) -> None:
    for fn in ALL_NORMALIZERS:
        with contextlib.suppress(NormalizeError):
            fn(CP, payload, RECEIVED)


REALISTIC: list[tuple[Normalizer, dict[str, Any]]] = [
    (normalize.v16_boot_notification, wire(V16_BOOT_WIRE)),
    (
        normalize.v16_status_notification,
        {"connector_id": 1, "error_code": "NoError", "status": "Faulted", "timestamp": T},
    ),
    (normalize.v16_meter_values, wire(V16_METER_WIRE)),
    (normalize.v16_start_transaction, {"connector_id": 1, "id_tag": "T", "meter_start": 0, "timestamp": T}),
    (normalize.v16_stop_transaction, wire(V16_STOP_WIRE)),
    (normalize.v201_boot_notification, wire(V201_BOOT_WIRE)),
    (
        normalize.v201_status_notification,
        {"timestamp": T, "connector_status": "Occupied", "evse_id": 1, "connector_id": 1},
    ),
    (
        normalize.v201_meter_values,
        {"evse_id": 1, "meter_value": [_mv(12.5, unit_of_measure={"unit": "Wh", "multiplier": 3})]},
    ),
    (
        normalize.v201_transaction_event,
        _tx_wire("Ended", 2, evse={"id": 1, "connectorId": 1}, meterValue=[_mv(5, unit_of_measure={"unit": "kWh"})]),
    ),
    (normalize.v201_notify_event, _notify(_event_item("Problem", "true"), _event_item("AvailabilityState", "Faulted"))),
]


def mutated(value: Any) -> st.SearchStrategy[Any]:
    """The value, with any part of it dropped, replaced by arbitrary JSON, or mutated in turn."""
    if isinstance(value, dict):
        return st.fixed_dictionaries({}, optional={k: st.one_of(mutated(v), json_values) for k, v in value.items()})
    if isinstance(value, list) and value:
        return st.lists(st.one_of(*[mutated(v) for v in value], json_values), max_size=len(value) + 1)
    return st.one_of(st.just(value), json_values)


@pytest.mark.parametrize(("fn", "payload"), REALISTIC, ids=[fn.__name__ for fn, _ in REALISTIC])
def test_realistic_payload_gives_events(fn: Normalizer, payload: dict[str, Any]) -> None:
    assert fn(CP, payload, RECEIVED)


@pytest.mark.parametrize(("fn", "payload"), REALISTIC, ids=[fn.__name__ for fn, _ in REALISTIC])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_realistic_payload_gives_events_or_normalize_error(
    fn: Normalizer, payload: dict[str, Any], data: st.DataObject
) -> None:
    broken = data.draw(mutated(payload))
    try:
        events = fn(CP, broken, RECEIVED)
    except NormalizeError:
        return
    assert all(event.received_at == RECEIVED for event in events)


def test_normalize_error_is_a_value_error() -> None:
    assert issubclass(NormalizeError, ValueError)


# ------------------------------------------------------------------------------- found by fuzzing (tests/fuzz)


def test_a_lone_surrogate_in_a_text_field_becomes_a_replacement_character() -> None:
    """An idTag of JSON "\\ud800" made the store raise UnicodeEncodeError: the StartTransaction was never stored."""
    payload = {"connector_id": 1, "id_tag": "\ud800", "meter_start": 0, "timestamp": "2024-05-01T08:00:00Z"}
    (started,) = normalize.v16_start_transaction("CP-1", payload, RECEIVED)
    assert isinstance(started, SessionEvent) and started.id_tag == "\ufffd"

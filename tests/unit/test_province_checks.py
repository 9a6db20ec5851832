"""The mock province's business validators, on the spec's example payloads and on broken variants."""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from edge_bridge.provincial.codec import loads
from simulators.province_checks import (
    check_alarm_report,
    check_envelope_format,
    check_order_info,
    check_station_info,
    check_station_status,
    check_token_request,
    decimal_places,
)
from tests.conftest import DATA

OPERATOR = "MA7G5YA24"


def fixture(name: str) -> Any:
    return loads((DATA / name).read_bytes())


def example_order() -> dict[str, Any]:
    """The access guide's order exactly as published (it is internally inconsistent)."""
    order: dict[str, Any] = fixture("notification_orderInfo.request.json")
    return order


def good_order() -> dict[str, Any]:
    """The example order made consistent (D12/D13): two exact, contiguous details that add up to its totals."""
    order = example_order()
    first = dict(order["ChargeDetails"][0], DetailStartTime=order["StartTime"])
    second = {
        "DetailStartTime": "2022-12-09 14:00:00",
        "DetailEndTime": order["EndTime"],
        "ElecPrice": Decimal("0.6989"),
        "SevicePrice": Decimal("0.7001"),
        "DetailPower": Decimal("16.04"),
        "DetailElecMoney": Decimal("11.21"),  # 16.04 x 0.6989 = 11.210356
        "DetailSeviceMoney": Decimal("11.23"),  # 16.04 x 0.7001 = 11.229604
    }
    order["ChargeDetails"] = [first, second]
    return order


def example_station() -> dict[str, Any]:
    station: dict[str, Any] = fixture("query_stations_info.response.json")["StationInfos"][0]
    return station


def good_station() -> dict[str, Any]:
    """The example station as a D7 push of ours, with both standard spellings (D16)."""
    station = example_station()
    station.update(OperatorID=OPERATOR, EquipmentOwnerID=OPERATOR)
    for connector in station["EquipmentInfos"][0]["ConnectorInfos"]:
        connector["NationalStandard"] = connector["Nationalstandard"]
    return {"StationInfo": station}


def good_alarm() -> dict[str, Any]:
    return {
        "AlarmInfos": [
            {
                "StationID": "370202000001",
                "OperatorID": OPERATOR,
                "EquipmentOwnerID": OPERATOR,
                "EquipmentID": "370202000001001",
                "ConnectorID": "370202000001001A",
                "AlarmStatus": 1,
                "AlarmCode": 2,
                "AlarmType": 1,
                "AlarmLevel": 2,
                "AlarmTime": "2024-01-01 12:00:05",
                "NoteString": "EmergencyStop",
            }
        ]
    }


def good_status() -> dict[str, Any]:
    """The V5 vector's plaintext."""
    return {"ConnectorStatusInfo": {"ConnectorID": "3700010101", "Status": 3, "ParkStatus": 0, "LockStatus": 0}}


def has(problems: list[str], *fragments: str) -> bool:
    return any(all(f in p for f in fragments) for p in problems)


# ---------------------------------------------------------------------------------------------------- orders


def test_consistent_order_has_no_problems() -> None:
    assert check_order_info(good_order()) == []


def test_published_example_order_is_inconsistent_in_the_ways_the_spec_notes() -> None:
    problems = check_order_info(example_order())
    assert has(problems, "SumPeriod 2 != number of ChargeDetails 1")
    assert has(problems, "ChargeDetails[0].DetailStartTime 2022-12-09 13:37:00 != StartTime")
    assert has(problems, "ChargeDetails[0].DetailEndTime 2022-12-09 14:00:00 != EndTime")
    assert has(problems, "TotalPower 33.62 != sum of DetailPower 17.58")
    assert has(problems, "TotalElecMoney 20.12 != sum of DetailElecMoney 8.91")
    assert has(problems, "TotalSeviceMoney 16.5 != sum of DetailSeviceMoney 5.27")
    assert not has(problems, "round_half_up")  # its one detail is rounded right: 8.9095 -> 8.91, 5.274 -> 5.27


def test_money_off_by_one_cent_is_named() -> None:
    order = good_order()
    order["ChargeDetails"][0]["DetailElecMoney"] = Decimal("8.92")
    order["TotalElecMoney"] = Decimal("20.13")
    order["TotalMoney"] = Decimal("36.63")
    problems = check_order_info(order)
    assert problems == [
        "ChargeDetails[0].DetailElecMoney 8.92 != round_half_up(DetailPower 17.58 x ElecPrice 0.5068, 2) = 8.91"
    ]


def test_rounding_is_half_up_not_half_even() -> None:
    order = good_order()
    detail = order["ChargeDetails"][0]
    detail.update(DetailPower=Decimal("1.00"), SevicePrice=Decimal("0.025"), DetailSeviceMoney=Decimal("0.02"))
    assert has(check_order_info(order), "DetailSeviceMoney 0.02", "= 0.03")


def test_non_contiguous_details() -> None:
    order = good_order()
    order["ChargeDetails"][1]["DetailStartTime"] = "2022-12-09 14:00:01"
    problems = check_order_info(order)
    assert has(problems, "ChargeDetails[1].DetailStartTime 2022-12-09 14:00:01 != previous DetailEndTime", "contiguous")


def test_sum_period_mismatch() -> None:
    order = good_order()
    order["SumPeriod"] = 3
    assert check_order_info(order) == ["SumPeriod 3 != number of ChargeDetails 2"]


def test_string_where_a_number_belongs() -> None:
    order = good_order()
    order["TotalPower"] = "33.62"
    assert check_order_info(order) == ["TotalPower must be a number, got string '33.62'"]


def test_three_decimal_money() -> None:
    order = good_order()
    order["ChargeDetails"][0]["DetailSeviceMoney"] = Decimal("5.274")
    problems = check_order_info(order)
    assert has(problems, "ChargeDetails[0].DetailSeviceMoney = 5.274 has 3 decimals, at most 2 allowed")


def test_price_with_five_decimals() -> None:
    order = good_order()
    order["ChargeDetails"][0]["ElecPrice"] = Decimal("0.50681")
    assert has(check_order_info(order), "ChargeDetails[0].ElecPrice = 0.50681 has 5 decimals, at most 4")


def test_total_money_must_be_elec_plus_service() -> None:
    order = good_order()
    order["TotalMoney"] = Decimal("36.61")
    assert check_order_info(order) == ["TotalMoney 36.61 != TotalElecMoney 20.12 + TotalSeviceMoney 16.5"]


def test_end_before_start_and_bad_time_format() -> None:
    order = good_order()
    order["EndTime"] = "2022-12-09 13:00:00"
    order["StartTime"] = "2022/12/09 13:37:49"
    problems = check_order_info(order)
    assert has(problems, "StartTime '2022/12/09 13:37:49' is not yyyy-MM-dd HH:mm:ss")
    order["StartTime"] = "2022-12-09 13:37:49"
    assert has(check_order_info(order), "EndTime 2022-12-09 13:00:00 is before StartTime")


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("StopReason", 100, "StopReason = 100 is not one of"),
        ("StopReason", True, "StopReason must be an integer, got boolean True"),
        ("StopReason", Decimal("43.0"), "StopReason must be an integer"),
        ("SumPeriod", 33, "SumPeriod = 33 is not one of"),
        ("StartChargeSeq", "", "StartChargeSeq must not be empty"),
        ("ChargeDetails", {}, "ChargeDetails must be an array"),
    ],
)
def test_order_field_rules(field: str, value: Any, fragment: str) -> None:
    order = good_order()
    order[field] = value
    assert has(check_order_info(order), fragment)


def test_missing_field_and_wrapper() -> None:
    order = good_order()
    del order["ConnectorID"]
    assert check_order_info(order) == ["ConnectorID is missing"]
    assert has(check_order_info({"OrderInfo": good_order()}), "OrderInfo wrapper")


def test_order_without_details_must_total_zero() -> None:
    order = good_order()
    order.update(ChargeDetails=[], SumPeriod=0)
    assert has(check_order_info(order), "TotalPower 33.62 != sum of DetailPower 0")
    zeros = dict.fromkeys(("TotalPower", "TotalElecMoney", "TotalSeviceMoney", "TotalMoney"), 0)
    assert check_order_info({**order, **zeros}) == []


# ---------------------------------------------------------------------------------------------------- stations


def test_consistent_station_has_no_problems() -> None:
    assert check_station_info(good_station(), OPERATOR) == []


def test_published_example_station_lacks_the_d16_spelling() -> None:
    problems = check_station_info({"StationInfo": example_station()}, "MA2L6LB69")
    prefix = "StationInfo.EquipmentInfos[0].ConnectorInfos"
    assert problems == [f"{prefix}[0].NationalStandard is missing", f"{prefix}[1].NationalStandard is missing"]


def test_station_from_another_operator() -> None:
    problems = check_station_info(good_station(), "MJD634356")
    assert problems == ["StationInfo.OperatorID 'MA7G5YA24' is not the pushing operator 'MJD634356'"]


def test_station_connector_type_errors_name_the_path() -> None:
    push = good_station()
    connector = push["StationInfo"]["EquipmentInfos"][0]["ConnectorInfos"][1]
    connector["Current"] = "250"
    connector["Power"] = "480.0"
    assert check_station_info(push, OPERATOR) == [
        "StationInfo.EquipmentInfos[0].ConnectorInfos[1].Current must be an integer, got string '250'",
        "StationInfo.EquipmentInfos[0].ConnectorInfos[1].Power must be a number, got string '480.0'",
    ]


def test_both_standard_spellings_must_agree() -> None:
    push = good_station()
    push["StationInfo"]["EquipmentInfos"][0]["ConnectorInfos"][0]["NationalStandard"] = 1
    assert has(check_station_info(push, OPERATOR), "ConnectorInfos[0].NationalStandard 1 != Nationalstandard 2")


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("EquipmentInfos", [], "StationInfo.EquipmentInfos must not be empty"),
        ("StationType", 7, "StationInfo.StationType = 7 is not one of"),
        ("StationLng", Decimal("120.1234567"), "StationInfo.StationLng = 120.1234567 has 7 decimals"),
        ("ParkNums", Decimal("4.0"), "StationInfo.ParkNums must be an integer"),
        ("CountryCode", "CHN", "StationInfo.CountryCode 'CHN' must be exactly 2 characters"),
        ("OpenAllDay", True, "StationInfo.OpenAllDay must be an integer, got boolean True"),
    ],
)
def test_station_field_rules(field: str, value: Any, fragment: str) -> None:
    push = good_station()
    push["StationInfo"][field] = value
    assert has(check_station_info(push, OPERATOR), fragment)


def test_station_missing_fields_and_wrappers() -> None:
    push = good_station()
    del push["StationInfo"]["ServiceTel"]
    del push["StationInfo"]["EquipmentInfos"][0]["ConnectorInfos"][0]["VoltageLowerLimits"]
    assert check_station_info(push, OPERATOR) == [
        "StationInfo.ServiceTel is missing",
        "StationInfo.EquipmentInfos[0].ConnectorInfos[0].VoltageLowerLimits is missing",
    ]
    assert check_station_info({"StationInfos": [push["StationInfo"]]}, OPERATOR) == [
        "StationInfo is missing (got StationInfos; use a single StationInfo object)"
    ]


# ---------------------------------------------------------------------------------------------------- status


def test_v5_status_has_no_problems() -> None:
    assert check_station_status(good_status()) == []


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("Status", 5, "ConnectorStatusInfo.Status = 5 is not one of [0, 1, 2, 3, 4, 255]"),
        ("ParkStatus", 1, "ConnectorStatusInfo.ParkStatus = 1 is not one of [0, 10, 50]"),
        ("LockStatus", "0", "ConnectorStatusInfo.LockStatus must be an integer, got string '0'"),
        ("ConnectorID", 3700010101, "ConnectorStatusInfo.ConnectorID must be a string, got int 3700010101"),
    ],
)
def test_status_field_rules(field: str, value: Any, fragment: str) -> None:
    push = good_status()
    push["ConnectorStatusInfo"][field] = value
    assert check_station_status(push) == [fragment]


def test_status_missing_park_status_and_array_variant() -> None:
    push = good_status()
    del push["ConnectorStatusInfo"]["ParkStatus"]
    assert check_station_status(push) == ["ConnectorStatusInfo.ParkStatus is missing"]
    array = {"ConnectorStatusInfos": [good_status()["ConnectorStatusInfo"]]}
    assert has(check_station_status(array), "ConnectorStatusInfo is missing (got ConnectorStatusInfos")


# ---------------------------------------------------------------------------------------------------- alarms


def test_alarm_has_no_problems() -> None:
    assert check_alarm_report(good_alarm(), OPERATOR) == []


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("AlarmType", 4, "AlarmInfos[0].AlarmType = 4 is not one of [1, 2, 3]"),
        ("AlarmLevel", 0, "AlarmInfos[0].AlarmLevel = 0 is not one of [1, 2, 3]"),
        ("AlarmStatus", 2, "AlarmInfos[0].AlarmStatus = 2 is not one of [0, 1]"),
        ("AlarmCode", "2", "AlarmInfos[0].AlarmCode must be an integer, got string '2'"),
        ("AlarmTime", "20240101120005", "AlarmInfos[0].AlarmTime '20240101120005' is not yyyy-MM-dd HH:mm:ss"),
        ("NoteString", "x" * 256, "AlarmInfos[0].NoteString is 256 characters, at most 255 allowed"),
        ("OperatorID", "MJD634356", "AlarmInfos[0].OperatorID 'MJD634356' is not the pushing operator"),
    ],
)
def test_alarm_field_rules(field: str, value: Any, fragment: str) -> None:
    push = good_alarm()
    push["AlarmInfos"][0][field] = value
    assert has(check_alarm_report(push, OPERATOR), fragment)


def test_alarm_list_must_not_be_empty_and_items_are_objects() -> None:
    assert check_alarm_report({"AlarmInfos": []}, OPERATOR) == ["AlarmInfos must not be empty"]
    assert check_alarm_report({"AlarmInfos": ["x"]}, OPERATOR) == ["AlarmInfos[0] must be an object, got string 'x'"]
    assert check_alarm_report({}, OPERATOR) == ["AlarmInfos is missing"]


# ---------------------------------------------------------------------------------------------------- envelope, token


def test_token_request_shape() -> None:
    assert check_token_request({"OperatorID": OPERATOR, "OperatorSecret": "x" * 16}) == []
    assert check_token_request({"OperatorID": OPERATOR}) == ["OperatorSecret is missing"]


@pytest.mark.parametrize(
    ("timestamp", "seq", "expected"),
    [
        ("20240101120000", "0001", []),
        ("2024010112000", "0001", ["TimeStamp '2024010112000' is not yyyyMMddHHmmss"]),
        ("20241301120000", "0001", ["TimeStamp '20241301120000' is not yyyyMMddHHmmss"]),
        ("20240101120000", "1", ["Seq '1' is not 4 digits"]),
    ],
)
def test_envelope_format(timestamp: str, seq: str, expected: list[str]) -> None:
    assert check_envelope_format(timestamp, seq) == expected


@pytest.mark.parametrize(
    ("value", "places"),
    [(Decimal("16.50"), 1), (Decimal("0.3000"), 1), (Decimal("0.5068"), 4), (Decimal("1E+2"), 0), (100, 0)],
)
def test_decimal_places_counts_the_value(value: Any, places: int) -> None:
    assert decimal_places(value) == places


@pytest.mark.parametrize(
    ("check", "payload"),
    [
        pytest.param(check_order_info, good_order, id="order"),
        pytest.param(check_order_info, example_order, id="order-with-problems"),
        pytest.param(check_station_info, good_station, id="station"),
        pytest.param(check_station_info, lambda: {"StationInfo": example_station()}, id="station-with-problems"),
        pytest.param(check_station_status, good_status, id="status"),
        pytest.param(
            check_station_status,
            lambda: {"ConnectorStatusInfos": [good_status()["ConnectorStatusInfo"]]},
            id="status-list",
        ),
        pytest.param(check_alarm_report, good_alarm, id="alarm"),
        pytest.param(
            check_alarm_report,
            lambda: {"AlarmInfos": [{**good_alarm()["AlarmInfos"][0], "AlarmStatus": 7}]},
            id="alarm-bad",
        ),
    ],
)
def test_checkers_do_not_mutate_their_input(
    check: Callable[[Any, str], list[str]], payload: Callable[[], dict[str, Any]]
) -> None:
    data = payload()
    before = copy.deepcopy(data)
    check(data, OPERATOR)
    assert data == before

"""What a strict province checks in the business Data of each push: pure functions returning problem strings.

Every checker takes the decrypted Data (numbers as ``int`` or ``Decimal``, as ``codec.loads`` reads them) and the
operator id the pushes must come from, and returns a list of problems, each naming the field by its path
(``StationInfo.EquipmentInfos[0].ConnectorInfos[1].Current``). An empty list means the payload is acceptable.
Decimal places are counted on the value (``16.50`` has 2, ``16.500`` has 2 as well).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
TIMESTAMP_RE = re.compile(r"^\d{14}$")
SEQ_RE = re.compile(r"^\d{4}$")
CENT = Decimal("0.01")
MAX_PERIODS = 32

Kind = Literal["str", "int", "num", "list", "obj"]


@dataclass(frozen=True)
class F:
    """The rule for one field: its JSON kind and optional constraints."""

    kind: Kind
    required: bool = True
    choices: frozenset[int] | None = None
    max_len: int | None = None
    length: int | None = None
    non_empty: bool = False
    decimals: int | None = None
    datetime: bool = False


def _one_of(*values: int) -> frozenset[int]:
    return frozenset(values)


STATION_TYPES = _one_of(1, 50, 100, 101, 102, 103, 255)
STATION_STATUSES = _one_of(0, 1, 5, 6, 50)
CONSTRUCTIONS = _one_of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 255)
CONNECTOR_STATUSES = _one_of(0, 1, 2, 3, 4, 255)
PARK_LOCK = _one_of(0, 10, 50)
ZERO_ONE = _one_of(0, 1)
ONE_TO_THREE = _one_of(1, 2, 3)

STATION_FIELDS: dict[str, F] = {
    "StationID": F("str", non_empty=True, max_len=20),
    "OperatorID": F("str", length=9),
    "EquipmentOwnerID": F("str", length=9),
    "StationName": F("str", non_empty=True, max_len=50),
    "CountryCode": F("str", length=2),
    "AreaCode": F("str", non_empty=True, max_len=20),
    "Address": F("str", non_empty=True, max_len=200),
    "ServiceTel": F("str", non_empty=True, max_len=30),
    "StationType": F("int", choices=STATION_TYPES),
    "StationStatus": F("int", choices=STATION_STATUSES),
    "ParkNums": F("int"),
    "StationLng": F("num", decimals=6),
    "StationLat": F("num", decimals=6),
    "Construction": F("int", choices=CONSTRUCTIONS),
    "EquipmentInfos": F("list", non_empty=True),
    "StationTel": F("str", required=False, max_len=30),
    "OperatorName": F("str", required=False),
    "OpenType": F("int", required=False),
    "OpenAllDay": F("int", required=False, choices=ZERO_ONE),
    "ParkFree": F("int", required=False, choices=ZERO_ONE),
    "SupportOrder": F("int", required=False, choices=ZERO_ONE),
    "FastEquipmentNum": F("int", required=False),
    "SlowEquipmentNum": F("int", required=False),
    "MinElectricityPrice": F("num", required=False, decimals=4),
    "BusineHours": F("str", required=False, max_len=100),
    "Pictures": F("list", required=False),
    "PriceChargingInfo": F("list", required=False),
}
EQUIPMENT_FIELDS: dict[str, F] = {
    "EquipmentID": F("str", non_empty=True, max_len=23),
    "EquipmentType": F("int", choices=_one_of(1, 2, 3, 4, 5)),
    "Power": F("num"),
    "ConnectorInfos": F("list", non_empty=True),
    "EquipmentStatus": F("int", required=False),
    "EquipmentPower": F("num", required=False),
    "EquipmentPowerMax": F("num", required=False),
    "NewNationalStandard": F("int", required=False),
    "EquipmentLng": F("num", required=False, decimals=6),
    "EquipmentLat": F("num", required=False, decimals=6),
}
CONNECTOR_FIELDS: dict[str, F] = {
    "ConnectorID": F("str", non_empty=True, max_len=30),
    "ConnectorType": F("int", choices=_one_of(1, 2, 3, 4, 5, 6)),
    "VoltageUpperLimits": F("int"),
    "VoltageLowerLimits": F("int"),
    "Current": F("int"),
    "Power": F("num"),
    "NationalStandard": F("int", choices=_one_of(1, 2)),
    "Nationalstandard": F("int", choices=_one_of(1, 2)),
    "PowerMax": F("num", required=False),
}
STATUS_FIELDS: dict[str, F] = {
    "ConnectorID": F("str", non_empty=True),
    "Status": F("int", choices=CONNECTOR_STATUSES),
    "ParkStatus": F("int", choices=PARK_LOCK),
    "LockStatus": F("int", choices=PARK_LOCK),
}
ORDER_FIELDS: dict[str, F] = {
    "StartChargeSeq": F("str", non_empty=True),
    "ConnectorID": F("str", non_empty=True),
    "StartTime": F("str", datetime=True),
    "EndTime": F("str", datetime=True),
    "TotalPower": F("num", decimals=2),
    "TotalElecMoney": F("num", decimals=2),
    "TotalSeviceMoney": F("num", decimals=2),
    "TotalMoney": F("num", decimals=2),
    "StopReason": F("int", choices=frozenset(range(100))),
    "SumPeriod": F("int", choices=frozenset(range(MAX_PERIODS + 1))),
    "ChargeDetails": F("list"),
}
DETAIL_FIELDS: dict[str, F] = {
    "DetailStartTime": F("str", datetime=True),
    "DetailEndTime": F("str", datetime=True),
    "ElecPrice": F("num", decimals=4),
    "SevicePrice": F("num", decimals=4),
    "DetailPower": F("num", decimals=2),
    "DetailElecMoney": F("num", decimals=2),
    "DetailSeviceMoney": F("num", decimals=2),
}
ALARM_FIELDS: dict[str, F] = {
    "StationID": F("str", non_empty=True, max_len=20),
    "OperatorID": F("str", length=9),
    "EquipmentOwnerID": F("str", length=9),
    "EquipmentID": F("str", non_empty=True, max_len=23),
    "ConnectorID": F("str", max_len=30),  # may be empty for an alarm of the whole equipment
    "AlarmStatus": F("int", choices=ZERO_ONE),
    "AlarmCode": F("int"),
    "AlarmType": F("int", choices=ONE_TO_THREE),
    "AlarmLevel": F("int", choices=ONE_TO_THREE),
    "AlarmTime": F("str", datetime=True),
    "NoteString": F("str", max_len=255),
    "StationName": F("str", required=False, max_len=50),
    "BmsInfo": F("obj", required=False),
}
TOKEN_FIELDS: dict[str, F] = {"OperatorID": F("str", non_empty=True), "OperatorSecret": F("str", non_empty=True)}


# ---------------------------------------------------------------------------------------------------- generic


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _describe(value: Any) -> str:
    kinds = {str: "string", bool: "boolean", dict: "object", list: "array", type(None): "null"}
    kind = kinds.get(type(value), type(value).__name__)
    return f"{kind} {value!r}" if not isinstance(value, dict | list) else kind


def _kind_ok(kind: Kind, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    expected: dict[Kind, type | tuple[type, ...]] = {
        "str": str,
        "int": int,
        "num": (int, Decimal),
        "list": list,
        "obj": dict,
    }
    return isinstance(value, expected[kind]) and not (isinstance(value, Decimal) and not value.is_finite())


def decimal_places(value: int | Decimal) -> int:
    """Decimal places of the value (trailing zeros do not count)."""
    if isinstance(value, int) or value.is_zero():
        return 0
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def parse_wire_datetime(text: str) -> datetime | None:
    """A ``yyyy-MM-dd HH:mm:ss`` string as a naive datetime, or None when it is not one."""
    if not DATETIME_RE.match(text):
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None


_KIND_NAMES: dict[Kind, str] = {"str": "a string", "int": "an integer", "num": "a number", "list": "an array"}


def _field_problems(where: str, rule: F, value: Any) -> list[str]:
    if not _kind_ok(rule.kind, value):
        return [f"{where} must be {_KIND_NAMES.get(rule.kind, 'an object')}, got {_describe(value)}"]
    problems = []
    if rule.choices is not None and value not in rule.choices:
        problems.append(f"{where} = {value} is not one of {sorted(rule.choices)}")
    if rule.length is not None and len(value) != rule.length:
        problems.append(f"{where} {value!r} must be exactly {rule.length} characters")
    if rule.max_len is not None and len(value) > rule.max_len:
        problems.append(f"{where} is {len(value)} characters, at most {rule.max_len} allowed")
    if rule.non_empty and not value:
        problems.append(f"{where} must not be empty")
    if rule.decimals is not None and decimal_places(value) > rule.decimals:
        problems.append(f"{where} = {value} has {decimal_places(value)} decimals, at most {rule.decimals} allowed")
    if rule.datetime and parse_wire_datetime(value) is None:
        problems.append(f"{where} {value!r} is not yyyy-MM-dd HH:mm:ss")
    return problems


def check_fields(obj: Any, rules: Mapping[str, F], path: str) -> list[str]:
    """Presence, JSON kind and constraints of every field in ``rules``; unknown fields are not checked."""
    if not isinstance(obj, dict):
        return [f"{path or 'Data'} must be an object, got {_describe(obj)}"]
    problems = []
    for name, rule in rules.items():
        where = _join(path, name)
        if name not in obj:
            if rule.required:
                problems.append(f"{where} is missing")
            continue
        problems += _field_problems(where, rule, obj[name])
    return problems


def _typed(obj: Mapping[str, Any], name: str, kind: Kind) -> Any:
    """The field's value when it has the right kind, else None (so arithmetic skips broken fields)."""
    value = obj.get(name)
    return value if _kind_ok(kind, value) else None


def _items(obj: Mapping[str, Any], name: str) -> list[Any]:
    value = obj.get(name)
    return value if isinstance(value, list) else []


def _wrapped(data: Mapping[str, Any], name: str, wrong: str) -> tuple[Any, list[str]]:
    if name in data:
        return data[name], []
    hint = f" (got {wrong}; use a single {name} object)" if wrong in data else ""
    return None, [f"{name} is missing{hint}"]


def _same_operator(where: str, value: Any, operator_id: str) -> list[str]:
    if isinstance(value, str) and value != operator_id:
        return [f"{where} {value!r} is not the pushing operator {operator_id!r}"]
    return []


# ---------------------------------------------------------------------------------------------------- pushes


def check_station_info(data: Mapping[str, Any], operator_id: str) -> list[str]:
    """notification_stationInfo (D7, §4.6, D16)."""
    station, problems = _wrapped(data, "StationInfo", "StationInfos")
    if station is None:
        return problems
    path = "StationInfo"
    problems += check_fields(station, STATION_FIELDS, path)
    if not isinstance(station, dict):
        return problems
    problems += _same_operator(f"{path}.OperatorID", station.get("OperatorID"), operator_id)
    for e_index, equipment in enumerate(_items(station, "EquipmentInfos")):
        e_path = f"{path}.EquipmentInfos[{e_index}]"
        problems += check_fields(equipment, EQUIPMENT_FIELDS, e_path)
        if isinstance(equipment, dict):
            for c_index, connector in enumerate(_items(equipment, "ConnectorInfos")):
                problems += _connector_problems(connector, f"{e_path}.ConnectorInfos[{c_index}]")
    return problems


def _connector_problems(connector: Any, path: str) -> list[str]:
    problems = check_fields(connector, CONNECTOR_FIELDS, path)
    if isinstance(connector, dict):
        both = (connector.get("NationalStandard"), connector.get("Nationalstandard"))
        if all(_kind_ok("int", v) for v in both) and both[0] != both[1]:
            problems.append(f"{path}.NationalStandard {both[0]} != Nationalstandard {both[1]} (D16: same value)")
        upper, lower = _typed(connector, "VoltageUpperLimits", "int"), _typed(connector, "VoltageLowerLimits", "int")
        if upper is not None and lower is not None and lower > upper:
            problems.append(f"{path}.VoltageLowerLimits {lower} is above VoltageUpperLimits {upper}")
    return problems


def check_station_status(data: Mapping[str, Any], operator_id: str = "") -> list[str]:
    """notification_stationStatus (D9): one connector per call."""
    info, problems = _wrapped(data, "ConnectorStatusInfo", "ConnectorStatusInfos")
    if info is None:
        return problems
    return check_fields(info, STATUS_FIELDS, "ConnectorStatusInfo")


def check_alarm_report(data: Mapping[str, Any], operator_id: str) -> list[str]:
    """alarm_report (D8): ``{"AlarmInfos": [...]}``."""
    problems = check_fields(data, {"AlarmInfos": F("list", non_empty=True)}, "")
    for index, alarm in enumerate(_items(data, "AlarmInfos")):
        path = f"AlarmInfos[{index}]"
        problems += check_fields(alarm, ALARM_FIELDS, path)
        if isinstance(alarm, dict):
            problems += _same_operator(f"{path}.OperatorID", alarm.get("OperatorID"), operator_id)
    return problems


def check_token_request(data: Mapping[str, Any], operator_id: str = "") -> list[str]:
    """query_token Data shape (the id and secret themselves are answered with FailReason, not 4004)."""
    return check_fields(data, TOKEN_FIELDS, "")


# ---------------------------------------------------------------------------------------------------- orders


def check_order_info(data: Mapping[str, Any], operator_id: str = "") -> list[str]:
    """notification_orderInfo (D10-D13): flat fields, Decimal arithmetic, contiguous details."""
    if "OrderInfo" in data:
        return ["OrderInfo wrapper is not used in Shandong (D10: the order fields sit directly in Data)"]
    problems = check_fields(data, ORDER_FIELDS, "")
    details = _items(data, "ChargeDetails")
    for index, detail in enumerate(details):
        problems += check_fields(detail, DETAIL_FIELDS, f"ChargeDetails[{index}]")
        if isinstance(detail, dict):
            problems += _detail_money(detail, f"ChargeDetails[{index}]")
    sum_period = _typed(data, "SumPeriod", "int")
    if sum_period is not None and "ChargeDetails" in data and sum_period != len(details):
        problems.append(f"SumPeriod {sum_period} != number of ChargeDetails {len(details)}")
    if len(details) > MAX_PERIODS:
        problems.append(f"ChargeDetails has {len(details)} entries, at most {MAX_PERIODS} allowed")
    good = [d for d in details if isinstance(d, dict)]
    return problems + _order_times(data, good) + _order_totals(data, good)


def _detail_money(detail: Mapping[str, Any], path: str) -> list[str]:
    power = _typed(detail, "DetailPower", "num")
    problems = []
    for money_name, price_name in (("DetailElecMoney", "ElecPrice"), ("DetailSeviceMoney", "SevicePrice")):
        money, price = _typed(detail, money_name, "num"), _typed(detail, price_name, "num")
        if power is None or money is None or price is None:
            continue
        expected = (Decimal(power) * Decimal(price)).quantize(CENT, rounding=ROUND_HALF_UP)
        if money != expected:
            problems.append(
                f"{path}.{money_name} {money} != round_half_up(DetailPower {power} x {price_name} {price}, 2)"
                f" = {expected}"
            )
    return problems


def _order_totals(data: Mapping[str, Any], details: list[dict[str, Any]]) -> list[str]:
    problems = []
    sums = (("TotalPower", "DetailPower"), ("TotalElecMoney", "DetailElecMoney"))
    for total_name, detail_name in (*sums, ("TotalSeviceMoney", "DetailSeviceMoney")):
        total = _typed(data, total_name, "num")
        parts = [_typed(d, detail_name, "num") for d in details]
        if total is None or any(p is None for p in parts):
            continue
        expected = sum((Decimal(p) for p in parts), Decimal(0))
        if total != expected:
            problems.append(f"{total_name} {total} != sum of {detail_name} {expected}")
    elec, service, money = (_typed(data, n, "num") for n in ("TotalElecMoney", "TotalSeviceMoney", "TotalMoney"))
    if elec is not None and service is not None and money is not None and money != elec + service:
        problems.append(f"TotalMoney {money} != TotalElecMoney {elec} + TotalSeviceMoney {service}")
    return problems


def _times(obj: Mapping[str, Any], name: str) -> datetime | None:
    value = obj.get(name)
    return parse_wire_datetime(value) if isinstance(value, str) else None


def _order_times(data: Mapping[str, Any], details: list[dict[str, Any]]) -> list[str]:
    start, end = _times(data, "StartTime"), _times(data, "EndTime")
    problems = []
    if start is not None and end is not None and end < start:
        problems.append(f"EndTime {data['EndTime']} is before StartTime {data['StartTime']}")
    previous_end: datetime | None = None
    for index, detail in enumerate(details):
        path = f"ChargeDetails[{index}]"
        d_start, d_end = _times(detail, "DetailStartTime"), _times(detail, "DetailEndTime")
        if d_start is not None and d_end is not None and d_end < d_start:
            problems.append(f"{path}.DetailEndTime {detail['DetailEndTime']} is before its DetailStartTime")
        if index and previous_end is not None and d_start is not None and d_start != previous_end:
            problems.append(
                f"{path}.DetailStartTime {detail['DetailStartTime']} != previous DetailEndTime"
                f" {previous_end:%Y-%m-%d %H:%M:%S} (details must be contiguous)"
            )
        previous_end = d_end
    if details:
        first, last = _times(details[0], "DetailStartTime"), _times(details[-1], "DetailEndTime")
        if start is not None and first is not None and first != start:
            problems.append(f"ChargeDetails[0].DetailStartTime {details[0]['DetailStartTime']} != StartTime")
        if end is not None and last is not None and last != end:
            problems.append(
                f"ChargeDetails[{len(details) - 1}].DetailEndTime {details[-1]['DetailEndTime']} != EndTime"
            )
    return problems


# ---------------------------------------------------------------------------------------------------- envelope


def check_envelope_format(timestamp: str, seq: str) -> list[str]:
    """TimeStamp ``yyyyMMddHHmmss`` (a real time) and a 4-digit Seq; these are recorded, not rejected."""
    problems = []
    valid = bool(TIMESTAMP_RE.match(timestamp))
    if valid:
        try:
            datetime.strptime(timestamp, "%Y%m%d%H%M%S")
        except ValueError:
            valid = False
    if not valid:
        problems.append(f"TimeStamp {timestamp!r} is not yyyyMMddHHmmss")
    if not SEQ_RE.match(seq):
        problems.append(f"Seq {seq!r} is not 4 digits")
    return problems


Checker = Callable[[Mapping[str, Any], str], list[str]]

CHECKS: dict[str, Checker] = {
    "notification_stationInfo": check_station_info,
    "notification_stationStatus": check_station_status,
    "notification_orderInfo": check_order_info,
    "alarm_report": check_alarm_report,
}

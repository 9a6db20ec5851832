"""OCPP 1.6J and 2.0.1 payloads → domain events (ocpp-bridge §1-§4, §7). PURE: values in, values out.

The only module that knows OCPP field names. Every function takes ``(charger, payload, received_at)`` where
``payload`` is the handler kwargs exactly as the ``ocpp`` library delivers them to an ``@on(...)`` handler: keys
converted to snake_case at every depth (``meter_value``, ``sampled_value``, ``evse_id``, ``transaction_data``,
``unit_of_measure``, ``soc``, ...), values untouched (so enum values stay ``"SoC"``, ``"SignedData"``). It returns
``tuple[Event, ...]``.

Payloads can be wrong in every way (transaction messages are handled with schema validation off, so nothing is lost).
A missing or unreadable *essential* field raises ``NormalizeError``; anything else is defaulted and recorded in the
event's ``flags`` (``<field>_missing`` for a field the schema requires, ``<field>_invalid`` for one of the wrong type,
plus the clock flags of §3). No other exception escapes.

NotifyEvent items are reported one by one: assembling ``tbc: true`` sequences needs state across messages and is not
done here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, TypeVar

from edge_bridge.charger import meter
from edge_bridge.domain.events import (
    ChargerBooted,
    ChargerSeen,
    ConnectorStatusReported,
    Event,
    FaultReported,
    Flags,
    MeterSampled,
    Reading,
    SessionEvent,
    SessionKind,
)


class NormalizeError(ValueError):
    """An essential field of a charger message is missing or unreadable: no event can be built from it."""


# ---------------------------------------------------------------------------------------------------- clock (§3)

CLOCK_NO_OFFSET = "clock_no_offset"
CLOCK_REPLACED = "clock_replaced"
CLOCK_UNPARSEABLE = "clock_unparseable"
EARLIEST = datetime(2015, 1, 1, tzinfo=UTC)
MAX_AHEAD = timedelta(minutes=10)

_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)


def charger_time(text: str | None, received_at: datetime) -> tuple[datetime, Flags]:
    """A charger timestamp as aware UTC, after the clock rules; ``received_at`` must be aware.

    ``Z``, numeric offsets (``+08:00``, ``+0800``, ``+08``) and fractions of any length are parsed (fractions beyond
    microseconds are truncated). No offset: taken as UTC, flagged ``clock_no_offset``. Before 2015 or more than
    10 minutes after ``received_at``: replaced by ``received_at``, flagged ``clock_replaced``. Missing or
    unparseable: ``received_at``, flagged ``clock_unparseable``.
    """
    if received_at.utcoffset() is None:
        raise ValueError("received_at must be an aware datetime")
    now = received_at.astimezone(UTC)
    moment = parse_timestamp(text) if isinstance(text, str) else None
    if moment is None:
        return now, (CLOCK_UNPARSEABLE,)
    flags: Flags = ()
    if moment.tzinfo is None:
        moment, flags = moment.replace(tzinfo=UTC), (CLOCK_NO_OFFSET,)
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        return now, (*flags, CLOCK_REPLACED)
    if not EARLIEST <= utc <= now + MAX_AHEAD:
        return now, (*flags, CLOCK_REPLACED)
    return utc, flags


def parse_timestamp(text: str) -> datetime | None:
    """An ISO 8601 date-time (naive when it has no offset), or None."""
    match = _TIMESTAMP.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            int((fraction or "").ljust(6, "0")[:6]),
            tzinfo=_offset(offset),
        )
    except ValueError:
        return None


def _offset(text: str | None) -> timezone | None:
    if text is None:
        return None
    if text in ("Z", "z"):
        return UTC
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"offset out of range: {text}")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if text[0] == "-" else delta)


# ------------------------------------------------------------------------------------------ reading a payload

_MAX_INT = 2**63 - 1
_INT_TEXT = re.compile(r"[+-]?\d{1,19}", re.ASCII)
_UNREADABLE = "?"  # a unit that is present but not text: matches no unit table, so its value is kept raw


def _integer(raw: object) -> int | None:
    """An integer field: a JSON integer, an integral float, or a numeric string ("3", " 3 ")."""
    value: int | None = None
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str) and _INT_TEXT.fullmatch(raw.strip()):
        value = int(raw.strip())
    return value if value is not None and -_MAX_INT - 1 <= value <= _MAX_INT else None


def _text(raw: object) -> str | None:
    """A string field: a string (``meter.storable``: a lone surrogate becomes U+FFFD), or a JSON number where a
    string belongs."""
    if isinstance(raw, str):
        return meter.storable(raw)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return str(raw) if isinstance(raw, float) or abs(raw) < 10**100 else None


_T = TypeVar("_T")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def _boolean(raw: object) -> bool | None:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        return _BOOLEANS.get(raw.strip().lower())
    return None


@dataclass
class _Fields:
    """Reads one payload (or one item of it) for one action, recording what had to be defaulted as flags."""

    action: str
    data: Mapping[str, Any]
    received_at: datetime
    flagged: list[str] = field(default_factory=list)

    def get(self, *path: str) -> Any:
        value: Any = self.data
        for key in path:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value

    def flags(self) -> Flags:
        return tuple(dict.fromkeys(self.flagged))

    def need_int(self, *path: str) -> int:
        value = _integer(self.get(*path))
        if value is None:
            raise NormalizeError(f"{self.action}: {'.'.join(path)} is missing or not an integer")
        return value

    def need_text(self, *path: str) -> str:
        value = (_text(self.get(*path)) or "").strip()
        if not value:
            raise NormalizeError(f"{self.action}: {'.'.join(path)} is missing or not text")
        return value

    def integer(self, *path: str, expected: bool = False) -> int | None:
        raw = self.get(*path)
        return self._checked(path, raw, _integer(raw), expected)

    def text(self, *path: str, expected: bool = False) -> str:
        raw = self.get(*path)
        return self._checked(path, raw, _text(raw), expected) or ""

    def boolean(self, *path: str) -> bool:
        raw = self.get(*path)
        return self._checked(path, raw, _boolean(raw), False) or False

    def energy(self, key: str) -> Decimal | None:
        """A 1.6 meterStart/meterStop in Wh (an integer by the schema; strings and fractions accepted)."""
        raw = self.get(key)
        return self._checked((key,), raw, meter.parse_decimal(raw), True)

    def _checked(self, path: tuple[str, ...], raw: object, value: _T | None, expected: bool) -> _T | None:
        """Flags ``<path>_missing`` (a field the schema requires) or ``<path>_invalid`` (present, unreadable)."""
        if raw is None and expected:
            self.flagged.append(f"{'_'.join(path)}_missing")
        elif raw is not None and value is None:
            self.flagged.append(f"{'_'.join(path)}_invalid")
        return value

    def time(self, *path: str) -> datetime:
        return self._clock(self.get(*path))

    def _clock(self, raw: object) -> datetime:
        at, flags = charger_time(raw if isinstance(raw, str) else None, self.received_at)
        self.flagged.extend(flags)
        return at

    def readings(self, key: str, expected: bool = False) -> tuple[Reading, ...]:
        """The MeterValue list under ``key`` (meter_value, transaction_data) as Readings."""
        items = self._list(self.get(key), key, expected)
        return tuple(self._reading(item) for item in self._mappings(items, key))

    def _reading(self, item: Mapping[str, Any]) -> Reading:
        at = self._clock(item.get("timestamp"))
        values = self._list(item.get("sampled_value"), "sampled_value", True)
        return meter.reading(at, [sample(value) for value in self._mappings(values, "sampled_value")])

    def _list(self, raw: object, key: str, expected: bool) -> list[Any]:
        if isinstance(raw, list):
            return raw
        self._checked((key,), raw, None, expected)
        return []

    def _mappings(self, items: Iterable[Any], key: str) -> Iterable[Mapping[str, Any]]:
        for item in items:
            if isinstance(item, Mapping):
                yield item
            else:
                self.flagged.append(f"{key}_invalid")


def sample(item: Mapping[str, Any]) -> meter.Sample:
    """One sampledValue of either version (1.6 ``unit``, 2.0.1 ``unit_of_measure: {unit, multiplier}``)."""
    unit, multiplier = _unit(item)
    measurand = item.get("measurand")
    return meter.Sample(
        value=item.get("value"),
        measurand=meter.ENERGY if measurand is None else _text(measurand) or "",
        phase=_text(item.get("phase")) or "",
        location=_text(item.get("location")) or "",
        unit=unit,
        multiplier=multiplier,
        context=_text(item.get("context")) or "",
        signed=_text(item.get("format")) == meter.SIGNED_DATA,
        signed_data=_signed_data(item.get("signed_meter_value")),
    )


def _unit(item: Mapping[str, Any]) -> tuple[str, int | None]:
    measure = item.get("unit_of_measure")
    if isinstance(measure, Mapping):
        multiplier = measure.get("multiplier")
        return _unit_text(measure.get("unit")), 0 if multiplier is None else _integer(multiplier)
    return _unit_text(item.get("unit") if measure is None else measure), 0


def _unit_text(raw: object) -> str:
    return "" if raw is None else _text(raw) or _UNREADABLE


def _signed_data(raw: object) -> str:
    if isinstance(raw, Mapping):
        return _text(raw.get("signed_meter_data")) or ""
    return ""


# ------------------------------------------------------------------------------------------------- OCPP 1.6J

V16_CONNECTOR = 1  # 1.6 has one connector per connectorId


def v16_boot_notification(charger: str, payload: Mapping[str, Any], received_at: datetime) -> tuple[Event, ...]:
    p = _Fields("BootNotification", payload, received_at)
    serial = p.text("charge_point_serial_number") or p.text("charge_box_serial_number")
    booted = ChargerBooted(
        charger,
        received_at,
        vendor=p.text("charge_point_vendor"),
        model=p.text("charge_point_model"),
        serial=serial,
        firmware=p.text("firmware_version"),
    )
    return (booted,)


def v16_heartbeat(charger: str, payload: Mapping[str, Any], received_at: datetime) -> tuple[Event, ...]:
    return (ChargerSeen(charger, received_at),)


def v16_status_notification(charger: str, payload: Mapping[str, Any], received_at: datetime) -> tuple[Event, ...]:
    p = _Fields("StatusNotification", payload, received_at)
    evse, status = p.need_int("connector_id"), p.need_text("status")
    error_code = p.text("error_code", expected=True) or "NoError"
    info, vendor_error_code = p.text("info"), p.text("vendor_error_code")
    at = p.time("timestamp")
    reported = ConnectorStatusReported(
        charger, evse, V16_CONNECTOR, status, at, received_at, error_code, info, vendor_error_code, p.flags()
    )
    return (reported,)


def _connector_or_whole(p: _Fields, field: str) -> int:
    """A transaction message's connector (1.6) or EVSE (2.0.1). Missing or unreadable, it is not a reason to lose
    the message (§1): it is kept on the whole charger (0), flagged ``<field>_missing``/``_invalid``."""
    number = p.integer(field, expected=True)
    return WHOLE_CHARGER if number is None else number


WHOLE_CHARGER = 0


def v16_meter_values(charger: str, payload: Mapping[str, Any], received_at: datetime) -> tuple[Event, ...]:
    p = _Fields("MeterValues", payload, received_at)
    evse = _connector_or_whole(p, "connector_id")
    transaction = p.integer("transaction_id")
    readings = p.readings("meter_value", expected=True)
    ref = None if transaction is None else str(transaction)
    return (MeterSampled(charger, evse, V16_CONNECTOR, readings, received_at, ref, p.flags()),)


def v16_start_transaction(charger: str, payload: Mapping[str, Any], received_at: datetime) -> tuple[Event, ...]:
    p = _Fields("StartTransaction", payload, received_at)
    evse = _connector_or_whole(p, "connector_id")
    id_tag, meter_wh, at = p.text("id_tag", expected=True), p.energy("meter_start"), p.time("timestamp")
    started = SessionEvent(
        charger, "started", at, received_at, evse=evse, connector=V16_CONNECTOR, id_tag=id_tag, meter_wh=meter_wh
    )
    return (replace(started, flags=p.flags()),)


UNKNOWN_TRANSACTION = -1  # what a 1.6 charger sends when it has no transactionId


def v16_stop_transaction(charger: str, payload: Mapping[str, Any], received_at: datetime) -> tuple[Event, ...]:
    p = _Fields("StopTransaction", payload, received_at)
    # A stop without a readable transactionId still carries energy: keep it as an orphan, like -1 (§3).
    transaction_id = p.integer("transaction_id", expected=True)
    ref = str(UNKNOWN_TRANSACTION if transaction_id is None else transaction_id)
    meter_wh, at = p.energy("meter_stop"), p.time("timestamp")
    id_tag, reason, readings = p.text("id_tag"), p.text("reason"), p.readings("transaction_data")
    ended = SessionEvent(
        charger,
        "ended",
        at,
        received_at,
        transaction_ref=ref,
        id_tag=id_tag,
        meter_wh=meter_wh,
        readings=readings,
        stop_reason=reason,
    )
    return (replace(ended, flags=p.flags()),)


# ------------------------------------------------------------------------------------------------- OCPP 2.0.1

V201_WHOLE_EVSE = 0  # connector when a 2.0.1 message names only the EVSE (MeterValues, or a fault on an EVSE)
SESSION_KINDS: dict[str, SessionKind] = {"started": "started", "updated": "updated", "ended": "ended"}


def v201_boot_notification(charger: str, payload: Mapping[str, Any], received_at: datetime) -> tuple[Event, ...]:
    p = _Fields("BootNotification", payload, received_at)
    booted = ChargerBooted(
        charger,
        received_at,
        vendor=p.text("charging_station", "vendor_name"),
        model=p.text("charging_station", "model"),
        serial=p.text("charging_station", "serial_number"),
        firmware=p.text("charging_station", "firmware_version"),
    )
    return (booted,)


def v201_heartbeat(charger: str, payload: Mapping[str, Any], received_at: datetime) -> tuple[Event, ...]:
    return (ChargerSeen(charger, received_at),)


def v201_status_notification(charger: str, payload: Mapping[str, Any], received_at: datetime) -> tuple[Event, ...]:
    p = _Fields("StatusNotification", payload, received_at)
    evse, connector = p.need_int("evse_id"), p.need_int("connector_id")
    status, at = p.need_text("connector_status"), p.time("timestamp")
    return (ConnectorStatusReported(charger, evse, connector, status, at, received_at, flags=p.flags()),)


def v201_meter_values(charger: str, payload: Mapping[str, Any], received_at: datetime) -> tuple[Event, ...]:
    p = _Fields("MeterValues", payload, received_at)
    evse = _connector_or_whole(p, "evse_id")
    readings = p.readings("meter_value", expected=True)
    return (MeterSampled(charger, evse, V201_WHOLE_EVSE, readings, received_at, flags=p.flags()),)


def v201_transaction_event(charger: str, payload: Mapping[str, Any], received_at: datetime) -> tuple[Event, ...]:
    p = _Fields("TransactionEvent", payload, received_at)
    kind = SESSION_KINDS.get(p.need_text("event_type").lower())
    if kind is None:
        raise NormalizeError(f"TransactionEvent: unknown event_type {payload.get('event_type')!r}")
    ref, at = p.need_text("transaction_info", "transaction_id"), p.time("timestamp")
    event = SessionEvent(
        charger,
        kind,
        at,
        received_at,
        transaction_ref=ref,
        seq_no=p.integer("seq_no", expected=True),
        evse=p.integer("evse", "id"),
        connector=p.integer("evse", "connector_id"),
        id_tag=p.text("id_token", "id_token"),
        readings=p.readings("meter_value"),
        stop_reason=p.text("transaction_info", "stopped_reason"),
        charging_state=p.text("transaction_info", "charging_state"),
        trigger_reason=p.text("trigger_reason", expected=True),
        offline=p.boolean("offline"),
    )
    return (replace(event, flags=p.flags()),)


# 2.0.1 problem variables (§7): variable name → its actualValue judged (True: a problem, False: none, None: unknown)
def _true_means_problem(value: str) -> bool | None:
    return _boolean(value)


def _faulted_means_problem(value: str) -> bool | None:
    return value.strip() == "Faulted" if value.strip() else None


PROBLEM_VARIABLES: dict[str, Callable[[str], bool | None]] = {
    "Problem": _true_means_problem,
    "Fault": _true_means_problem,
    "Tripped": _true_means_problem,
    "OverTemperature": _true_means_problem,
    "Overload": _true_means_problem,
    "AvailabilityState": _faulted_means_problem,
}
RAISING_TRIGGERS = frozenset({"Alerting", "Delta"})


def v201_notify_event(charger: str, payload: Mapping[str, Any], received_at: datetime) -> tuple[Event, ...]:
    """One FaultReported per eventData item on a problem variable; other items give no event (and no error)."""
    items = payload.get("event_data")
    if not isinstance(items, list):
        return ()
    faults = (_fault(charger, item, received_at) for item in items if isinstance(item, Mapping))
    return tuple(fault for fault in faults if fault is not None)


def _fault(charger: str, item: Mapping[str, Any], received_at: datetime) -> FaultReported | None:
    p = _Fields("NotifyEvent", item, received_at)
    judge = PROBLEM_VARIABLES.get(p.text("variable", "name"))
    if judge is None:
        return None
    active = fault_active(p.text("trigger"), p.boolean("cleared"), judge(p.text("actual_value")))
    if active is None:
        return None
    fault = FaultReported(
        charger,
        evse=p.integer("component", "evse", "id") or 0,
        connector=p.integer("component", "evse", "connector_id") or V201_WHOLE_EVSE,
        component=p.text("component", "name"),
        variable=p.text("variable", "name"),
        active=active,
        at=p.time("timestamp"),
        received_at=received_at,
        detail=_fault_detail(p),
    )
    return replace(fault, flags=p.flags())


def fault_active(trigger: str, cleared: bool, problem: bool | None) -> bool | None:
    """§7: ``cleared`` or the reverse value recovers (any trigger); Alerting/Delta with the problem value raises.

    A value that cannot be judged raises only on Alerting (a monitor tripped). None: no event (e.g. a Periodic
    report of a standing problem: the raise came with its Delta).
    """
    if cleared or problem is False:
        return False
    if problem is True and trigger in RAISING_TRIGGERS:
        return True
    if problem is None and trigger == "Alerting":
        return True
    return None


def _fault_detail(p: _Fields) -> str:
    parts = {
        "actualValue": p.text("actual_value"),
        "techCode": p.text("tech_code"),
        "techInfo": p.text("tech_info"),
        "componentInstance": p.text("component", "instance"),
        "variableInstance": p.text("variable", "instance"),
        "trigger": p.text("trigger"),
    }
    return "; ".join(f"{name}={value}" for name, value in parts.items() if value)

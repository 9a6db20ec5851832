"""Fuzz: OCPP normalization of both versions (``charger/normalize.py``).

Every normalizer gets arbitrary JSON objects and near-valid payloads (the seeds of ``seeds.py`` with fields dropped,
retyped, oversized, nested, NaN/Infinity, huge integers, odd timestamps), after the real key conversion the server's
dispatcher applies (``ocpp_common.snake_keys``). The only outcomes: a tuple of well-formed events, or
``NormalizeError``. Well-formed: every time aware UTC, every Decimal finite, every flag a string.

Budgets (fuzz-ci): 150 arbitrary objects and 200 near-valid payloads, each for a normalizer drawn among the 12, and
the fixed deep-nesting cases.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_bridge.charger import normalize
from edge_bridge.charger.normalize import NormalizeError
from edge_bridge.charger.ocpp_common import snake_keys
from edge_bridge.domain.events import Event
from tests.fuzz.conftest import budget
from tests.fuzz.seeds import FIELD_NAMES, V16, V201
from tests.fuzz.strategies import deep, json_values, mutated

RECEIVED = datetime(2024, 5, 1, 8, 0, 5, tzinfo=UTC)
Normalizer = Callable[[str, Mapping[str, Any], datetime], tuple[Event, ...]]
NORMALIZERS: dict[tuple[str, str], Normalizer] = {
    ("1.6", "BootNotification"): normalize.v16_boot_notification,
    ("1.6", "Heartbeat"): normalize.v16_heartbeat,
    ("1.6", "StatusNotification"): normalize.v16_status_notification,
    ("1.6", "MeterValues"): normalize.v16_meter_values,
    ("1.6", "StartTransaction"): normalize.v16_start_transaction,
    ("1.6", "StopTransaction"): normalize.v16_stop_transaction,
    ("2.0.1", "BootNotification"): normalize.v201_boot_notification,
    ("2.0.1", "Heartbeat"): normalize.v201_heartbeat,
    ("2.0.1", "StatusNotification"): normalize.v201_status_notification,
    ("2.0.1", "MeterValues"): normalize.v201_meter_values,
    ("2.0.1", "TransactionEvent"): normalize.v201_transaction_event,
    ("2.0.1", "NotifyEvent"): normalize.v201_notify_event,
}
SEEDS = {("1.6", action): seed for action, seed in V16.items()} | {("2.0.1", a): s for a, s in V201.items()}
IDS = [f"{version}-{action}" for version, action in NORMALIZERS]


def outcome(normalizer: Normalizer, wire: Any) -> tuple[Event, ...] | None:
    """Normalize a wire payload as the dispatcher hands it over; None for NormalizeError (the defined refusal)."""
    payload = snake_keys(wire)
    if not isinstance(payload, dict):
        return None  # the dispatcher answers a non-object payload with a CALLERROR before any handler
    try:
        events = normalizer("CP-FUZZ", payload, RECEIVED)
    except NormalizeError as exc:
        assert str(exc), "a NormalizeError names the problem"
        return None
    assert isinstance(events, tuple)
    for event in events:
        well_formed(event)
    return events


def well_formed(value: Any) -> None:
    """Times aware UTC and not after the receipt (+10 min), Decimals finite, flags text, all the way down."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            well_formed(getattr(value, item.name))
    elif isinstance(value, tuple):
        for item in value:
            well_formed(item)
    elif isinstance(value, datetime):
        assert value.utcoffset() == timedelta(0), value
        assert value <= RECEIVED + normalize.MAX_AHEAD
    elif isinstance(value, Decimal):
        assert value.is_finite(), value
    else:
        assert value is None or isinstance(value, str | int | bool), repr(value)


@budget(150)
@given(
    key=st.sampled_from(list(NORMALIZERS)),
    payload=st.dictionaries(
        st.sampled_from(FIELD_NAMES) | st.text(max_size=8), json_values(FIELD_NAMES, 10), max_size=8
    ),
)
def test_any_object_is_normalized_or_refused(key: tuple[str, str], payload: dict[str, Any]) -> None:
    outcome(NORMALIZERS[key], payload)


@budget(200)
@given(data=st.data(), key=st.sampled_from(list(NORMALIZERS)))
def test_a_damaged_valid_payload_is_normalized_or_refused(key: tuple[str, str], data: st.DataObject) -> None:
    payload = data.draw(mutated(SEEDS[key], FIELD_NAMES), label="payload")
    outcome(NORMALIZERS[key], payload)


@pytest.mark.parametrize("key", list(NORMALIZERS), ids=IDS)
def test_the_seeds_are_valid(key: tuple[str, str]) -> None:
    """The seeds are what a good charger sends: each gives events (so the damage above starts from a real message)."""
    events = outcome(NORMALIZERS[key], SEEDS[key])
    assert events, key


@pytest.mark.parametrize("key", list(NORMALIZERS), ids=IDS)
@pytest.mark.parametrize("depth", [50, 400, 2000])
def test_deep_nesting_anywhere_is_normalized_or_refused(key: tuple[str, str], depth: int) -> None:
    """A value nested thousands of levels deep in every field (the value itself, a meter value, a sampled value)."""
    for field in [*SEEDS[key], "meterValue", "transactionData"]:
        outcome(NORMALIZERS[key], {**SEEDS[key], field: deep(depth)})
    nested = {"timestamp": "2024-05-01T08:00:00Z", "sampledValue": [{"value": deep(depth)}, deep(depth)]}
    outcome(NORMALIZERS[key], {**SEEDS[key], "meterValue": [nested], "transactionData": [nested]})

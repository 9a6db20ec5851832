"""Our dispatcher converts payload keys as the ocpp library's own dispatcher does, once per distinct key."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ocpp.charge_point import camel_to_snake_case

from edge_bridge.charger.ocpp_common import (
    KEY_CACHE_SIZE,
    MAX_CACHED_KEY,
    MAX_KEY_DEPTH,
    call_id,
    snake_key,
    snake_keys,
)

METER_VALUES = {
    "connectorId": 1,
    "transactionId": 7,
    "meterValue": [
        {
            "timestamp": "2024-05-01T08:00:00Z",
            "sampledValue": [{"value": "10", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}],
        }
    ],
}
keys = st.text(alphabet=st.sampled_from("abcXYZ_V2GSoCocppCSMSURL0"), max_size=12)
payloads = st.recursive(
    st.none() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


def test_a_meter_values_payload_as_the_handlers_get_it() -> None:
    assert snake_keys(METER_VALUES) == {
        "connector_id": 1,
        "transaction_id": 7,
        "meter_value": [
            {
                "timestamp": "2024-05-01T08:00:00Z",
                "sampled_value": [{"value": "10", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}],
            }
        ],
    }


@given(payloads)
def test_the_same_keys_as_the_library(payload: Any) -> None:
    assert snake_keys(payload) == camel_to_snake_case(payload)


def test_the_key_cache_is_bounded() -> None:
    for n in range(KEY_CACHE_SIZE + 100):
        snake_key(f"someKey{n}")
    assert snake_key.cache_info().currsize <= KEY_CACHE_SIZE


# ------------------------------------------------------------------------------- found by fuzzing (tests/fuzz)


def test_long_keys_are_converted_but_not_cached() -> None:
    """A charger sending megabyte keys must not fill the 4096-entry cache with them."""
    before = snake_key.cache_info().currsize
    key = "someKey" + "x" * (MAX_CACHED_KEY + 1)
    assert snake_keys({key: 1}) == {"some_key" + "x" * (MAX_CACHED_KEY + 1): 1}
    assert snake_key.cache_info().currsize == before


def test_keys_deeper_than_the_limit_are_kept_as_sent() -> None:
    """A payload nested ~990 deep (what json.loads still parses) overflowed the stack in snake_keys."""
    inner: Any = {"deepKey": 1}
    for _ in range(990):
        inner = {"someKey": inner}
    converted = snake_keys(inner)
    for _ in range(MAX_KEY_DEPTH):
        converted = converted["some_key"]
    assert "someKey" in converted  # below the limit: untouched


@pytest.mark.parametrize(
    ("frame", "unique_id"),
    [('[2,"a1","Heartbeat"]', "a1"), (' [ 2 , "a\\"1", {', 'a"1'), (b'[2,"b1"', "b1"), ('[3,"x",{}]', None)],
)
def test_the_unique_id_of_a_broken_call(frame: str | bytes, unique_id: str | None) -> None:
    assert call_id(frame) == unique_id

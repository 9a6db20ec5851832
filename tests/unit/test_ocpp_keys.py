"""Our dispatcher converts payload keys as the ocpp library's own dispatcher does, once per distinct key."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from ocpp.charge_point import camel_to_snake_case

from edge_bridge.charger.ocpp_common import KEY_CACHE_SIZE, snake_key, snake_keys

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

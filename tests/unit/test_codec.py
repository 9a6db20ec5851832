"""Known-answer vectors (tests/data/vectors.json, both directions) and properties of the envelope codec."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_bridge.errors import CodecError
from edge_bridge.provincial import codec
from edge_bridge.provincial.crypto import Secrets, decrypt, encrypt, sign, signature_matches
from tests.conftest import DATA

VECTORS = json.loads((DATA / "vectors.json").read_text(encoding="utf-8"))
SECRETS = Secrets("AbCdEfGh12345678", "a1b2c3d4e5f6g7h8", "h8g7f6e5d4c3b2a1", "0123456789ABCDEF")


def _secrets(vector: dict[str, Any]) -> Secrets:
    return Secrets(
        vector.get("operator_secret", "x" * 16),
        vector["data_secret"],
        vector["data_secret_iv"],
        vector["sig_secret"],
    )


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_encrypts_to_known_data(vector: dict[str, Any]) -> None:
    assert encrypt(vector["plaintext"].encode("utf-8"), _secrets(vector)) == vector["data"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_decrypts_to_known_plaintext(vector: dict[str, Any]) -> None:
    assert decrypt(vector["data"], _secrets(vector)).decode("utf-8") == vector["plaintext"]


SIGNED = [v for v in VECTORS if "request_sig" in v]


@pytest.mark.parametrize("vector", SIGNED, ids=[v["name"] for v in SIGNED])
def test_vector_request_signature_both_directions(vector: dict[str, Any]) -> None:
    s = _secrets(vector)
    text = vector["operator_id"] + vector["data"] + vector["timestamp"] + vector["seq"]
    assert sign(text, s) == vector["request_sig"]
    fields = ("operator_id", "data", "timestamp", "seq", "request_sig")
    body = json.dumps(dict(zip(codec.REQUEST_FIELDS, (vector[f] for f in fields), strict=True))).encode()
    codec.verify_request(codec.parse_request(body), s)  # the known signature verifies
    wrong = body.replace(vector["request_sig"].encode(), b"0" * 32)
    with pytest.raises(CodecError):
        codec.verify_request(codec.parse_request(wrong), s)


RESPONSES = [v for v in VECTORS if "response_sig_ret0_empty_msg" in v]


@pytest.mark.parametrize("vector", RESPONSES, ids=[v["name"] for v in RESPONSES])
@pytest.mark.parametrize(
    ("msg", "field"), [("", "response_sig_ret0_empty_msg"), ("请求成功", "response_sig_ret0_msg_chinese")]
)
def test_vector_response_signature_both_directions(vector: dict[str, Any], msg: str, field: str) -> None:
    s = _secrets(vector)
    assert sign("0" + msg + vector["data"], s) == vector[field]
    body = json.dumps({"Ret": 0, "Msg": msg, "Data": vector["data"], "Sig": vector[field]}, ensure_ascii=False)
    response = codec.parse_response(body.encode("utf-8"))
    if vector["plaintext"].endswith(",}}}"):  # V1: a crypto vector whose plaintext is not valid JSON
        with pytest.raises(CodecError):
            codec.open_response(response, s)
    else:
        assert codec.open_response(response, s) == json.loads(vector["plaintext"])


def test_v2_request_built_by_encode_request_is_byte_exact() -> None:
    v2 = next(v for v in VECTORS if v["name"].startswith("V2"))
    envelope = codec.encode_request(
        json.loads(v2["plaintext"]),
        operator_id=v2["operator_id"],
        secrets=_secrets(v2),
        timestamp=v2["timestamp"],
        seq=v2["seq"],
    )
    assert (envelope.data, envelope.sig) == (v2["data"], v2["request_sig"])


def test_v5_push_built_by_encode_request_is_byte_exact() -> None:
    v5 = next(v for v in VECTORS if v["name"].startswith("V5"))
    envelope = codec.encode_request(
        json.loads(v5["plaintext"]),
        operator_id=v5["operator_id"],
        secrets=_secrets(v5),
        timestamp=v5["timestamp"],
        seq=v5["seq"],
    )
    assert (envelope.data, envelope.sig) == (v5["data"], v5["request_sig"])


def test_v4_non_ascii_payload_is_encoded_raw_utf8() -> None:
    v4 = next(v for v in VECTORS if v["name"].startswith("V4"))
    assert encrypt(codec.dumps(json.loads(v4["plaintext"])), _secrets(v4)) == v4["data"]


def test_lowercase_signature_is_accepted_and_wrong_one_refused() -> None:
    v1 = VECTORS[0]
    text = v1["operator_id"] + v1["data"] + v1["timestamp"] + v1["seq"]
    assert signature_matches(text, v1["request_sig"].lower(), _secrets(v1))
    assert not signature_matches(text, "0" * 32, _secrets(v1))
    assert not signature_matches(text, "é" * 32, _secrets(v1))


def test_dumps_writes_decimals_exactly_and_refuses_floats() -> None:
    assert (
        codec.dumps({"a": Decimal("16.50"), "b": [Decimal("0.3000"), 1, "环"]})
        == '{"a":16.50,"b":[0.3000,1,"环"]}'.encode()
    )
    with pytest.raises(TypeError):
        codec.dumps({"a": 0.1})


def test_loads_reads_non_integers_as_decimal() -> None:
    assert codec.loads(b'{"a": 36.62, "b": 3}') == {"a": Decimal("36.62"), "b": 3}


def test_seq_counts_within_a_second_and_restarts_each_second() -> None:
    counter = codec.SeqCounter()
    t0 = datetime(2024, 1, 1, 4, 0, 0, 100, tzinfo=UTC)
    assert [counter.next(t0), counter.next(t0 + timedelta(milliseconds=500)), counter.next(t0)] == [
        "0001",
        "0002",
        "0003",
    ]
    assert counter.next(t0 + timedelta(seconds=1)) == "0001"


@pytest.mark.parametrize(("ret", "expected"), [(0, 0), ("0", 0), ("-1", -1), (4002, 4002)])
def test_ret_is_read_leniently_and_signed_as_received(ret: Any, expected: int) -> None:
    data = encrypt(b"{}", SECRETS)
    sig = sign(str(ret) + "ok" + data, SECRETS)
    response = codec.parse_response(json.dumps({"Ret": ret, "Msg": "ok", "Data": data, "Sig": sig}).encode())
    assert response.ret == expected
    if expected == 0:
        assert codec.open_response(response, SECRETS) == {}


def test_error_response_needs_neither_data_nor_sig() -> None:
    response = codec.parse_response(b'{"Ret": 4004, "Msg": "bad"}')
    assert (response.ret, codec.open_response(response, SECRETS)) == (4004, None)


@pytest.mark.parametrize("body", [b"", b"[]", b'{"Ret": "x"}', b'{"Ret": true}', b'{"Msg": ""}', b"\xff"])
def test_malformed_responses_are_codec_errors(body: bytes) -> None:
    with pytest.raises(CodecError):
        codec.parse_response(body)


@pytest.mark.parametrize("missing", codec.REQUEST_FIELDS)
def test_missing_envelope_field_is_4003(missing: str) -> None:
    body = codec.encode_request({}, operator_id="MA6DE1HK0", secrets=SECRETS, timestamp="20240101120000", seq="0001")
    doc = body.as_body()
    del doc[missing]
    with pytest.raises(CodecError) as caught:
        codec.parse_request(json.dumps(doc).encode())
    assert caught.value.ret == codec.RET_ENVELOPE and missing in str(caught.value)


# ---------------------------------------------------------------------------------------------------- properties

# No floats (dumps refuses them), and every Decimal has 4 places, so it is written with a decimal point and read
# back as a Decimal: the round trip gives the payload itself, value and type.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.decimals(allow_nan=False, allow_infinity=False, places=4),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def typed(value: Any) -> Any:
    """``value`` with the type of every scalar beside it: ``==`` then tells ``1`` from ``True`` and
    ``Decimal(1)``, which plain equality does not."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_round_trip_request(payload: dict[str, Any]) -> None:
    envelope = codec.encode_request(
        payload, operator_id="MA6DE1HK0", secrets=SECRETS, timestamp="20240101120000", seq="0001"
    )
    parsed = codec.parse_request(json.dumps(envelope.as_body()).encode())
    codec.verify_request(parsed, SECRETS)
    assert typed(codec.decrypt_data(parsed.data, SECRETS)) == typed(payload)


@given(
    st.dictionaries(st.text(max_size=10), json_values, max_size=6),
    st.integers(-1, 5000),
    st.text(max_size=10),
)
def test_round_trip_response(payload: dict[str, Any], ret: int, msg: str) -> None:
    response = codec.encode_response(ret, msg, payload, SECRETS)
    parsed = codec.parse_response(json.dumps(response.as_body(), ensure_ascii=False).encode())
    opened = codec.open_response(parsed, SECRETS)
    assert typed(opened) == typed(payload)


SIGNED_BODY = json.dumps(
    codec.encode_request(
        {"StationIDs": ["370202000001"]},
        operator_id="MA6DE1HK0",
        secrets=SECRETS,
        timestamp="20240101120000",
        seq="0001",
    ).as_body()
).encode()


def _open_request(body: bytes) -> dict[str, Any]:
    envelope = codec.parse_request(body)
    codec.verify_request(envelope, SECRETS)
    return codec.decrypt_data(envelope.data, SECRETS)


@settings(max_examples=500)
@given(st.integers(0, len(SIGNED_BODY) - 1), st.integers(1, 255))
def test_a_flipped_byte_anywhere_in_a_signed_envelope_is_a_codec_error(position: int, flip: int) -> None:
    body = bytearray(SIGNED_BODY)
    body[position] ^= flip
    try:
        result = _open_request(bytes(body))
    except CodecError:
        return
    # A flip may survive only where it changes nothing the signature covers: JSON whitespace, or the case of a
    # hex digit in Sig (accepted in either case). The envelope it parses to is then the original one.
    assert result == {"StationIDs": ["370202000001"]}
    assert _folded(bytes(body)) == _folded(SIGNED_BODY)


def _folded(body: bytes) -> dict[str, Any]:
    doc = json.loads(body)
    return {**doc, "Sig": doc["Sig"].upper()}


@given(st.binary(max_size=400))
def test_arbitrary_bytes_give_a_codec_error_and_nothing_else(body: bytes) -> None:
    with pytest.raises(CodecError):
        _open_request(body)


@given(st.text(max_size=200))
def test_arbitrary_data_strings_give_a_codec_error(data: str) -> None:
    with pytest.raises(CodecError):
        codec.decrypt_data(data, SECRETS)


@given(st.binary(max_size=300))
def test_arbitrary_response_bytes_give_a_codec_error_or_a_response(body: bytes) -> None:
    try:
        response = codec.parse_response(body)
        opened = codec.open_response(response, SECRETS)
    except CodecError:
        return
    assert response.ret != codec.RET_OK and opened is None  # only a well-formed error answer gets through


# ------------------------------------------------------------------------------- found by fuzzing (tests/fuzz)


@pytest.mark.parametrize("ret", ["--5", "²", "-", "1" * 5000])
def test_a_ret_that_only_looks_numeric_is_a_codec_error(ret: str) -> None:
    """``"--5".lstrip("-").isdigit()`` held and ``int("--5")`` raised ValueError out of parse_response."""
    with pytest.raises(CodecError, match="not an integer"):
        codec.parse_response(json.dumps({"Ret": ret, "Msg": "", "Data": "", "Sig": ""}).encode())


def test_json_nested_deeper_than_the_stack_is_ret_4003_or_4004() -> None:
    """``[[[[...`` 5,000 deep raised RecursionError out of parse_request (the pull API answered Ret 500)."""
    deep = b"[" * 5000 + b"]" * 5000
    with pytest.raises(CodecError) as request:
        codec.parse_request(deep)
    assert request.value.ret == codec.RET_ENVELOPE
    with pytest.raises(CodecError) as data:
        codec.decrypt_data(encrypt(deep, SECRETS), SECRETS)
    assert data.value.ret == codec.RET_DATA
    with pytest.raises(CodecError):
        codec.parse_response(deep)


def test_a_lone_surrogate_is_written_as_a_question_mark() -> None:
    assert codec.dumps({"EquipBizSeq": "a\ud800b"}) == b'{"EquipBizSeq":"a?b"}'

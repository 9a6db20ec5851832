"""Fuzz: the provincial envelope codec (``provincial/codec.py``) with the real secrets of config.example.toml.

Random bytes and random JSON as request and response envelopes, random ``Data`` (Base64 and not), random ``Sig``,
and encrypted blocks that are valid AES but wrongly padded, truncated or not UTF-8 JSON inside. The only outcomes
are a parsed value or ``CodecError`` with a defined Ret (4001/4003/4004 for requests); never another exception.

Budgets (fuzz-ci): 150 request bodies, 150 response bodies, 150 Data strings, 100 damaged ciphertexts, 100 responses
to open, 100 round trips.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_bridge.config import load_config
from edge_bridge.errors import CodecError
from edge_bridge.provincial import codec
from edge_bridge.provincial.crypto import Secrets, encrypt
from tests.conftest import REPO
from tests.fuzz.conftest import budget
from tests.fuzz.strategies import NASTY_TEXT, json_values, scalars

SECRETS: Secrets = load_config(REPO / "config.example.toml").province.secrets()
REQUEST_RETS = {codec.RET_SIGNATURE, codec.RET_ENVELOPE, codec.RET_DATA}
ENVELOPE_NAMES = (*codec.REQUEST_FIELDS, "Ret", "Msg")
texts = st.text(max_size=60) | st.sampled_from(NASTY_TEXT)
base64_texts = st.binary(max_size=200).map(lambda raw: base64.b64encode(raw).decode())
envelope_docs = st.fixed_dictionaries(
    {},
    optional={name: texts | base64_texts | scalars | json_values(max_leaves=3) for name in ENVELOPE_NAMES},
)
bodies = st.one_of(
    st.binary(max_size=300),
    envelope_docs.map(lambda doc: json.dumps(doc).encode()),
    json_values(ENVELOPE_NAMES, max_leaves=8).map(lambda doc: json.dumps(doc).encode()),
    st.sampled_from((b"", b"{", b"[]", b"null", b'{"Ret": ' + b"9" * 5000 + b"}", b"\xff\xfe{}", b"[" * 5000)),
)


def refused(call: Any, rets: set[int] | None = None) -> CodecError | None:
    """Run ``call``; None when it answered, the CodecError when it refused (with a message, and a Ret in ``rets``)."""
    try:
        call()
    except CodecError as exc:
        assert str(exc)
        assert rets is None or exc.ret in rets, exc.ret
        return exc
    return None


@budget(150)
@given(bodies)
def test_any_request_body_is_an_envelope_or_ret_4003(body: bytes) -> None:
    if refused(lambda: codec.parse_request(body), {codec.RET_ENVELOPE}) is None:
        envelope = codec.parse_request(body)
        refused(lambda: codec.verify_request(envelope, SECRETS), {codec.RET_SIGNATURE})
        refused(lambda: codec.decrypt_data(envelope.data, SECRETS), {codec.RET_DATA})


@budget(150)
@given(bodies)
def test_any_response_body_is_a_response_or_a_codec_error(body: bytes) -> None:
    if refused(lambda: codec.parse_response(body)) is None:
        response = codec.parse_response(body)
        assert isinstance(response.ret, int)
        refused(lambda: codec.open_response_with_text(response, SECRETS))


@budget(150)
@given(texts | base64_texts)
def test_any_data_decrypts_to_an_object_or_ret_4004(data: str) -> None:
    refused(lambda: codec.decrypt_data(data, SECRETS), {codec.RET_DATA})


@st.composite
def damaged_ciphertexts(draw: st.DrawFn) -> str:
    """Real AES-CBC of a random plaintext, then cut, flipped (wrong padding or garbage inside) or extended."""
    plain = draw(st.binary(max_size=80) | json_values(max_leaves=5).map(lambda v: json.dumps(v).encode()))
    raw = bytearray(base64.b64decode(encrypt(plain, SECRETS)))
    how = draw(st.sampled_from(("cut", "flip", "extend", "keep")))
    if how == "cut":
        del raw[draw(st.integers(0, len(raw) - 1)) :]
    elif how == "flip":
        raw[draw(st.integers(0, len(raw) - 1))] ^= draw(st.integers(1, 255))
    elif how == "extend":
        raw += draw(st.binary(min_size=1, max_size=32))
    return base64.b64encode(bytes(raw)).decode()


@budget(100)
@given(damaged_ciphertexts())
def test_a_damaged_ciphertext_decrypts_to_an_object_or_ret_4004(data: str) -> None:
    refused(lambda: codec.decrypt_data(data, SECRETS), {codec.RET_DATA})


@budget(100)
@given(
    ret=st.integers(-(10**6), 10**6) | st.sampled_from((0, -1, 500, 4001, 4002, 4003, 4004)),
    msg=texts,
    data=texts | base64_texts | damaged_ciphertexts(),
    sig=texts | st.sampled_from(("", "0" * 32, "A" * 32)),
    ret_text=st.sampled_from(("", "0", "00", "+0", " 0", "--0", "²")),
)
def test_any_response_opens_or_is_a_codec_error(ret: int, msg: str, data: str, sig: str, ret_text: str) -> None:
    response = codec.Response(ret, msg, data, sig, ret_text)
    refused(lambda: codec.open_response_with_text(response, SECRETS))


money = st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**9), max_value=10**9)
payloads = st.dictionaries(
    st.text(max_size=12),
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63) | money | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    ),
    max_size=6,
)


@budget(100)
@given(payload=payloads, timestamp=st.text(max_size=20), seq=st.text(max_size=6))
def test_any_payload_survives_the_round_trip(payload: dict[str, Any], timestamp: str, seq: str) -> None:
    """What we sign and encrypt, the other side reads back exactly (money stays Decimal, never float)."""
    envelope = codec.encode_request(payload, operator_id="MA7G5YA24", secrets=SECRETS, timestamp=timestamp, seq=seq)
    parsed = codec.parse_request(envelope.to_json()) if timestamp and seq else envelope
    codec.verify_request(parsed, SECRETS)
    assert codec.decrypt_data(parsed.data, SECRETS) == payload


@pytest.mark.parametrize("ret", ["--5", "²", "٣", "-", "+-1", "1" * 5000, " 7 "])
def test_odd_ret_text_is_read_or_refused_as_a_codec_error(ret: str) -> None:
    refused(lambda: codec.parse_response(json.dumps({"Ret": ret, "Msg": "", "Data": "", "Sig": ""}).encode()))


def test_decimal_payload_is_read_as_decimal() -> None:
    data = encrypt(b'{"Money": 16.50}', SECRETS)
    assert codec.decrypt_data(data, SECRETS) == {"Money": Decimal("16.50")}

"""The provincial envelope (D1, D2, D6), pure: values in, values out, no I/O and no clock.

Requests carry ``OperatorID, Data, TimeStamp, Seq, Sig``; responses ``Ret, Msg, Data, Sig``. ``Data`` is the
Base64 AES ciphertext of the UTF-8 JSON business payload. Business JSON is read with ``Decimal`` for every
non-integer number and written with Decimals as exact JSON numbers, so money never passes through a float.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from edge_bridge.errors import CodecError
from edge_bridge.provincial.crypto import Secrets, decrypt, encrypt, sign, signature_matches

REQUEST_FIELDS = ("OperatorID", "Data", "TimeStamp", "Seq", "Sig")

RET_OK = 0
RET_BUSY = -1
RET_SIGNATURE = 4001
RET_TOKEN = 4002
RET_ENVELOPE = 4003
RET_DATA = 4004
RET_SYSTEM = 500


# ---------------------------------------------------------------------------------------------------- JSON


def dumps(payload: Any) -> bytes:
    """Compact UTF-8 JSON; ``Decimal`` values are written as JSON numbers exactly as they are (``16.50``). A lone
    surrogate (a peer's JSON ``"\\ud800"`` echoed back, which UTF-8 cannot hold) is written as ``?``."""
    return _encode(payload).encode("utf-8", "replace")


def _encode(value: Any) -> str:
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(k), ensure_ascii=False)}:{_encode(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot send {value} as a JSON number")
        return format(value, "f")
    if isinstance(value, float):
        raise TypeError("floats are not sent to the province; use Decimal")
    return json.dumps(value, ensure_ascii=False)


_DECODER = json.JSONDecoder(parse_float=Decimal)  # one, not one per call as json.loads(..., parse_float=) builds


def loads(raw: bytes) -> Any:
    """Parse UTF-8 JSON with ``Decimal`` for non-integer numbers (ValueError or UnicodeDecodeError if it is not)."""
    return _decode(raw.decode("utf-8"))


def _decode(text: str) -> Any:
    """JSON text → value; ValueError for anything that is not JSON, nesting deeper than the parser's stack included."""
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


# ---------------------------------------------------------------------------------------------------- Seq


class SeqCounter:
    """The D2 per-second counter: ``0001`` for the first message of each second, then ``0002``, ..."""

    def __init__(self) -> None:
        self._second: int | None = None
        self._count = 0

    def next(self, now: datetime) -> str:
        second = int(now.timestamp())
        if second != self._second:
            self._second, self._count = second, 0
        self._count = self._count % 9999 + 1
        return f"{self._count:04d}"


# ---------------------------------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class RequestEnvelope:
    operator_id: str
    data: str
    timestamp: str
    seq: str
    sig: str

    def signed_text(self) -> str:
        return self.operator_id + self.data + self.timestamp + self.seq

    def as_body(self) -> dict[str, str]:
        return {
            "OperatorID": self.operator_id,
            "Data": self.data,
            "TimeStamp": self.timestamp,
            "Seq": self.seq,
            "Sig": self.sig,
        }

    def to_json(self) -> bytes:
        """The request body: five strings, so plain ``json.dumps`` (no Decimal walk)."""
        return json.dumps(self.as_body(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def encode_request(
    payload: Any, *, operator_id: str, secrets: Secrets, timestamp: str, seq: str, lowercase_sig: bool = False
) -> RequestEnvelope:
    """Encrypt and sign a business payload as a request from ``operator_id``."""
    return encode_request_json(
        dumps(payload),
        operator_id=operator_id,
        secrets=secrets,
        timestamp=timestamp,
        seq=seq,
        lowercase_sig=lowercase_sig,
    )


def encode_request_json(
    payload_json: bytes,
    *,
    operator_id: str,
    secrets: Secrets,
    timestamp: str,
    seq: str,
    lowercase_sig: bool = False,
) -> RequestEnvelope:
    """As :func:`encode_request` for a payload already serialized (an outbox row keeps its exact JSON)."""
    data = encrypt(payload_json, secrets)
    sig = sign(operator_id + data + timestamp + seq, secrets)
    return RequestEnvelope(operator_id, data, timestamp, seq, sig.lower() if lowercase_sig else sig)


def parse_request(body: bytes) -> RequestEnvelope:
    """Read the five envelope fields (D6 steps 1-2); anything missing or mistyped is Ret 4003."""
    try:
        doc = loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CodecError("request body is not JSON", RET_ENVELOPE) from exc
    if not isinstance(doc, dict):
        raise CodecError("request body is not a JSON object", RET_ENVELOPE)
    for name in REQUEST_FIELDS:
        value = doc.get(name)
        if not isinstance(value, str) or not value:
            raise CodecError(f"envelope field {name} is missing or not a non-empty string", RET_ENVELOPE)
    return RequestEnvelope(doc["OperatorID"], doc["Data"], doc["TimeStamp"], doc["Seq"], doc["Sig"])


def verify_request(envelope: RequestEnvelope, secrets: Secrets) -> None:
    """D6 step 4: the Sig, either hex case. Ret 4001 on mismatch."""
    if not signature_matches(envelope.signed_text(), envelope.sig, secrets):
        raise CodecError("Sig does not match", RET_SIGNATURE)


def decrypt_data(data: str, secrets: Secrets) -> dict[str, Any]:
    """D6 step 5: decrypt ``Data`` and parse it as a JSON object. Ret 4004 on failure."""
    return parse_data(decrypt_text(data, secrets))


def decrypt_text(data: str, secrets: Secrets) -> str:
    """Decrypt ``Data`` to its UTF-8 text. Ret 4004 on failure."""
    try:
        return decrypt(data, secrets).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodecError("decrypted Data is not UTF-8", RET_DATA) from exc


def parse_data(text: str) -> dict[str, Any]:
    """A decrypted ``Data`` text as a JSON object. Ret 4004 on failure."""
    try:
        doc = _decode(text)
    except ValueError as exc:
        raise CodecError("decrypted Data is not JSON", RET_DATA) from exc
    if not isinstance(doc, dict):
        raise CodecError("decrypted Data is not a JSON object", RET_DATA)
    return doc


# ---------------------------------------------------------------------------------------------------- responses


@dataclass(frozen=True)
class Response:
    """A province or pull-server answer. ``ret_text`` is Ret exactly as received (it is what was signed)."""

    ret: int
    msg: str
    data: str
    sig: str
    ret_text: str = ""

    def signed_text(self) -> str:
        return (self.ret_text or str(self.ret)) + self.msg + self.data

    def as_body(self) -> dict[str, Any]:
        return {"Ret": self.ret, "Msg": self.msg, "Data": self.data, "Sig": self.sig}


def encode_response(ret: int, msg: str, payload: Any, secrets: Secrets) -> Response:
    """A signed response; errors carry an encrypted ``{}`` (D6)."""
    data = encrypt(dumps({} if payload is None else payload), secrets)
    return Response(ret, msg, data, sign(str(ret) + msg + data, secrets))


def parse_response(body: bytes) -> Response:
    """Read ``Ret, Msg, Data, Sig`` leniently (§7): Ret may be a numeric string; Data and Sig may be absent."""
    try:
        doc = loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CodecError("response body is not JSON") from exc
    if not isinstance(doc, dict):
        raise CodecError("response body is not a JSON object")
    ret_text, ret = _read_ret(doc.get("Ret"))
    msg, data, sig = (doc.get(k) or "" for k in ("Msg", "Data", "Sig"))
    if not all(isinstance(v, str) for v in (msg, data, sig)):
        raise CodecError("response Msg, Data or Sig is not a string")
    return Response(ret, msg, data, sig, ret_text)


_RET_TEXT = re.compile(r"\s*-?\d{1,18}\s*", re.ASCII)  # a numeric string Ret: ASCII digits, no "--5", no "²"


def _read_ret(value: Any) -> tuple[str, int]:
    if isinstance(value, bool) or value is None:
        raise CodecError("response has no integer Ret")
    if isinstance(value, int):
        return str(value), value
    if isinstance(value, str) and _RET_TEXT.fullmatch(value):
        return value, int(value)
    raise CodecError(f"response Ret {value!r} is not an integer")


def open_response(response: Response, secrets: Secrets) -> dict[str, Any] | None:
    """Verify and decrypt a response's Data (see :func:`open_response_text`), parsed."""
    return open_response_with_text(response, secrets)[0]


def open_response_with_text(response: Response, secrets: Secrets) -> tuple[dict[str, Any] | None, str | None]:
    """The response's Data parsed, and as the text the other side encrypted (see :func:`open_response_text`).
    On a Ret other than 0, Data that does not parse is as good as none (§2.2): (None, None)."""
    text = open_response_text(response, secrets)
    if text is None:
        return None, None
    try:
        return parse_data(text), text
    except CodecError:
        if response.ret == RET_OK:
            raise
        return None, None


def open_response_text(response: Response, secrets: Secrets) -> str | None:
    """Verify and decrypt a response's Data, as the text the other side encrypted.

    On ``Ret == 0`` the Sig must match and the Data must decrypt. On any other Ret neither is required (§2.2): the
    Data is returned if it happens to decrypt, else None.
    """
    if response.ret != RET_OK:
        try:
            return decrypt_text(response.data, secrets) if response.data else None
        except CodecError:
            return None
    if not response.sig or not signature_matches(response.signed_text(), response.sig, secrets):
        raise CodecError("response Sig does not match", RET_SIGNATURE)
    if not response.data:
        raise CodecError("successful response carries no Data")
    return decrypt_text(response.data, secrets)

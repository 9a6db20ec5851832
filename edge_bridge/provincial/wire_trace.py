"""``[province] trace_wire``: every push and every pull, request and answer, logged with its Data decrypted.

One INFO line per message: event ``wire_push`` (we call the province) or ``wire_pull`` (the province calls us), with
``interface``, ``direction`` (``request`` or ``answer``) and ``data``, the decrypted Data as compact JSON.

Invariants: no secret and no token is ever logged. Every JSON field whose name says secret, token or password
(``OperatorSecret``, ``AccessToken``, ...) is masked, at any depth; a Data that is not JSON is logged only with
such fields masked by pattern; envelopes, Sigs and Authorization headers are never logged. The callers check
their ``trace_wire`` flag first, so tracing off costs one boolean test per message.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from edge_bridge.errors import CodecError
from edge_bridge.provincial import codec
from edge_bridge.provincial.crypto import Secrets

log = logging.getLogger(__name__)

MASK = "***"
_SECRET_WORDS = ("secret", "password", "authorization")
# "AccessToken": "...", "OperatorSecret" : "..." in a text that is not JSON (so cannot be walked)
_SECRET_FIELD = re.compile(r'("[^"]*(?:secret|token|password|authorization)"\s*:\s*)"(?:[^"\\]|\\.)*"', re.I)


def secret_field(name: str) -> bool:
    """A field that carries a credential: its name contains secret/password, or ends in token (``AccessToken``;
    not ``TokenAvailableTime``, a lifetime)."""
    lowered = name.lower()
    return lowered.endswith("token") or any(word in lowered for word in _SECRET_WORDS)


def mask(value: Any) -> Any:
    """``value`` with every credential field's value replaced by ``***``, at any depth."""
    if isinstance(value, dict):
        return {k: MASK if secret_field(str(k)) else mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


def mask_text(text: str) -> str:
    """A decrypted Data that is not JSON, with the string values of credential-named fields masked."""
    return _SECRET_FIELD.sub(rf'\1"{MASK}"', text)


def masked_data(text: str) -> str:
    """A decrypted Data text as compact JSON with credentials masked (or masked by pattern when not JSON)."""
    try:
        return codec.dumps(mask(codec.parse_data(text))).decode("utf-8")
    except CodecError:
        return mask_text(text)


def push(interface: str, payload_json: bytes, status: int, body: bytes, secrets: Secrets) -> None:
    """A push (or query_token) we sent, and the province's answer to it."""
    data = masked_data(payload_json.decode("utf-8", "replace"))
    log.info("wire_push", extra={"interface": interface, "direction": "request", "data": data})
    answer = {"interface": interface, "direction": "answer", "http_status": status, **_answer(body, secrets)}
    log.info("wire_push", extra=answer)


def pull(interface: str, body: bytes, ret: int, payload: Any, secrets: Secrets) -> None:
    """A pull the province sent us, and our answer (``ret`` and the payload before encryption)."""
    log.info("wire_pull", extra={"interface": interface, "direction": "request", **_request(body, secrets)})
    data = codec.dumps(mask({} if payload is None else payload)).decode("utf-8")
    log.info("wire_pull", extra={"interface": interface, "direction": "answer", "ret": ret, "data": data})


def _request(body: bytes, secrets: Secrets) -> dict[str, Any]:
    try:
        envelope = codec.parse_request(body)
        return {"operator_id": envelope.operator_id, "data": masked_data(codec.decrypt_text(envelope.data, secrets))}
    except CodecError as exc:
        return {"data": None, "problem": str(exc)}


def _answer(body: bytes, secrets: Secrets) -> dict[str, Any]:
    try:
        response = codec.parse_response(body)
    except CodecError as exc:
        return {"data": None, "problem": str(exc)}
    fields: dict[str, Any] = {"ret": response.ret, "ret_msg": response.msg}
    try:
        text = codec.decrypt_text(response.data, secrets) if response.data else None
    except CodecError as exc:
        return {**fields, "data": None, "problem": str(exc)}
    return {**fields, "data": None if text is None else masked_data(text)}

"""The failures ``MockProvince`` can inject (``Fault``), and the spoiled answers of the answer faults.

Kinds:

- ``ret``: a well-formed answer with ``Ret = ret``; ``http``: HTTP ``status`` with a plain-text body;
  ``down``: HTTP 503 to everything (query_token included) for ``seconds``;
- ``stall``: wait ``seconds``, then handle the request and answer normally;
- ``slow``: answer correctly after ``seconds`` (with ``processed``: handled first, then the answer waits; without:
  after the wait the request is handled only if the client is still connected, like a province that rolls back what
  it could not answer);
- the answer faults: ``garbage`` (HTTP 200, random bytes), ``html`` (HTTP ``status``, an HTML error page,
  ``text/html``), ``bad_sig`` (a well-formed envelope whose Sig is wrong), ``cut`` (the headers and half the body,
  then the connection is closed). With ``processed`` the province handles (keeps) the request before spoiling its
  answer, so a resend is a de-duplicated repeat; without, nothing reached it (a proxy failed), and a ``bad_sig``
  answer is a forged acceptance: Ret 0, ConfirmResult/Status/SuccStat 0, signed with the wrong key.

Invariant: an answer fault never lets a client read a valid, correctly signed answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal, get_args

from aiohttp import web

from edge_bridge.provincial.codec import RET_OK, Response, encode_response
from edge_bridge.provincial.crypto import Secrets
from simulators.province_checks import CHECKS

PUSHES = tuple(CHECKS)
INTERFACES = ("query_token", *PUSHES)
FaultKind = Literal["ret", "http", "stall", "down", "slow", "garbage", "html", "bad_sig", "cut"]
KINDS: tuple[str, ...] = get_args(FaultKind)
ANSWER_FAULTS = frozenset({"garbage", "html", "bad_sig", "cut"})
TIMED = frozenset({"stall", "down", "slow"})
GARBAGE_BYTES = 512
HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>{status} Bad Gateway</title></head>\n"
    "<body><h1>{status} Bad Gateway</h1><hr><center>nginx</center></body></html>\n"
)


@dataclass(frozen=True)
class Fault:
    """An injected failure (module docstring). ``interface=None`` means any push (query_token is then affected
    only by "down")."""

    kind: FaultKind
    interface: str | None = None
    count: int = 1
    ret: int = -1
    status: int = 503  # "http" and "html"
    seconds: float = 0.0
    processed: bool = False  # "slow" and the answer faults: whether the province keeps the request

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.interface is not None and self.interface not in INTERFACES:
            raise ValueError(f"unknown interface {self.interface!r}")
        if self.count < 1:
            raise ValueError("count must be at least 1")
        if self.kind in TIMED and self.seconds <= 0:
            raise ValueError(f"a {self.kind} fault needs seconds > 0")
        if not 100 <= self.status <= 599:
            raise ValueError(f"status {self.status} is not an HTTP status")

    def matches(self, interface: str) -> bool:
        return self.interface == interface or (self.interface is None and interface in PUSHES)


def forged_acceptance(interface: str, data: dict[str, Any] | None) -> dict[str, Any]:
    """The Data a province would answer to accept ``data`` (never kept by it): for a forged answer."""
    request = data or {}
    if interface == "notification_orderInfo":
        keys = ("StartChargeSeq", "ConnectorID")
        return {**{k: request.get(k, "") for k in keys}, "ConfirmResult": 0}
    if interface == "query_token":
        return {"OperatorID": "", "SuccStat": 0, "AccessToken": "forged", "TokenAvailableTime": 7200, "FailReason": 0}
    return {"Status": 0}


def wrong_sig(response: Response) -> dict[str, Any]:
    """The response's body with a Sig that is well-formed (32 uppercase hex digits) and wrong."""
    body = response.as_body()
    sig = str(body["Sig"]) or "0" * 32
    body["Sig"] = f"{(int(sig[0], 16) + 1) % 16:X}{sig[1:]}".upper()
    return body


def forged_answer(interface: str, data: dict[str, Any] | None, secrets: Secrets) -> dict[str, Any]:
    """A Ret 0 acceptance of ``data`` with a wrong Sig."""
    return wrong_sig(encode_response(RET_OK, "请求成功", forged_acceptance(interface, data), secrets))


async def spoiled(request: web.Request, fault: Fault, body: dict[str, Any], seed: int) -> web.StreamResponse:
    """The answer of an answer fault; ``body`` is the envelope the province would have answered (bad_sig: with its
    Sig already spoiled). ``seed`` makes the garbage reproducible."""
    if fault.kind == "garbage":
        noise = random.Random(seed).randbytes(GARBAGE_BYTES)  # noqa: S311 - reproducible noise, not a secret
        return web.Response(status=200, body=noise, content_type="application/json")
    if fault.kind == "html":
        return web.Response(status=fault.status, text=HTML_PAGE.format(status=fault.status), content_type="text/html")
    text = web.json_response(body).text or ""
    if fault.kind == "bad_sig":
        return web.Response(status=200, text=text, content_type="application/json")
    return await cut(request, text.encode("utf-8"))


async def cut(request: web.Request, body: bytes) -> web.StreamResponse:
    """Send the headers (announcing all of ``body``) and half of it, then close the connection."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json;charset=utf-8"})
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    if request.transport is not None:
        request.transport.close()
    return response


def client_gone(request: web.Request) -> bool:
    """Whether the client closed its connection (it gave up waiting)."""
    transport = request.transport
    return transport is None or transport.is_closing()

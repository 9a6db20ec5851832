"""A strict mock of the Shandong provincial platform, and a client that calls our pull API as the province does.

``MockProvince`` serves ``query_token`` and the four pushes over real HTTP with the real envelope (D1), checks every
request in the D6 order and records what it saw; ``problems()`` lists everything a strict province would object to.
Faults (a Ret, an HTTP status, a stall, a down window) can be injected in-process or over ``/_mock/*``.

``edge-bridge-sim-province serve`` runs it; ``edge-bridge-sim-province pull ...`` queries OUR pull API with ``pull()``.
Both, and ``pull()``, live in :mod:`simulators.province_pull` and are re-exported here.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import hmac
import json
import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from secrets import token_urlsafe
from ssl import SSLContext
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from aiohttp import web

from edge_bridge.config import Config
from edge_bridge.domain.wiretime import TIMESTAMP
from edge_bridge.errors import CodecError
from edge_bridge.provincial.codec import (
    RET_DATA,
    RET_ENVELOPE,
    RET_OK,
    RET_SIGNATURE,
    RET_TOKEN,
    RequestEnvelope,
    decrypt_data,
    encode_response,
    parse_request,
    verify_request,
)
from edge_bridge.provincial.crypto import Secrets
from edge_bridge.timeutil import utc_now
from simulators.province_checks import CHECKS, check_envelope_format, check_token_request
from simulators.province_faults import ANSWER_FAULTS, client_gone, forged_answer, spoiled, wrong_sig
from simulators.province_faults import Fault as Fault

# The pull client and the CLI live in simulators.province_pull (which imports this module only to serve); they are
# re-exported here so ``from simulators.province import pull, main, ...`` and the console script keep working.
from simulators.province_pull import QUERIES as QUERIES
from simulators.province_pull import PullError as PullError
from simulators.province_pull import _default_pull_url as _default_pull_url
from simulators.province_pull import _parser as _parser
from simulators.province_pull import default_query as default_query
from simulators.province_pull import main as main
from simulators.province_pull import pretty_json as pretty_json
from simulators.province_pull import pull as pull

log = logging.getLogger("simulators.province")

TOKEN = "query_token"
ORDER = "notification_orderInfo"
PUSHES = tuple(CHECKS)
INTERFACES = (TOKEN, *PUSHES)
DEFAULT_PREFIX = "/evcsV2/trade/"
OK_MSG = "请求成功"
RET_TEXT = {
    RET_SIGNATURE: "签名错误",
    RET_TOKEN: "Token错误",
    RET_ENVELOPE: "参数错误",
    RET_DATA: "数据错误",
    -1: "系统繁忙",
}
SEQ_MEMORY = 600  # TimeStamps remembered for the repeated-Seq check


@dataclass(frozen=True)
class Received:
    """One request that reached an interface handler. ``ret`` is -1 when it was refused at the HTTP level."""

    interface: str
    data: dict[str, Any] | None
    ret: int
    accepted: bool
    problems: tuple[str, ...]
    at: datetime
    duplicate: bool = False  # an order resent with identical content (answered ConfirmResult 0 again)
    fault: str | None = None  # the kind of the injected fault that hit this request
    http_status: int = 200


@dataclass(frozen=True)
class _Outcome:
    ret: int
    msg: str
    payload: dict[str, Any] | None
    accepted: bool = False
    problems: tuple[str, ...] = ()
    data: dict[str, Any] | None = None
    duplicate: bool = False


@dataclass
class _Active:
    fault: Fault
    remaining: int
    until: float = 0.0  # monotonic end of a "down" window


def _reject(ret: int, reason: str, problems: list[str], data: dict[str, Any] | None = None) -> _Outcome:
    return _Outcome(ret, f"{RET_TEXT.get(ret, 'error')}: {reason}", None, False, tuple(problems), data)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _redact(interface: str, data: dict[str, Any] | None) -> dict[str, Any] | None:
    if interface == TOKEN and data is not None and "OperatorSecret" in data:
        return {**data, "OperatorSecret": "***"}
    return data


class MockProvince:
    """The province's side of the protocol, strict, in-process. See the module docstring."""

    def __init__(
        self,
        *,
        province_id: str,
        operator_id: str,
        secrets: Secrets,
        tz: ZoneInfo,
        token_ttl_s: int = 7200,
        record_path: Path | None = None,
        clock: Callable[[], datetime] = utc_now,
        path_prefix: str = DEFAULT_PREFIX,
        max_skew_s: float | None = 3600.0,
        new_token: Callable[[], str] = lambda: token_urlsafe(32),
    ) -> None:
        self.province_id, self.operator_id, self.secrets, self.tz = province_id, operator_id, secrets, tz
        self.token_ttl_s, self.record_path, self.max_skew_s = token_ttl_s, record_path, max_skew_s
        self.path_prefix = "/" + path_prefix.strip("/") + "/"
        self._clock, self._new_token = clock, new_token
        self.received: list[Received] = []
        self.tokens_issued = 0
        self._arrival_order: list[int] = []
        self._arrivals = 0
        self._tokens: dict[str, datetime] = {}  # SHA-256 of each issued token → expiry: a lookup leaks no timing
        self._orders: dict[str, dict[str, Any]] = {}
        self._seqs: OrderedDict[str, set[str]] = OrderedDict()
        self._faults: list[_Active] = []
        self._runner: web.AppRunner | None = None
        self.url: str | None = None  # the base URL while started
        self._stopping = asyncio.Event()

    @classmethod
    def from_config(
        cls,
        config: Config,
        record_path: Path | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        max_skew_s: float | None = 3600.0,
        new_token: Callable[[], str] | None = None,
    ) -> MockProvince:
        """The province the config points at: its id, OUR id, the shared secrets, the site time zone. ``new_token``
        makes the tokens it issues (a test that searches logs for them records them)."""
        p = config.province
        secrets = p.secrets()
        return cls(
            province_id=p.operator_id,
            operator_id=config.operator.id,
            secrets=secrets,
            tz=config.tz,
            token_ttl_s=p.token_ttl_s,
            record_path=record_path,
            path_prefix=urlparse(p.base_url).path or DEFAULT_PREFIX,
            clock=clock,
            max_skew_s=max_skew_s,
            **({"new_token": new_token} if new_token is not None else {}),
        )

    # ------------------------------------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0, *, ssl: SSLContext | None = None) -> str:
        """Serve on ``host:port`` (0: any free port), over https with ``ssl``; the base URL."""
        app = web.Application()
        app.router.add_route("*", self.path_prefix + "{interface}", self._on_interface)
        app.router.add_post("/_mock/faults", self._on_fault)
        app.router.add_post("/_mock/expire_tokens", self._on_expire)
        app.router.add_get("/_mock/received", self._on_received)
        app.router.add_get("/_mock/problems", self._on_problems)
        self._stopping.clear()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port, ssl_context=ssl).start()
        bound_port = self._runner.addresses[0][1]
        self.url = f"{'http' if ssl is None else 'https'}://{host}:{bound_port}{self.path_prefix}"
        return self.url

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------------------------------------ inspection

    def problems(self) -> list[str]:
        return [f"{r.interface}: {p}" for r in self.received for p in r.problems]

    def accepted(self, interface: str) -> list[dict[str, Any]]:
        return [r.data for r in self.received if r.interface == interface and r.accepted and r.data is not None]

    def inject(self, fault: Fault) -> None:
        until = time.monotonic() + fault.seconds if fault.kind == "down" else 0.0
        self._faults.append(_Active(fault, fault.count, until))

    def clear_faults(self) -> None:
        """The province is fixed: faults not used up yet are dropped (requests already held still finish)."""
        self._faults.clear()

    def expire_tokens(self) -> None:
        expired = self._clock() - timedelta(seconds=1)
        self._tokens = dict.fromkeys(self._tokens, expired)

    # ------------------------------------------------------------------------------------------------ HTTP

    async def _on_interface(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["interface"]
        if name not in INTERFACES:
            raise web.HTTPNotFound()
        if request.method != "POST":
            raise web.HTTPMethodNotAllowed(request.method, ["POST"])
        arrival, at = self._arrivals, self._clock()
        self._arrivals += 1
        body = await request.read()
        fault = self._take_fault(name)
        if fault is not None and fault.kind in ("down", "http"):
            status = 503 if fault.kind == "down" else fault.status
            self._record(
                arrival, Received(name, self._peek_body(name, body), -1, False, (), at, False, fault.kind, status)
            )
            return web.Response(status=status, text=f"mock province: injected {fault.kind} fault")
        if fault is not None and (fault.kind in ANSWER_FAULTS or fault.kind == "slow"):
            return await self._spoil(request, (arrival, at, name, body), fault)
        if fault is not None and fault.kind == "ret":
            outcome = _Outcome(fault.ret, RET_TEXT.get(fault.ret, "injected"), None, data=self._peek_body(name, body))
        else:
            if fault is not None:  # a stall: wait, then answer normally
                await self._stall(fault.seconds)
            outcome = self._handle(name, body, request.headers)
        kind = fault.kind if fault is not None else None
        self._record(
            arrival,
            Received(name, outcome.data, outcome.ret, outcome.accepted, outcome.problems, at, outcome.duplicate, kind),
        )
        return self._answer(outcome)

    def _answer(self, outcome: _Outcome) -> web.Response:
        response = encode_response(outcome.ret, outcome.msg, outcome.payload, self.secrets)
        return web.json_response(response.as_body(), dumps=lambda v: json.dumps(v, ensure_ascii=False))

    async def _spoil(
        self, request: web.Request, arrived: tuple[int, datetime, str, bytes], fault: Fault
    ) -> web.StreamResponse:
        """A slow answer or an answer fault (simulators.province_faults); the request is kept only as it says."""
        arrival, at, name, body = arrived
        if fault.kind == "slow" and not fault.processed:
            await self._stall(fault.seconds)
            if client_gone(request):  # it gave up: nothing is kept, nobody reads the answer
                self._record(arrival, Received(name, self._peek_body(name, body), -1, False, (), at, fault="slow"))
                return web.Response(status=503)
        if fault.processed or fault.kind == "slow":
            outcome = self._handle(name, body, request.headers)
        else:
            outcome = _Outcome(-1, "not processed", None, data=self._peek_body(name, body))
        status = fault.status if fault.kind == "html" else 200
        kept = (outcome.ret, outcome.accepted, outcome.problems)
        self._record(arrival, Received(name, outcome.data, *kept, at, outcome.duplicate, fault.kind, status))
        if fault.kind == "slow":
            if fault.processed:
                await self._stall(fault.seconds)
            return self._answer(outcome)
        answer = encode_response(outcome.ret, outcome.msg, outcome.payload, self.secrets)
        envelope = answer.as_body()
        if fault.kind == "bad_sig":
            envelope = wrong_sig(answer) if fault.processed else forged_answer(name, outcome.data, self.secrets)
        return await spoiled(request, fault, envelope, arrival)

    def _take_fault(self, interface: str) -> Fault | None:
        now = time.monotonic()
        self._faults = [a for a in self._faults if a.fault.kind != "down" or a.until > now]
        for active in self._faults:
            if active.fault.kind == "down":
                return active.fault
        for active in self._faults:
            if active.fault.matches(interface):
                active.remaining -= 1
                if active.remaining <= 0:
                    self._faults.remove(active)
                return active.fault
        return None

    async def _stall(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _record(self, arrival: int, received: Received) -> None:
        index = bisect.bisect(self._arrival_order, arrival)
        self._arrival_order.insert(index, arrival)
        self.received.insert(index, received)
        problems = "; ".join(received.problems)
        log.info(
            "province %s ret=%s accepted=%s%s%s",
            received.interface,
            received.ret,
            received.accepted,
            f" fault={received.fault}" if received.fault else "",
            f" problems: {problems}" if problems else "",
        )
        if self.record_path is not None:
            self._append_record(self.record_path, self._jsonable(received))

    @staticmethod
    def _append_record(path: Path, entry: dict[str, Any]) -> None:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")

    def _jsonable(self, received: Received) -> dict[str, Any]:
        entry = asdict(received)
        entry["time"] = entry.pop("at").astimezone(self.tz).isoformat()
        entry["problems"] = list(received.problems)
        return entry

    # ------------------------------------------------------------------------------------------------ D6 pipeline

    def _handle(self, name: str, body: bytes, headers: Mapping[str, str]) -> _Outcome:
        problems = self._content_type_problems(headers)
        try:
            envelope = parse_request(body)
        except CodecError as exc:
            return _reject(exc.ret, str(exc), [*problems, str(exc)])
        data = self._peek(name, envelope)
        if envelope.operator_id != self.operator_id:
            reason = f"OperatorID {envelope.operator_id!r} is not the operator {self.operator_id!r}"
            return _reject(RET_ENVELOPE, reason, [*problems, reason], data)
        if name != TOKEN:
            refused = self._token_refusal(headers.get("Authorization"))
            if refused is not None:
                return _reject(RET_TOKEN, refused[0], problems + refused[1], data)
        try:
            verify_request(envelope, self.secrets)
        except CodecError as exc:
            return _reject(RET_SIGNATURE, str(exc), [*problems, str(exc)], data)
        problems += self._envelope_problems(envelope)
        try:
            payload = decrypt_data(envelope.data, self.secrets)
        except CodecError as exc:
            return _reject(RET_DATA, str(exc), [*problems, str(exc)])
        business = (check_token_request if name == TOKEN else CHECKS[name])(payload, self.operator_id)
        if business:
            return _reject(RET_DATA, "; ".join(business[:3]), problems + business, data)
        if name == TOKEN:
            return self._token_answer(payload, problems, data)
        if name == ORDER:
            return self._order_answer(payload, problems, data)
        return _Outcome(RET_OK, OK_MSG, {"Status": 0}, True, tuple(problems), data)

    @staticmethod
    def _content_type_problems(headers: Mapping[str, str]) -> list[str]:
        content_type = headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            return [f"Content-Type {content_type!r} is not application/json;charset=utf-8"]
        return []

    def _peek(self, name: str, envelope: RequestEnvelope) -> dict[str, Any] | None:
        try:
            return _redact(name, decrypt_data(envelope.data, self.secrets))
        except CodecError:
            return None

    def _peek_body(self, name: str, body: bytes) -> dict[str, Any] | None:
        try:
            return self._peek(name, parse_request(body))
        except CodecError:
            return None

    def _token_refusal(self, header: str | None) -> tuple[str, list[str]] | None:
        """None when the Bearer token is valid; else (reason, problems). An expired token is not a problem."""
        if header is None:
            return "no Authorization header", ["Authorization header is missing"]
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or not token or token != "".join(token.split()):
            return "malformed Authorization", ["Authorization must be 'Bearer <token>' with exactly one space"]
        expires = self._tokens.get(_digest(token))
        if expires is None:
            return "unknown token", ["Bearer token was never issued by this province"]
        if expires <= self._clock():
            return "token expired", []
        return None

    def _envelope_problems(self, envelope: RequestEnvelope) -> list[str]:
        problems = check_envelope_format(envelope.timestamp, envelope.seq)
        if envelope.sig != envelope.sig.upper():
            problems.append("Sig is lowercase hex; a strict province requires uppercase (D1)")
        seen = self._seqs.setdefault(envelope.timestamp, set())
        if envelope.seq in seen:
            problems.append(f"Seq {envelope.seq} repeated within TimeStamp {envelope.timestamp} (D2)")
        seen.add(envelope.seq)
        while len(self._seqs) > SEQ_MEMORY:
            self._seqs.popitem(last=False)
        return problems + self._skew_problems(envelope.timestamp)

    def _skew_problems(self, timestamp: str) -> list[str]:
        if self.max_skew_s is None:
            return []
        try:
            sent = datetime.strptime(timestamp, TIMESTAMP).replace(tzinfo=self.tz)
        except ValueError:
            return []
        skew = (sent - self._clock()).total_seconds()
        if abs(skew) > self.max_skew_s:
            return [f"TimeStamp {timestamp} is {skew:+.0f} s off the province clock (local time of {self.tz}, D3)"]
        return []

    def _token_answer(self, payload: dict[str, Any], problems: list[str], data: Any) -> _Outcome:
        fail = 0
        if payload["OperatorID"] != self.operator_id:
            fail = 1
            problems.append(f"query_token refused, FailReason 1: unknown OperatorID {payload['OperatorID']!r}")
        elif not hmac.compare_digest(payload["OperatorSecret"].encode(), self.secrets.operator_secret.encode()):
            fail = 2
            problems.append("query_token refused, FailReason 2: wrong OperatorSecret")
        answer = {
            "OperatorID": self.province_id,
            "SuccStat": 1 if fail else 0,
            "AccessToken": "",
            "TokenAvailableTime": 0,
            "FailReason": fail,
        }
        if not fail:
            token = self._new_token()
            self._tokens[_digest(token)] = self._clock() + timedelta(seconds=self.token_ttl_s)
            self.tokens_issued += 1
            answer.update(AccessToken=token, TokenAvailableTime=self.token_ttl_s)
        return _Outcome(RET_OK, OK_MSG, answer, not fail, tuple(problems), data)

    def _order_answer(self, payload: dict[str, Any], problems: list[str], data: Any) -> _Outcome:
        seq = payload["StartChargeSeq"]
        previous = self._orders.setdefault(seq, payload)
        duplicate = previous is not payload and previous == payload
        result = 0
        if previous is not payload and previous != payload:
            result = 1
            differ = sorted(k for k in previous.keys() | payload.keys() if previous.get(k) != payload.get(k))
            problems.append(f"StartChargeSeq {seq} was accepted before with different {', '.join(differ)}")
        answer = {"StartChargeSeq": seq, "ConnectorID": payload["ConnectorID"], "ConfirmResult": result}
        return _Outcome(RET_OK, OK_MSG, answer, result == 0, tuple(problems), data, duplicate)

    # ------------------------------------------------------------------------------------------------ control API

    async def _on_fault(self, request: web.Request) -> web.Response:
        try:
            fields = json.loads(await request.read())
            fault = Fault(**fields)
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self.inject(fault)
        return web.json_response({"ok": True})

    async def _on_expire(self, request: web.Request) -> web.Response:
        self.expire_tokens()
        return web.json_response({"expired": len(self._tokens)})

    async def _on_received(self, request: web.Request) -> web.Response:
        entries = [self._jsonable(r) for r in self.received]
        return web.json_response(entries, dumps=lambda v: json.dumps(v, ensure_ascii=False, default=str))

    async def _on_problems(self, request: web.Request) -> web.Response:
        return web.json_response(self.problems(), dumps=lambda v: json.dumps(v, ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())

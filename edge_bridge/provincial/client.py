"""The client side of the provincial protocol: token cache (D5), signed pushes, and what each answer means.

``ProvinceClient.push(interface, payload_json)`` never raises for a failed push: it returns a :class:`PushResult`
whose outcome is accepted, transient (retry with backoff), permanent (dead-letter) or token expired. The Sender
seam of the uploader is exactly this method.

Only a verified answer decides: an answer that cannot be read (not JSON, HTML, cut short) or cannot be trusted (a
Ret 0 whose Sig does not match, Data that does not decrypt) is transient, never acceptance and never a dead letter;
the resend is safe because the province de-duplicates orders by StartChargeSeq.
"""

from __future__ import annotations

import asyncio
import enum
import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from edge_bridge.domain.wiretime import format_timestamp
from edge_bridge.errors import CodecError, TransientUploadError
from edge_bridge.provincial import codec, wire_trace
from edge_bridge.provincial.crypto import Secrets
from edge_bridge.timeutil import utc_now
from edge_bridge.tls import client_context

log = logging.getLogger(__name__)

QUERY_TOKEN = "query_token"
ORDER_INFO = "notification_orderInfo"
TRANSIENT_RETS = frozenset({codec.RET_BUSY, codec.RET_SYSTEM})
PERMANENT_RETS = frozenset({codec.RET_SIGNATURE, codec.RET_ENVELOPE, codec.RET_DATA})
TRANSIENT_HTTP = frozenset({408, 425, 429})


class Outcome(enum.Enum):
    ACCEPTED = "accepted"
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    TOKEN_EXPIRED = "token_expired"


@dataclass(frozen=True)
class PushResult:
    outcome: Outcome
    reason: str = ""
    data: Mapping[str, Any] | None = None  # the decrypted response Data, when there is one
    answer: str | None = None  # that Data as the province encrypted it (stored with the row)
    ret: int | None = None  # the province's Ret; None when no protocol answer came (HTTP error, timeout, ...)


@dataclass(frozen=True)
class Exchange:
    """One signed POST's raw answer, unjudged (``edge-bridge selftest`` reads it, Date header included)."""

    status: int
    body: bytes
    date: str | None = None  # the answer's HTTP Date header


# ---------------------------------------------------------------------------------------------------- pure


def classify_http(status: int) -> PushResult | None:
    """None for HTTP 200 (read the body); else what a non-200 status means (D17)."""
    if status == 200:
        return None
    if status >= 500 or status in TRANSIENT_HTTP:
        return PushResult(Outcome.TRANSIENT, f"HTTP {status}")
    return PushResult(Outcome.PERMANENT, f"HTTP {status}")


def classify_ret(
    interface: str, response: codec.Response, data: Mapping[str, Any] | None, answer: str | None = None
) -> PushResult:
    """What a province answer means for a push (D10, D17). ``answer``: the decrypted Data text, kept."""
    where = f"Ret {response.ret}" + (f" ({response.msg})" if response.msg else "")
    if response.ret == codec.RET_OK:
        return _business_result(interface, data or {}, answer)
    if response.ret == codec.RET_TOKEN:
        return PushResult(Outcome.TOKEN_EXPIRED, where, ret=response.ret)
    if response.ret in TRANSIENT_RETS:
        return PushResult(Outcome.TRANSIENT, where, ret=response.ret)
    reason = where if response.ret in PERMANENT_RETS else f"unexpected {where}"
    return PushResult(Outcome.PERMANENT, reason, ret=response.ret)


def _business_result(interface: str, data: Mapping[str, Any], answer: str | None) -> PushResult:
    if interface == ORDER_INFO:
        confirm = _lenient_int(data.get("ConfirmResult"), -1)
        if confirm == 0:
            return PushResult(Outcome.ACCEPTED, data=data, answer=answer, ret=codec.RET_OK)
        label = "disputed" if confirm == 1 else "not confirmed"
        return PushResult(Outcome.PERMANENT, f"{label} (ConfirmResult {confirm!r})", data, answer, codec.RET_OK)
    status = _lenient_int(data.get("Status"), 0)
    if status == 0:
        return PushResult(Outcome.ACCEPTED, data=data, answer=answer, ret=codec.RET_OK)
    return PushResult(Outcome.PERMANENT, f"discarded by the province (Status {status!r})", data, answer, codec.RET_OK)


def token_refresh_margin(lifetime_s: float) -> float:
    """D5: refresh 5 minutes or 10% of the lifetime before expiry, whichever is less."""
    return min(300.0, lifetime_s / 10)


def _lenient_int(value: Any, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return default


# ---------------------------------------------------------------------------------------------------- client


@dataclass(frozen=True)
class _Token:
    value: str
    refresh_at: datetime

    def __repr__(self) -> str:
        return f"_Token(refresh_at={self.refresh_at.isoformat()})"


class ProvinceClient:
    """Signed POSTs to ``base_url + interface`` with a cached access token."""

    def __init__(
        self,
        *,
        base_url: str,
        operator_id: str,
        secrets: Secrets,
        tz: ZoneInfo,
        timeout_s: float = 10.0,
        sig_lowercase: bool = False,
        ca_file: Path | None = None,
        clock: Callable[[], datetime] = utc_now,
        trace_wire: bool = False,
        started_at: float | None = None,
    ) -> None:
        # log every push and answer decrypted (wire_trace), secrets masked; a reload sets it
        self.trace_wire = trace_wire
        self._base_url = base_url.rstrip("/") + "/"
        self._ca_file = ca_file  # https: trust only these CAs; None: the system trust store
        self._operator_id = operator_id
        self._secrets = secrets
        self._tz = tz
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._sig_lowercase = sig_lowercase
        self._clock = clock
        self._seq = codec.SeqCounter()
        # started_at (the daemon's process start, Unix time): the Seqs of its second may be a predecessor's
        self._first_second: int | None = None if started_at is None else int(started_at)
        self._stamp = (-1, "")  # (second, its TimeStamp)
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self.tokens_fetched = 0

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def push(self, interface: str, payload_json: bytes) -> PushResult:
        """Deliver one push; on Ret 4002 refresh the token and retry once (D5)."""
        try:
            token = await self._current_token()
            result = await self._push_once(interface, payload_json, token)
            if result.outcome is Outcome.TOKEN_EXPIRED:
                self._forget(token)
                result = await self._push_once(interface, payload_json, await self._current_token())
        except TransientUploadError as exc:
            return PushResult(Outcome.TRANSIENT, str(exc))
        if result.outcome is Outcome.TOKEN_EXPIRED:
            return PushResult(Outcome.TRANSIENT, f"{result.reason} again after a token refresh", ret=result.ret)
        return result

    async def _push_once(self, interface: str, payload_json: bytes, token: str) -> PushResult:
        status, body = await self._post(interface, payload_json, token)
        early = classify_http(status)
        if early is not None:
            return early
        try:
            response = codec.parse_response(body)
        except CodecError as exc:
            return PushResult(Outcome.TRANSIENT, f"unreadable answer: {exc}")
        try:
            data, answer = codec.open_response_with_text(response, self._secrets)
        except CodecError as exc:  # not the province's word (forged, garbled): not acceptance, not a verdict
            return PushResult(Outcome.TRANSIENT, f"answer rejected: {exc}")
        return classify_ret(interface, response, data, answer)

    # ------------------------------------------------------------------------------------------------ tokens

    async def _current_token(self) -> str:
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token.value
        async with self._token_lock:  # one refresh at a time (D5)
            if self._token is None or self._clock() >= self._token.refresh_at:
                self._token = await self._fetch_token()
            return self._token.value

    def _forget(self, token: str) -> None:
        if self._token is not None and hmac.compare_digest(self._token.value.encode(), token.encode()):
            self._token = None

    async def _fetch_token(self) -> _Token:
        payload = {"OperatorID": self._operator_id, "OperatorSecret": self._secrets.operator_secret}
        status, body = await self._post(QUERY_TOKEN, codec.dumps(payload), None)
        data = self._token_answer(status, body)
        if _lenient_int(data.get("SuccStat"), 1) != 0 or not isinstance(data.get("AccessToken"), str):
            reason = _lenient_int(data.get("FailReason"), -1)
            raise TransientUploadError(f"query_token refused (FailReason {reason}): check operator_id and secrets")
        lifetime = _lenient_int(data.get("TokenAvailableTime"), 0)
        if lifetime <= 0:
            raise TransientUploadError("query_token answered no usable TokenAvailableTime")
        self.tokens_fetched += 1
        log.info("token_fetched", extra={"lifetime_s": lifetime})
        refresh_at = self._clock() + timedelta(seconds=lifetime - token_refresh_margin(lifetime))
        return _Token(data["AccessToken"], refresh_at)

    def _token_answer(self, status: int, body: bytes) -> Mapping[str, Any]:
        if status != 200:
            raise TransientUploadError(f"query_token: HTTP {status}")
        try:
            response = codec.parse_response(body)
            data = codec.open_response(response, self._secrets)
        except CodecError as exc:
            raise TransientUploadError(f"query_token: {exc}") from None
        if response.ret != codec.RET_OK or data is None:
            raise TransientUploadError(f"query_token: Ret {response.ret}")
        return data

    # ------------------------------------------------------------------------------------------------ HTTP

    async def _post(self, interface: str, payload_json: bytes, token: str | None) -> tuple[int, bytes]:
        answer = await self.exchange(interface, payload_json, token)
        return answer.status, answer.body

    async def exchange(self, interface: str, payload_json: bytes, token: str | None = None) -> Exchange:
        """One signed POST of ``payload_json`` and its raw answer; TransientUploadError when none came back."""
        now = await self._signing_time()
        envelope = codec.encode_request_json(
            payload_json,
            operator_id=self._operator_id,
            secrets=self._secrets,
            timestamp=self._timestamp(now),
            seq=self._seq.next(now),
            lowercase_sig=self._sig_lowercase,
        )
        headers = {"Content-Type": "application/json;charset=utf-8"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            session = self._ensure_session()
            async with session.post(self._base_url + interface, data=envelope.to_json(), headers=headers) as reply:
                answer = Exchange(reply.status, await reply.read(), reply.headers.get("Date"))
        except TimeoutError:
            raise TransientUploadError(f"{interface}: no answer within {self._timeout.total} s") from None
        except aiohttp.ClientError as exc:
            raise TransientUploadError(f"{interface}: {type(exc).__name__}: {exc}") from None
        if self.trace_wire:
            wire_trace.push(interface, payload_json, answer.status, answer.body, self._secrets)
        return answer

    async def _signing_time(self) -> datetime:
        """Now, but with ``started_at`` never within the second the process started: a daemon restarted within a
        second would count Seq from 0001 again under a TimeStamp its predecessor used (D2: Seq must not repeat
        within a second), and the predecessor sent nothing after this process started. Start-up takes longer than
        that second, so usually nothing waits; else the first requests wait for the next second (once, at most 1 s)."""
        now = self._clock()
        if self._first_second is not None:
            wait = self._first_second + 1 - now.timestamp()
            if wait > 0:  # requests made meanwhile wait too, each for what is left
                await asyncio.sleep(min(wait, 1.0))
                now = self._clock()
            self._first_second = None  # once: a frozen test clock must not make every request wait
        return now

    def _timestamp(self, now: datetime) -> str:
        """The envelope TimeStamp, formatted once per second."""
        second = int(now.timestamp())
        if self._stamp[0] != second:
            self._stamp = (second, format_timestamp(now, self._tz))
        return self._stamp[1]

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=client_context(self._ca_file))
            self._session = aiohttp.ClientSession(timeout=self._timeout, connector=connector)
        return self._session

"""``edge-bridge selftest``: prove the province link and our pull API before go-live, one check per line.

The checks run in a fixed order (:data:`CHECKS`): config, dns, tcp, query_token, signature, decryption,
token_lifetime, pull_api, clock. Each is a :class:`Check`: ``ok`` True (passed), False (failed: ``fix`` says what
to change) or None (skipped: an earlier failure makes it moot). One query_token exchange with the province feeds
query_token, signature, decryption, token_lifetime and clock.

Which of the four secrets is wrong (D6: a province checks our Sig before it decrypts our Data, and answers errors
signed, with Data = the encryption of ``{}``):

- SigSecret: Ret 4001, and the answer's Sig does not verify with ours.
- OperatorSecret: Ret 0 with SuccStat 1 / FailReason 2 (Ret 4004 on some platforms, when both data secrets check out).
- DataSecret or DataSecretIV: Ret 4004 (4003 on some platforms); the answer's Data tells which
  (:func:`diagnose_data`): in CBC the IV only garbles the first block.

Invariant: no secret, no part of one and nothing derived from one (the IV the province used) is ever printed; a
failure names the config key (``province.data_secret_iv``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edge_bridge.config import Config
from edge_bridge.errors import CodecError, TransientUploadError
from edge_bridge.provincial import codec
from edge_bridge.provincial.client import Exchange, ProvinceClient, token_refresh_margin
from edge_bridge.provincial.crypto import Secrets, signature_matches
from edge_bridge.provincial.data_diagnosis import ERROR_DATA, DataVerdict, diagnose_data
from edge_bridge.timeutil import utc_now

CHECKS = (
    "config",
    "dns",
    "tcp",
    "query_token",
    "signature",
    "decryption",
    "token_lifetime",
    "pull_api",
    "clock",
)
PROVINCE_CHECKS = CHECKS[3:7]
CLOCK_TOLERANCE_S = 60  # see clock_check
SECRET_FIX = "province.{key} (or {key}_file) must be the {name} agreed with the province"
NAMES = {
    "operator_secret": "OperatorSecret",
    "data_secret": "DataSecret",
    "data_secret_iv": "DataSecretIV",
    "sig_secret": "SigSecret",
}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: skipped
    detail: str
    fix: str = ""

    @property
    def status(self) -> str:
        return "skip" if self.ok is None else "ok" if self.ok else "FAIL"


def secret_fix(key: str) -> str:
    return SECRET_FIX.format(key=key, name=NAMES[key])


def skipped(name: str, why: str) -> Check:
    return Check(name, None, why)


async def run_selftest(config: Config, path: Path, *, clock: Callable[[], datetime] = utc_now) -> list[Check]:
    """Every check, in :data:`CHECKS` order."""
    url = urlsplit(config.province.base_url)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    timeout = config.province.request_timeout_s
    checks = [config_check(config, path), await dns_check(host, port, timeout)]
    checks.append(await tcp_check(host, port, timeout) if checks[-1].ok else skipped("tcp", "needs DNS"))
    if checks[-1].ok:
        token = await token_exchange(config, clock)
        checks += province_checks(config, token)
    else:
        token = None
        checks += [skipped(name, "needs TCP to the province") for name in PROVINCE_CHECKS]
    checks.append(await pull_api_check(config, clock))
    checks.append(clock_check(token) if token is not None else skipped("clock", "needs an answer from the province"))
    return checks


def config_check(config: Config, path: Path) -> Check:
    p = config.province
    detail = f"{path}: operator {config.operator.id}, province {p.operator_id} at {p.base_url}"
    return Check("config", True, detail)


# ---------------------------------------------------------------------------------------------- network


async def dns_check(host: str, port: int, timeout_s: float) -> Check:
    try:
        async with asyncio.timeout(timeout_s):
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        fix = "check the host of [province] base_url and the gateway's DNS (resolvectl status)"
        return Check("dns", False, f"{host} does not resolve: {_why(exc)}", fix)
    addresses = sorted({str(info[4][0]) for info in infos})
    return Check("dns", True, f"{host} is {', '.join(addresses)}")


async def tcp_check(host: str, port: int, timeout_s: float, name: str = "tcp", fix: str = "") -> Check:
    """A TCP connection to ``host:port`` (opened and closed)."""
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError) as exc:
        fix = fix or (
            "check the host and port of [province] base_url, the gateway's route and firewall, and ask the province "
            "whether it admits only registered source addresses; if it is down, try again later"
        )
        return Check(name, False, f"{host}:{port}: {_why(exc, timeout_s)}", fix)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return Check(name, True, f"{host}:{port} accepts connections")


def _why(exc: BaseException, timeout_s: float = 0) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g} s (a firewall drops it, or no route)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens there)"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


# ---------------------------------------------------------------------------------------------- the province


@dataclass(frozen=True)
class TokenExchange:
    """Our query_token and the province's answer, read but not judged."""

    sent_at: datetime
    received_at: datetime
    answer: Exchange | None = None
    response: codec.Response | None = None
    problem: str = ""  # why there is no response to judge


def province_client(config: Config, clock: Callable[[], datetime], base_url: str = "", **who: Any) -> ProvinceClient:
    """A client as the daemon's (``base_url`` and ``operator_id`` may be overridden: the pull API check)."""
    p = config.province
    return ProvinceClient(
        base_url=base_url or p.base_url,
        operator_id=who.get("operator_id", config.operator.id),
        secrets=p.secrets(),
        tz=config.tz,
        timeout_s=p.request_timeout_s,
        sig_lowercase=p.sig_lowercase,
        ca_file=p.ca_file if not base_url else None,
        clock=clock,
        trace_wire=p.trace_wire,
    )


async def query_token(client: ProvinceClient, operator_id: str, operator_secret: str) -> Exchange:
    payload = {"OperatorID": operator_id, "OperatorSecret": operator_secret}
    try:
        return await client.exchange("query_token", codec.dumps(payload))
    finally:
        await client.close()


async def token_exchange(config: Config, clock: Callable[[], datetime]) -> TokenExchange:
    sent_at = clock()
    client = province_client(config, clock)
    try:
        answer = await query_token(client, config.operator.id, config.province.secret("operator_secret"))
    except TransientUploadError as exc:
        return TokenExchange(sent_at, clock(), problem=f"no answer: {exc}")
    done = TokenExchange(sent_at, clock(), answer)
    if answer.status != 200:
        return replace(done, problem=f"HTTP {answer.status} (the province answers every call with 200)")
    try:
        return replace(done, response=codec.parse_response(answer.body))
    except CodecError as exc:
        return replace(done, problem=f"the answer is not a provincial envelope: {exc}")


def province_checks(config: Config, token: TokenExchange) -> list[Check]:
    """query_token, signature, decryption and token_lifetime, from one answer."""
    response = token.response
    if response is None:
        fix = "check [province] base_url (scheme, host, port and the path, e.g. http://host:8093/evcsV2/trade/)"
        failed = Check("query_token", False, token.problem, fix)
        return [failed, *(skipped(name, "needs an answer") for name in PROVINCE_CHECKS[1:])]
    secrets = config.province.secrets()
    sig_ok = signature_matches(response.signed_text(), response.sig, secrets) if response.sig else None
    known = ERROR_DATA if response.ret != codec.RET_OK else None
    data = diagnose_data(response.data, secrets, known) if response.data else None
    answer = _token_data(response, secrets) if data is not None and data.ok else None
    return [
        token_check(config, response, data, answer),
        signature_check(sig_ok),
        decryption_check(data),
        lifetime_check(answer),
    ]


def _token_data(response: codec.Response, secrets: Secrets) -> dict[str, Any] | None:
    if response.ret != codec.RET_OK:
        return None
    try:
        return codec.parse_data(codec.decrypt_text(response.data, secrets))
    except CodecError:
        return None


def token_check(
    config: Config, response: codec.Response, data: DataVerdict | None, answer: dict[str, Any] | None
) -> Check:
    said = f"Ret {response.ret}" + (f" {response.msg}" if response.msg else "")
    if response.ret == codec.RET_OK:
        return _token_answer_check(config, said, answer)
    if response.ret == codec.RET_SIGNATURE:
        fix = secret_fix("sig_secret") + " (if it is, the province may want [province] sig_lowercase = true)"
        return Check("query_token", False, f"{said}: the province could not verify our Sig", fix)
    if response.ret in (codec.RET_ENVELOPE, codec.RET_DATA):
        return _refused_data_check(config, said, response.ret, data)
    return Check("query_token", False, f"{said}: the province is busy or failing", "try again later")


def _refused_data_check(config: Config, said: str, ret: int, data: DataVerdict | None) -> Check:
    if data is not None and data.wrong is not None:
        return Check("query_token", False, f"{said}: the province could not read our Data", "see decryption below")
    operator = f"[operator] operator_id {config.operator.id} must be registered with the province"
    if ret == codec.RET_ENVELOPE or data is None:
        detail = f"{said}: the province refused our envelope"
        return Check("query_token", False, detail, operator + " (edge-bridge derive-operator-id CREDIT_CODE)")
    detail = f"{said}: our Data decrypts for the province, yet it refused it (some platforms answer so to a wrong "
    return Check("query_token", False, detail + "OperatorSecret)", f"{secret_fix('operator_secret')}; {operator}")


def _token_answer_check(config: Config, said: str, answer: dict[str, Any] | None) -> Check:
    if answer is None:
        return Check("query_token", False, f"{said}, but the answer cannot be trusted or read", "see below")
    if _integer(answer.get("SuccStat")) == 0 and isinstance(answer.get("AccessToken"), str):
        return Check("query_token", True, f"OperatorID {config.operator.id} and OperatorSecret accepted")
    reason = _integer(answer.get("FailReason"))
    if reason == 2:
        return Check("query_token", False, "refused with FailReason 2 (wrong secret)", secret_fix("operator_secret"))
    fix = f"[operator] operator_id {config.operator.id} must be the one registered with the province"
    return Check("query_token", False, f"refused with FailReason {reason}", fix)


def _integer(value: Any) -> int | None:
    """An int, or a numeric string (the province's ``FailReason: ""`` and such, §7)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = value.strip() if isinstance(value, str) else ""
    return int(text) if text.lstrip("-").isdigit() and text.isascii() else None


def signature_check(sig_ok: bool | None) -> Check:
    if sig_ok is None:
        return skipped("signature", "the answer carries no Sig (some platforms omit it on errors)")
    if sig_ok:
        return Check("signature", True, "the answer's Sig verifies with our SigSecret")
    return Check("signature", False, "the answer's Sig does not verify with our SigSecret", secret_fix("sig_secret"))


def decryption_check(data: DataVerdict | None) -> Check:
    if data is None:
        return skipped("decryption", "the answer carries no Data (some platforms send none on errors)")
    if data.ok:
        return Check("decryption", True, "the answer's Data decrypts with our DataSecret and DataSecretIV")
    fix = secret_fix(data.wrong) if data.wrong else "check province.data_secret and province.data_secret_iv"
    return Check("decryption", False, f"the answer's Data: {data.detail}", fix)


def lifetime_check(answer: dict[str, Any] | None) -> Check:
    if answer is None or _integer(answer.get("SuccStat")) != 0:
        return skipped("token_lifetime", "needs a token")
    lifetime = _integer(answer.get("TokenAvailableTime"))
    if lifetime is None or lifetime <= 0:
        detail = f"TokenAvailableTime {answer.get('TokenAvailableTime')!r} is not a positive number of seconds"
        return Check("token_lifetime", False, detail, "ask the province: pushes need a token that lasts")
    detail = f"{lifetime} s; pushes fetch a new one {token_refresh_margin(lifetime):g} s before it ends"
    return Check("token_lifetime", True, detail)


# ---------------------------------------------------------------------------------------------- pull API and clock


def pull_url(config: Config) -> tuple[str, bool]:
    """The pull API's base URL, and whether it is the one registered with the province (else the listen address)."""
    if config.pull_api.public_url:
        return config.pull_api.public_url, True
    host, port = config.pull_api.host_port
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104 (a wildcard: call loopback)
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}{config.pull_api.path_prefix.rstrip('/')}/", False


async def pull_api_check(config: Config, clock: Callable[[], datetime]) -> Check:
    """query_token on our pull API as the province calls it: the province's OperatorID, the shared secrets."""
    url, public = pull_url(config)
    split = urlsplit(url)
    port = split.port or (443 if split.scheme == "https" else 80)
    timeout, fix = config.province.request_timeout_s, _no_pull(public, port)
    reached = await tcp_check(split.hostname or "", port, timeout, "pull_api", fix)
    if not reached.ok:
        return replace(reached, detail=f"{url}: {reached.detail.split(': ', 1)[-1]}")
    client = province_client(config, clock, url, operator_id=config.province.operator_id)
    try:
        answer = await query_token(client, config.province.operator_id, config.province.secret("operator_secret"))
    except TransientUploadError as exc:
        return Check("pull_api", False, f"{url}: {exc}", _no_pull(public, port))
    check = _pull_answer_check(config, url, answer)
    if not public and check.ok:
        note = "; [pull_api] public_url is not configured, so only the listen address was checked"
        fix = "set [pull_api] public_url to the URL given to the province"
        return replace(check, detail=check.detail + note, fix=fix)
    return check


def _no_pull(public: bool, port: int) -> str:
    if not public:
        return "start the daemon (systemctl status edge-bridge), or check [pull_api] listen"
    return (
        f"the daemon is not running, or the router does not forward port {port} to this gateway; a router without "
        "NAT loopback cannot be reached from inside: then check from outside"
    )


def _pull_answer_check(config: Config, url: str, answer: Exchange) -> Check:
    prefix = config.pull_api.path_prefix
    if answer.status == 404:
        fix = f"public_url must be this gateway's address followed by [pull_api] path_prefix ({prefix})"
        return Check("pull_api", False, f"{url}query_token: HTTP 404 (the path prefix is wrong)", fix)
    if answer.status == 403:
        fix = "expected when [pull_api] allow_from admits only the province: ask it to call query_token"
        return Check("pull_api", False, f"{url}: HTTP 403 (refused by [pull_api] allow_from)", fix)
    try:
        response = codec.parse_response(answer.body)
        data = codec.open_response(response, config.province.secrets())
    except CodecError as exc:
        fix = "the URL reaches something else than this gateway's edge-bridge (or one with other secrets)"
        return Check("pull_api", False, f"{url}: HTTP {answer.status}, {exc}", fix)
    if response.ret != codec.RET_OK or data is None or _integer(data.get("SuccStat")) != 0:
        fix = "the URL reaches an edge-bridge with another config: is it this gateway's?"
        return Check("pull_api", False, f"{url}: Ret {response.ret} {response.msg}".rstrip(), fix)
    return Check("pull_api", True, f"{url} answers query_token as the province will call it")


def clock_check(token: TokenExchange) -> Check:
    """Our clock against the province's HTTP Date, which has 1 s resolution: the offset is ±1 s. The tolerance,
    60 s, is far above that and above NTP's error, and below any TimeStamp window a province could sensibly
    check (the mock's is an hour): more than a minute off means the gateway has no working time sync, and order
    times drift away from what the province and the chargers record."""
    date = token.answer.date if token.answer is not None else None
    try:
        theirs = parsedate_to_datetime(date or "") + timedelta(seconds=0.5)  # Date truncates to the second
    except (TypeError, ValueError):
        return skipped("clock", "the province's answer carries no HTTP Date")
    ours = token.sent_at + (token.received_at - token.sent_at) / 2
    offset = round((ours - theirs).total_seconds())
    side = "ahead of" if offset > 0 else "behind"
    detail = f"our clock is {abs(offset)} s {side} the province's (HTTP Date, ±1 s)"
    if abs(offset) <= CLOCK_TOLERANCE_S:
        return Check("clock", True, detail)
    return Check("clock", False, detail, "turn on time sync: timedatectl set-ntp true (then: timedatectl status)")

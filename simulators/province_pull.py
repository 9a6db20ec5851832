"""The province's pull client and the ``edge-bridge-sim-province`` CLI (``serve`` and ``pull``).

``pull()`` calls an operator's pull API as the province does: it fetches a token, then POSTs a query with the real
envelope (D1). ``main()`` is the console script; ``serve`` runs :class:`simulators.province.MockProvince`. Every name
here is re-exported by :mod:`simulators.province`, which imports this module; this module imports the server only
when ``serve`` runs, so there is no import cycle.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from secrets import randbelow
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import aiohttp

from edge_bridge.config import Config, load_config
from edge_bridge.domain.wiretime import format_timestamp
from edge_bridge.errors import CodecError, ConfigError
from edge_bridge.provincial.client import QUERY_TOKEN as TOKEN
from edge_bridge.provincial.codec import RET_OK, SeqCounter, encode_request, open_response, parse_response
from edge_bridge.provincial.crypto import Secrets
from edge_bridge.timeutil import utc_now

log = logging.getLogger("simulators.province")  # the server's logger: ``serve`` logs under one name
DESCRIPTION = (  # the first line of simulators.province's docstring, as --help showed before the split
    "A strict mock of the Shandong provincial platform, and a client that calls our pull API as the province does."
)

# ---------------------------------------------------------------------------------------------------- pull client


class PullError(Exception):
    """The pull could not be completed: refused token, HTTP error or an unreadable answer."""


@dataclass
class _Caller:
    session: aiohttp.ClientSession
    base_url: str
    province_id: str
    secrets: Secrets
    tz: ZoneInfo
    clock: Callable[[], datetime]
    timeout: aiohttp.ClientTimeout
    seq: SeqCounter = field(default_factory=SeqCounter)

    async def post(self, interface: str, data: Any, token: str | None) -> tuple[int, str, dict[str, Any] | None]:
        now = self.clock()
        envelope = encode_request(
            data,
            operator_id=self.province_id,
            secrets=self.secrets,
            timestamp=format_timestamp(now, self.tz),
            seq=self.seq.next(now),
        )
        headers = {"Content-Type": "application/json;charset=utf-8"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        url = self.base_url.rstrip("/") + "/" + interface
        body = json.dumps(envelope.as_body()).encode()
        async with self.session.post(url, data=body, headers=headers, timeout=self.timeout) as resp:
            raw = await resp.read()
            if resp.status != 200:
                raise PullError(f"{url}: HTTP {resp.status}")
        try:
            response = parse_response(raw)
            return response.ret, response.msg, open_response(response, self.secrets)
        except CodecError as exc:
            raise PullError(f"{url}: {exc}") from exc


async def pull(
    base_url: str,
    interface: str,
    data: Any,
    *,
    province_id: str,
    secrets: Secrets,
    session: aiohttp.ClientSession | None = None,
    token: str | None = None,
    tz: ZoneInfo | None = None,
    clock: Callable[[], datetime] = utc_now,
    timeout_s: float = 10.0,
) -> tuple[int, str, dict[str, Any] | None]:
    """Call one interface of an operator's pull API as the province: fetch a token first (unless ``interface``
    is query_token or ``token`` is given), then POST the query. Returns (Ret, Msg, decrypted Data or None).

    Raises PullError when the token is refused (SuccStat 1) or the answer is not a readable envelope; connection
    errors are aiohttp's.
    """
    own = session is None
    session = session if session is not None else aiohttp.ClientSession()
    caller = _Caller(
        session,
        base_url,
        province_id,
        secrets,
        tz or ZoneInfo("Asia/Shanghai"),
        clock,
        aiohttp.ClientTimeout(total=timeout_s),
    )
    try:
        if interface != TOKEN and token is None:
            query = {"OperatorID": province_id, "OperatorSecret": secrets.operator_secret}
            ret, msg, answer = await caller.post(TOKEN, query, None)
            if ret != RET_OK:
                return ret, msg, answer
            if not answer or answer.get("SuccStat") != 0 or not answer.get("AccessToken"):
                reason = (answer or {}).get("FailReason")
                raise PullError(f"query_token refused: SuccStat {(answer or {}).get('SuccStat')} FailReason {reason}")
            token = str(answer["AccessToken"])
        return await caller.post(interface, data, token)
    finally:
        if own:
            await session.close()


# ---------------------------------------------------------------------------------------------------- CLI

QUERIES = {
    "token": TOKEN,
    "stations": "query_stations_info",
    "status": "query_station_status",
    "stats": "query_station_stats",
    "policy": "query_equip_business_policy",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-bridge-sim-province", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the mock province until SIGINT/SIGTERM")
    serve.add_argument("--config", required=True, type=Path)
    serve.add_argument("--listen", help="HOST:PORT (default: host and port of [province].base_url)")
    serve.add_argument("--record", type=Path, help="append one JSON line per request to this file")
    query = commands.add_parser("pull", help="call OUR pull API as the province and print the answer")
    query.add_argument("query", choices=sorted(QUERIES))
    query.add_argument("--config", required=True, type=Path)
    query.add_argument("--url", help="pull API base URL (default: from [pull_api])")
    query.add_argument("--station")
    query.add_argument("--connector")
    query.add_argument("--start", help="yyyy-MM-dd")
    query.add_argument("--end", help="yyyy-MM-dd")
    query.add_argument("--page", type=int, default=1)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.command == "serve":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        return asyncio.run(_serve(config, args))
    return asyncio.run(_pull_command(config, args))


def _split_host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


async def _serve(config: Config, args: argparse.Namespace) -> int:
    from simulators.province import MockProvince  # the server imports this module: import it only to serve

    base = urlparse(config.province.base_url)
    host, port = _split_host_port(args.listen) if args.listen else (base.hostname or "127.0.0.1", base.port or 80)
    province = MockProvince.from_config(config, record_path=args.record)
    try:
        url = await province.start(host, port)
    except OSError as exc:
        print(f"cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    log.info("mock province listening on %s", url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await province.stop()
    return 0


def _default_pull_url(config: Config) -> str:
    host, port = config.pull_api.host_port
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104 - mapping a wildcard to loopback
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}{config.pull_api.path_prefix}"


def default_query(config: Config, args: argparse.Namespace, now: datetime) -> tuple[str, dict[str, Any]]:
    """The interface and Data for one ``pull`` sub-command, defaults filled from the config."""
    province_id = config.province.operator_id
    today = now.astimezone(config.tz).strftime("%Y-%m-%d")
    first_station = config.stations[0]
    data: dict[str, Any]
    if args.query == "token":
        data = {"OperatorID": province_id, "OperatorSecret": config.province.secret("operator_secret")}
    elif args.query == "stations":
        data = {"PageNo": args.page, "PageSize": 10}
    elif args.query == "status":
        data = {"StationIDs": [args.station] if args.station else [s.station_id for s in config.stations]}
    elif args.query == "stats":
        start = args.start or today
        data = {"StationID": args.station or first_station.station_id, "StartTime": start, "EndTime": args.end or start}
    else:
        connector = args.connector or first_station.chargers[0].connectors[0].connector_id
        biz_seq = f"{province_id}{format_timestamp(now, config.tz)}{randbelow(10000):04d}"
        data = {"EquipBizSeq": biz_seq, "ConnectorID": connector}
    return QUERIES[args.query], data


async def _pull_command(config: Config, args: argparse.Namespace) -> int:
    base_url = args.url or _default_pull_url(config)
    interface, data = default_query(config, args, utc_now())
    p = config.province
    secrets = p.secrets()
    try:
        ret, msg, answer = await pull(
            base_url,
            interface,
            data,
            province_id=p.operator_id,
            secrets=secrets,
            tz=config.tz,
            timeout_s=p.request_timeout_s,
        )
    except PullError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        detail = (str(exc).splitlines() or [type(exc).__name__])[0]
        print(f"error: cannot call {base_url}{interface}: {detail}", file=sys.stderr)
        return 1
    if ret != RET_OK:
        print(f"Ret {ret}: {msg}", file=sys.stderr)
        return 1
    print(pretty_json(answer))
    return 0


def pretty_json(value: Any, indent: int = 0) -> str:
    """Indented JSON with non-ASCII kept and Decimals written as the exact numbers they are."""
    pad, inner = "  " * indent, "  " * (indent + 1)
    if isinstance(value, dict) and value:
        items = (
            f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {pretty_json(v, indent + 1)}" for k, v in value.items()
        )
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and value:
        return "[\n" + ",\n".join(f"{inner}{pretty_json(v, indent + 1)}" for v in value) + f"\n{pad}]"
    if isinstance(value, Decimal):
        return format(value, "f")
    return json.dumps(value, ensure_ascii=False)

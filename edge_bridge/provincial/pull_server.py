"""The pull API the province calls on us (§4.5-4.9): five signed, encrypted POST interfaces on aiohttp.

Every request runs the D6 checks in order: parse the JSON envelope (Ret 4003), the envelope OperatorID is the
province's (4003: the province is our only caller), the Bearer token (4002; not for query_token), the Sig (4001),
decrypt and parse Data (4004), then the interface's own validation (4004). Every answer is HTTP 200 with a signed
response; errors carry an encrypted ``{}``. An unexpected exception is Ret 500, with the traceback in the log only.

HTTP-level refusals, unsigned: an unknown interface 404, a method other than POST 405, a body over 1 MiB 413 (it is
not read, so there is nothing trustworthy to answer in the envelope), a caller outside ``allow_from`` 403. The
listener (sockets, connection caps, timeouts) is ``pull_listener.py``.

The answers come from live data in the store (``store/reports.py``): query_station_status from each connector's
stored provincial Status (0 when never decided, or when its charger is silent for ``offline_after_s`` or never seen),
query_station_stats from the finished sessions (D14, ``domain/stats.py``), query_stations_info from the config plus
what BootNotification taught (configured values win, ``domain/stations.py``).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import math
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from edge_bridge.config import Config, site_model
from edge_bridge.domain import stats
from edge_bridge.domain.places import Where
from edge_bridge.domain.site import ChargerDesc, ConnectorDesc, Site, StationDesc
from edge_bridge.domain.stations import policy_infos, station_info
from edge_bridge.domain.stats import Usage
from edge_bridge.domain.status import OFFLINE, UNKNOWN, connector_status_info, effective_status, is_offline
from edge_bridge.domain.wiretime import DATE, parse_datetime, parse_day
from edge_bridge.errors import CodecError
from edge_bridge.provincial import wire_trace
from edge_bridge.provincial.codec import (
    RET_DATA,
    RET_ENVELOPE,
    RET_OK,
    RET_SYSTEM,
    RET_TOKEN,
    decrypt_data,
    dumps,
    encode_response,
    parse_request,
    verify_request,
)
from edge_bridge.provincial.crypto import Secrets
from edge_bridge.store.db import Database, Tx
from edge_bridge.store.reports import (
    LiveConnector,
    boot_infos,
    finished_sessions,
    live_connectors,
    station_info_changes,
)
from edge_bridge.store.tokens import save_token, token_valid
from edge_bridge.timeutil import utc_now

log = logging.getLogger(__name__)

PULL_INTERFACES = (
    "query_token",
    "query_stations_info",
    "query_station_status",
    "query_station_stats",
    "query_equip_business_policy",
)
MAX_BODY_BYTES = 1024 * 1024
MAX_STATION_IDS = 50
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 10
SUCCESS, FAILURE = 0, 1
FAIL_NO_OPERATOR, FAIL_WRONG_SECRET = 1, 2
FAIL_NO_POLICY = 1
ENERGY = Decimal("0.01")
Bounds = tuple[datetime, datetime]  # UTC [start, end)
_BEARER = re.compile(r"^Bearer\s+(\S+)\s*$", re.IGNORECASE)

Payload = dict[str, Any]


def _new_token() -> str:
    return secrets.token_urlsafe(32)


PULL_SERVER: web.AppKey[PullServer] = web.AppKey("pull_server")


def build_pull_app(
    config: Config,
    db: Database,
    *,
    clock: Callable[[], datetime] = utc_now,
    token_factory: Callable[[], str] = _new_token,
    started_at: datetime | None = None,
) -> web.Application:
    """The aiohttp application serving the five pull interfaces under ``config.pull_api.path_prefix``.

    ``started_at`` (default: ``clock()`` now) is when every station last changed, until change tracking exists.
    """
    server = PullServer(config, db, clock, token_factory, started_at or clock())
    if server.trace_wire:  # it logs every order in full: a joint test only
        log.warning("trace_wire_on", extra={"detail": "every push and pull is logged decrypted (secrets masked)"})
    middlewares = [_allow_from(config.pull_api.allow_from)] if config.pull_api.allow_from else []
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=middlewares)
    app[PULL_SERVER] = server  # for a reload (PullServer.reconfigure)
    app.on_response_prepare.append(_plain_server_header)
    prefix = config.pull_api.path_prefix.rstrip("/")
    for interface in PULL_INTERFACES:
        app.router.add_post(f"{prefix}/{interface}", server.handler(interface))
    return app


async def _plain_server_header(_request: web.Request, response: web.StreamResponse) -> None:
    """No library or Python versions in our answers (aiohttp would send ``Python/3.11 aiohttp/3.x``)."""
    response.headers["Server"] = "edge-bridge"


def _allow_from(networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> Middleware:
    @web.middleware
    async def allow_from(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not address_allowed(request.remote, networks):
            log.warning("pull_refused", extra={"remote": request.remote, "status": 403})
            raise web.HTTPForbidden()
        return await handler(request)

    return allow_from


def address_allowed(remote: str | None, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


async def _read_body(interface: str, request: web.Request) -> bytes:
    """The request body; over MAX_BODY_BYTES aiohttp raises HTTPRequestEntityTooLarge, answered 413 unsigned."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        log.warning("pull_refused", extra={"interface": interface, "remote": request.remote, "status": 413})
        raise


# -------------------------------------------------------------------------------------------- dispatch


@dataclass
class PullServer:
    """Answers the province's pulls from the configuration (stations, tariffs) and the store (statuses, stats)."""

    config: Config
    db: Database
    clock: Callable[[], datetime]
    token_factory: Callable[[], str]
    started_at: datetime
    site: Site = field(init=False)
    secrets: Secrets = field(init=False)
    trace_wire: bool = field(init=False)

    def __post_init__(self) -> None:
        self.site = site_model(self.config)
        self.secrets = self.config.province.secrets()
        self.trace_wire = self.config.province.trace_wire

    def reconfigure(self, config: Config) -> None:
        """A reload: answer from ``config`` (stations and tariffs) from now on; changed stations are new since now."""
        site = site_model(config)
        if site != self.site:
            self.started_at = self.clock()
        self.config = config
        self.__post_init__()

    def handler(self, interface: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            body = await _read_body(interface, request)
            ret, msg, payload = await self._answer(interface, request, body)
            log.info("pull_request", extra={"interface": interface, "ret": ret, "remote": request.remote})
            if self.trace_wire:
                wire_trace.pull(interface, body, ret, payload, self.secrets)
            response = encode_response(ret, msg, payload, self.secrets)
            return web.Response(body=dumps(response.as_body()), content_type="application/json", charset="utf-8")

        return handle

    async def _answer(self, interface: str, request: web.Request, body: bytes) -> tuple[int, str, Payload | None]:
        try:
            return RET_OK, "", await self._process(interface, request, body)
        except CodecError as exc:
            return exc.ret, str(exc), None
        except Exception:
            log.exception("pull_error", extra={"interface": interface, "remote": request.remote})
            return RET_SYSTEM, "system error", None

    async def _process(self, interface: str, request: web.Request, body: bytes) -> Payload:
        envelope = parse_request(body)
        if interface != "query_token":  # query_token answers an unknown operator with FailReason 1 (D4)
            if envelope.operator_id != self.config.province.operator_id:
                raise CodecError("envelope OperatorID is not the province's", RET_ENVELOPE)
            await self._check_token(request.headers.get("Authorization", ""))
        verify_request(envelope, self.secrets)
        data = decrypt_data(envelope.data, self.secrets)
        return await INTERFACES[interface](self, data)

    async def _check_token(self, authorization: str) -> None:
        match = _BEARER.match(authorization)
        if match is None:
            raise CodecError("no Bearer token", RET_TOKEN)
        token, now = match.group(1), self.clock()
        valid = await self.db.read(lambda tx: token_valid(tx, token, now))
        if not valid:
            raise CodecError("token unknown or expired", RET_TOKEN)

    # ------------------------------------------------------------------------------------------------ interfaces

    async def query_token(self, data: Payload) -> Payload:
        operator_id, secret = _text(data, "OperatorID"), _text(data, "OperatorSecret")
        if operator_id != self.config.province.operator_id:
            return self._token_refusal(FAIL_NO_OPERATOR)
        if not hmac.compare_digest(secret.encode(), self.secrets.operator_secret.encode()):
            return self._token_refusal(FAIL_WRONG_SECRET)
        token, ttl = self.token_factory(), self.config.province.token_ttl_s
        now = self.clock()
        expires = now + timedelta(seconds=ttl)  # expired tokens are purged by the daemon's hourly maintenance
        await self.db.write(lambda tx: save_token(tx, token, now, expires))
        return self._token_answer(SUCCESS, token, ttl, 0)

    def _token_refusal(self, reason: int) -> Payload:
        return self._token_answer(FAILURE, "", 0, reason)

    def _token_answer(self, succ: int, token: str, ttl: int, reason: int) -> Payload:
        return {
            "OperatorID": self.config.operator.id,
            "SuccStat": succ,
            "AccessToken": token,
            "TokenAvailableTime": ttl,
            "FailReason": reason,
        }

    async def query_stations_info(self, data: Payload) -> Payload:
        page_no = _int(data, "PageNo", default=1, low=1)
        page_size = _int(data, "PageSize", default=DEFAULT_PAGE_SIZE, low=1, high=MAX_PAGE_SIZE)
        since = _optional_datetime(data, "LastQueryTime", self.config)
        boot, changed = await self.db.read(lambda tx: (boot_infos(tx), station_info_changes(tx)))
        stations = [s for s in self.site.stations if self.changed_since(s, since, changed)]
        shown = stations[(page_no - 1) * page_size : page_no * page_size]
        return {
            "PageNo": page_no,
            "PageCount": max(1, math.ceil(len(stations) / page_size)),
            "ItemSize": len(stations),
            "StationInfos": [station_info(s, self.site.operator, boot) for s in shown],
        }

    def changed_since(self, station: StationDesc, since: datetime | None, changed: Mapping[str, datetime]) -> bool:
        """A station changed when its info was last queued for the province (D7), and at the latest when the
        daemon started (the config may have changed while it was down)."""
        last_change = max(self.started_at, changed.get(station.station_id, self.started_at))
        return since is None or last_change > since

    async def query_station_status(self, data: Payload) -> Payload:
        ids = _text_list(data, "StationIDs", limit=MAX_STATION_IDS)
        stations = [s for s in map(self.site.station, dict.fromkeys(ids)) if s is not None]
        live = await self.db.read(live_connectors)
        now, offline_after_s = self.clock(), self.config.ocpp.offline_after_s

        def status_of(charger: ChargerDesc, connector: ConnectorDesc) -> int:
            return connector_status(live.get(_where(charger, connector)), now, offline_after_s)

        infos = [_station_status(s, status_of) for s in stations]
        return {"Total": len(infos), "StationStatusInfos": infos}

    async def query_station_stats(self, data: Payload) -> Payload:
        station_id = _text(data, "StationID")
        first, last = _day(data, "StartTime"), _day(data, "EndTime")
        if first > last:
            raise CodecError("Data field StartTime is after EndTime", RET_DATA)
        station = self.site.station(station_id)
        if station is None:
            raise CodecError("Data field StationID names no station of ours", RET_DATA)
        answer = await self.db.read(lambda tx: _station_stats(tx, station, first, last, self.config.tz))
        return {"StationStats": answer}

    async def query_equip_business_policy(self, data: Payload) -> Payload:
        seq, connector_id = _text(data, "EquipBizSeq"), _text(data, "ConnectorID")
        answer: Payload = {"EquipBizSeq": seq, "ConnectorID": connector_id}
        station = _station_of_connector(self.site, connector_id)
        if station is None:
            return {**answer, "SuccStat": FAILURE, "FailReason": FAIL_NO_POLICY, "SumPeriod": 0, "PolicyInfos": []}
        infos = policy_infos(station.tariff)
        return {**answer, "SuccStat": SUCCESS, "FailReason": 0, "SumPeriod": len(infos), "PolicyInfos": infos}


INTERFACES: Mapping[str, Callable[[PullServer, Payload], Awaitable[Payload]]] = {
    "query_token": PullServer.query_token,
    "query_stations_info": PullServer.query_stations_info,
    "query_station_status": PullServer.query_station_status,
    "query_station_stats": PullServer.query_station_stats,
    "query_equip_business_policy": PullServer.query_equip_business_policy,
}


def _station_of_connector(site: Site, connector_id: str) -> StationDesc | None:
    for station in site.stations:
        for charger in station.chargers:
            if any(c.connector_id == connector_id for c in charger.connectors):
                return station
    return None


# ------------------------------------------------------------------------------------- live data


def connector_status(live: LiveConnector | None, now: datetime, offline_after_s: float) -> int:
    """The provincial Status (§5.9) of one connector: the effective Status last decided, offline (0) when its
    charger is silent for ``offline_after_s`` or never seen, 0 when never decided (no row: never reported).
    The stored Status already carries a charger-level fault (``restatus`` decided it)."""
    if live is None:
        return OFFLINE
    own = UNKNOWN if live.provincial_status is None else live.provincial_status
    offline = is_offline(live.last_seen, now, offline_after_s)
    return effective_status(own, charger_level_fault=False, offline=offline)


def connector_usage(tx: Tx, charger: ChargerDesc, connector: ConnectorDesc, bounds: Bounds) -> Usage:
    """Energy, session count and minutes of the finished sessions of ``connector`` whose EndTime is in ``bounds``,
    the UTC interval of the requested local days (D14, ``stats.day_bounds``)."""
    spans = finished_sessions(tx, _where(charger, connector), *bounds)
    return stats.connector_usage(spans)


def _where(charger: ChargerDesc, connector: ConnectorDesc) -> Where:
    """The store's (ocpp_id, evse, connector) of a configured connector."""
    return charger.ocpp_id, connector.ocpp_connector, connector.ocpp_evse_connector


# --------------------------------------------------------------------------------------------- answers


def _station_status(station: StationDesc, status_of: Callable[[ChargerDesc, ConnectorDesc], int]) -> Payload:
    return {
        "StationID": station.station_id,
        "ConnectorStatusInfos": [
            connector_status_info(c.connector_id, status_of(charger, c))
            for charger in station.chargers
            for c in charger.connectors
        ],
    }


def _station_stats(tx: Tx, station: StationDesc, first: date, last: date, tz: ZoneInfo) -> Payload:
    bounds = stats.day_bounds(first, last, tz)
    equipment, totals = [], []
    for charger in station.chargers:
        connectors, usages = [], []
        for connector in charger.connectors:
            usage = connector_usage(tx, charger, connector, bounds)
            connectors.append({"ConnectorID": connector.connector_id, **_usage_fields("Connector", usage)})
            usages.append(usage)
        subtotal = stats.total(usages)
        equipment.append(
            {
                "EquipmentID": charger.equipment_id,
                **_usage_fields("Equipment", subtotal),
                "ConnectorStatsInfos": connectors,
            }
        )
        totals.append(subtotal)
    head = {"StationID": station.station_id, "StartTime": first.strftime(DATE), "EndTime": last.strftime(DATE)}
    return {**head, **_usage_fields("Station", stats.total(totals)), "EquipmentStatsInfos": equipment}


def _usage_fields(level: str, usage: Usage) -> Payload:
    return {
        f"{level}Electricity": usage.electricity.quantize(ENERGY, ROUND_HALF_UP),
        "ConnectorNum": usage.sessions,
        "ConnectorDuration": usage.minutes,
    }


# ----------------------------------------------------------------------------------------- Data fields


def _bad(name: str, problem: str) -> CodecError:
    return CodecError(f"Data field {name} {problem}", RET_DATA)


def _text(data: Payload, name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise _bad(name, "is missing or not a non-empty string")
    return value


def _int(data: Payload, name: str, *, default: int, low: int, high: int | None = None) -> int:
    """An optional integer; numeric strings are accepted and ``""`` means absent (§6: parse leniently)."""
    value = data.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) <= 18:
        value = int(value)  # ASCII digits only: "²".isdigit() holds, int("²") raises
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(name, "is not an integer")
    if value < low or (high is not None and value > high):
        raise _bad(name, f"must be between {low} and {high}" if high is not None else f"must be at least {low}")
    return value


def _optional_datetime(data: Payload, name: str, config: Config) -> datetime | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad(name, "is not a yyyy-MM-dd HH:mm:ss string")
    try:
        return parse_datetime(value.strip(), config.tz)
    except (ValueError, OverflowError):  # OverflowError: 0001-01-01 00:00:00 local is before year 1 in UTC
        raise _bad(name, "is not yyyy-MM-dd HH:mm:ss") from None


def _day(data: Payload, name: str) -> date:
    try:
        return parse_day(_text(data, name))
    except ValueError:
        raise _bad(name, "is not yyyy-MM-dd or yyyy-MM-dd HH:mm:ss") from None


def _text_list(data: Payload, name: str, *, limit: int) -> list[str]:
    value = data.get(name)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _bad(name, "is missing or not a list of strings")
    if len(value) > limit:
        raise _bad(name, f"has {len(value)} items, at most {limit} are allowed")
    return value

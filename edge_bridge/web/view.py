"""The status page's data: one JSON document (``GET /api/status``) read in one snapshot of the store.

Invariants:
- One read transaction per document, on the read-only connection (``store/reader.py``): never on the daemon's
  connection, never on the event loop (the document is rendered there too). ``CachedView`` shares one document among
  all viewers for ``ttl_s`` (1 s, or longer on a site whose document takes long to build: building stays under
  ``COST_SHARE`` of the time), and concurrent requests while it is being read wait for that one read: N open pages
  cost one read a second at most.
- Bounded work: the newest ``RECENT_ORDERS`` orders, ``MAX_CURVE_POINTS`` samples of each of the newest
  ``MAX_LIVE_PLOTS`` live sessions, the sessions of
  ``DAYS`` local days, ``RECENT_DEAD`` dead letters and ``RECENT_ALARMS`` alarm reports.
- The facts the CLI shows come from the same code: ``status_report`` (chargers, connectors, open sessions, order
  counts, active alarms: under ``status``, the ``edge-bridge status --json`` document) and the orders' verdict
  (``cli/orders.py``). Energy, power and money stay exact decimal strings; times are ISO 8601 UTC ("...Z").
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from edge_bridge.domain.sessions import Session
from edge_bridge.domain.site import Site
from edge_bridge.status_report import Snapshot as _Snapshot
from edge_bridge.status_report import Storage as _Storage
from edge_bridge.status_report import kwh as _kwh
from edge_bridge.status_report import read_snapshot as _snapshot
from edge_bridge.status_report import status_document
from edge_bridge.store import overview
from edge_bridge.store.db import Tx, free_bytes
from edge_bridge.store.orders import OrderEntry, recent_order_entries
from edge_bridge.store.reader import ReadOnlyStore
from edge_bridge.timeutil import iso_utc
from edge_bridge.verdicts import verdict

FORMAT = 1  # raised only when a field changes meaning or goes away
DAYS = 30
RECENT_ORDERS = 20
RECENT_DEAD = 20
RECENT_ALARMS = 20
TTL_S = 1.0
MAX_LIVE_PLOTS = 24  # live sessions drawn (the newest); a site with more shows the rest in the table only
COST_SHARE = 0.01  # a document is reused until building it has taken at most this share of the time (one core)
LastPush = Callable[[], tuple[datetime, Any] | None]  # the uploader's last push: (when, PushResult)


@dataclass(frozen=True)
class _Read:
    """Everything one document shows, read in one transaction."""

    snap: _Snapshot
    curves: dict[int, list[overview.CurvePoint]]
    started: list[overview.Started]
    orders: list[OrderEntry]
    depths: list[overview.Depth]
    dead: tuple[int, list[overview.DeadLetter]]
    alarms: list[overview.AlarmPush]


def _read(tx: Tx, storage: _Storage, since: datetime) -> _Read:
    snap = _snapshot(tx, storage)
    plotted = sorted(snap.open_sessions, key=lambda s: s.started_at, reverse=True)[:MAX_LIVE_PLOTS]
    return _Read(
        snap=snap,
        curves={s.id: overview.curve(tx, s.id) for s in plotted if s.id is not None},
        started=overview.started_since(tx, since),
        orders=recent_order_entries(tx, RECENT_ORDERS),
        depths=overview.pending_depths(tx),
        dead=overview.dead_letters(tx, RECENT_DEAD),
        alarms=overview.alarm_pushes(tx, RECENT_ALARMS),
    )


class CachedView:
    """``await document()``: the page's document, at most ``ttl_s`` old, read by one request at a time."""

    def __init__(
        self, reader: ReadOnlyStore, site: Site, tz: ZoneInfo, clock: Callable[[], datetime], last_push: LastPush
    ) -> None:
        self._reader, self._site, self._tz, self._clock, self._last_push = reader, site, tz, clock, last_push
        self._lock = asyncio.Lock()
        self._doc: bytes | None = None
        self._read_at = float("-inf")
        self.reads = 0  # documents read from the store (tests check the cache with it)
        self.ttl_s = TTL_S

    def reconfigure(self, site: Site) -> None:
        """A reload: the next document uses the new site."""
        self._site, self._read_at = site, float("-inf")

    async def document(self) -> bytes:
        """The document as UTF-8 JSON."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            if self._doc is None or loop.time() - self._read_at >= self.ttl_s:
                began = loop.time()
                self._doc = await self._build()
                self._read_at = loop.time()
                self.ttl_s = max(TTL_S, (self._read_at - began) / COST_SHARE)  # a big site: refreshed less often
            return self._doc

    async def _build(self) -> bytes:
        """Read and render on the reader's thread: the event loop, which answers the chargers, only waits."""
        now, path, site, last = self._clock(), self._reader.path, self._site, self._last_push()
        since = _day_start(now, self._tz) - timedelta(days=DAYS - 1)
        storage = _Storage(path, await asyncio.to_thread(free_bytes, path))

        def render(tx: Tx) -> bytes:
            doc = page_document(_read(tx, storage, since), site, self._tz, now, last)
            return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

        document = await self._reader.read(render)
        self.reads += 1
        return document


def _day_start(now: datetime, tz: ZoneInfo) -> datetime:
    local = now.astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def page_document(
    read: _Read, site: Site, tz: ZoneInfo, now: datetime, last: tuple[datetime, Any] | None
) -> dict[str, Any]:
    """The page's JSON document (see ``web/server.py`` for the fields)."""
    return {
        "format": FORMAT,
        "generated_at": iso_utc(now),
        "timezone": str(tz),
        "status": status_document(read.snap, site, now),
        "live": [_live_doc(s, read.curves[s.id]) for s in read.snap.open_sessions if s.id in read.curves],
        "daily": _daily_doc(read.started, site, tz, now),
        "orders": [_order_doc(entry) for entry in read.orders],
        "outbox": _outbox_doc(read, now, last),
        "alarm_history": [_alarm_push_doc(a) for a in read.alarms],
    }


def _live_doc(session: Session, curve: list[overview.CurvePoint]) -> dict[str, Any]:
    base = session.meter_start_wh if session.meter_start_wh is not None else _first_register(curve)
    return {
        "session_id": session.id,
        "charger": session.charger,
        "evse": session.evse,
        "connector": session.connector,
        "started_at": iso_utc(session.started_at),
        "energy_kwh": None if session.energy_wh is None else _kwh(session.energy_wh),
        "points": [[iso_utc(p.at), _added(p.energy_wh, base), _kw_text(p.power_w)] for p in curve],
    }


def _first_register(curve: list[overview.CurvePoint]) -> Decimal:
    return next((Decimal(p.energy_wh) for p in curve if p.energy_wh is not None), Decimal(0))


def _added(register_wh: str | None, base: Decimal) -> str | None:
    """The energy of the session so far (kWh) at a sample: its register less the session's start."""
    return None if register_wh is None else _kwh(Decimal(register_wh) - base)


def _kw_text(w: str | None) -> str | None:
    return None if w is None else format((Decimal(w) / 1000).quantize(Decimal("0.001")), "f")


def _daily_doc(started: list[overview.Started], site: Site, tz: ZoneInfo, now: datetime) -> dict[str, Any]:
    """Energy (kWh) per local day of the session's start, per station, the last ``DAYS`` days (today last)."""
    today = now.astimezone(tz).date()
    days = [today - timedelta(days=n) for n in range(DAYS - 1, -1, -1)]
    station_of = {c.ocpp_id: st.station_id for st in site.stations for c in st.chargers}
    totals: dict[str, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for s in started:
        totals[station_of.get(s.charger, "")][s.started_at.astimezone(tz).date()] += Decimal(s.energy_wh)
    stations = [(st.station_id, st.name) for st in site.stations]
    if "" in totals:
        stations.append(("", "-"))  # chargers not configured (allow_unknown_chargers)
    return {
        "days": [d.isoformat() for d in days],
        "stations": [
            {"station_id": sid, "name": name, "kwh": [_kwh(totals[sid][d]) for d in days]} for sid, name in stations
        ],
    }


def _order_doc(entry: OrderEntry) -> dict[str, Any]:
    judged, reason = verdict(entry)
    charger, evse, connector = entry.where
    return {
        "session_id": entry.session_id,
        "start_charge_seq": entry.start_charge_seq,
        "charger": charger,
        "evse": evse,
        "connector": connector,
        "connector_id": entry.connector_id,
        "started_at": iso_utc(entry.started_at),
        "start_time": entry.start_time,
        "end_time": entry.end_time,
        "total_power_kwh": _str(entry.total_power),
        "total_money": _str(entry.total_money),
        "stop_reason": entry.stop_reason,
        "verdict": judged,
        "reason": reason,
        "charge_details": _details(entry.payload),
    }


def _str(value: object | None) -> str | None:
    return None if value is None else str(value)


def _details(payload: str | None) -> list[dict[str, Any]]:
    """The order's ChargeDetails as pushed, numbers as their exact text."""
    if payload is None:
        return []
    data = json.loads(payload, parse_float=Decimal)
    details = data.get("ChargeDetails") if isinstance(data, dict) else None
    if not isinstance(details, list):
        return []
    return [{k: _str(v) if isinstance(v, Decimal) else v for k, v in d.items()} for d in details if isinstance(d, dict)]


def _outbox_doc(read: _Read, now: datetime, last: tuple[datetime, Any] | None) -> dict[str, Any]:
    count, dead = read.dead
    return {
        "pending": [
            {
                "interface": d.interface,
                "count": d.pending,
                "oldest": iso_utc(d.oldest),
                "oldest_age_s": _age(d.oldest, now),
            }
            for d in read.depths
        ],
        "dead_count": count,
        "dead": [
            {"id": d.id, "interface": d.interface, "key": d.key, "reason": d.reason, "at": iso_utc(d.at)} for d in dead
        ],
        "last_answer": _last_doc(last),
    }


def _age(moment: datetime, now: datetime) -> int:
    return max(0, int((now - moment).total_seconds()))


def _last_doc(last: tuple[datetime, Any] | None) -> dict[str, Any] | None:
    """The last push's outcome as this daemon saw it (since it started); None before the first."""
    if last is None:
        return None
    at, result = last
    return {"at": iso_utc(at), "outcome": str(result.outcome.value), "ret": result.ret, "reason": result.reason}


def _alarm_push_doc(push: overview.AlarmPush) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": push.id, "outbox_state": push.state, "queued_at": iso_utc(push.queued_at)}
    try:
        data = json.loads(push.payload)
        info = data["AlarmInfos"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        return doc  # an unreadable payload: shown without its details
    keys = ("ConnectorID", "EquipmentID", "AlarmStatus", "AlarmCode", "AlarmLevel", "AlarmTime", "NoteString")
    return doc | {key: info.get(key) for key in keys}

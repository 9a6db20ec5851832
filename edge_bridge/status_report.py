"""``edge-bridge status [--json]``: chargers, connectors, open sessions, orders and active alarms as the store holds
them, for a human (text) or a program (one JSON document, ``status_document``).

Both views render the same ``_Snapshot``, read once: one read transaction and one ``statvfs``; neither view queries.
The JSON document's ``format`` is raised only when a field changes meaning or goes away; fields may be added.

Read-only and safe while the daemon runs: SQLite in WAL lets this process read the daemon's file. Configured
chargers and connectors are listed even when never seen; chargers that connected without being configured
(``allow_unknown_chargers``) are listed after them. Orders are counted by state (a queued one with the state of its
outbox row: a disputed or rejected order is dead-lettered there with the province's reason); the orders not pushed
or dead-lettered are listed, newest first.

The first line is the storage: the database's path and the free space on its filesystem, or "DISK FULL" when less
than ``db.FULL_BELOW_BYTES`` is left (the threshold under which the daemon's commits fail; the daemon itself knows
it from its failed commits, and this process, which only reads, from ``os.statvfs``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from edge_bridge.domain.alarm_rules import ActiveAlarm
from edge_bridge.domain.places import Where
from edge_bridge.domain.sessions import Session
from edge_bridge.domain.site import ChargerDesc, Site
from edge_bridge.domain.status import ConnectorState
from edge_bridge.store import alarms as store_alarms
from edge_bridge.store import chargers as store_chargers
from edge_bridge.store import orders as store_orders
from edge_bridge.store import sessions as store_sessions
from edge_bridge.store.chargers import ChargerRow
from edge_bridge.store.db import FULL_BELOW_BYTES, Database, Tx, free_bytes
from edge_bridge.store.orders import OrderLine
from edge_bridge.timeutil import iso_utc

NEVER = "never"
FORMAT = 1  # of the JSON document: raised only when a field changes meaning or goes away (fields may be added)


@dataclass(frozen=True)
class _Storage:
    path: Path
    free: int | None  # bytes free on its filesystem; None: unknown

    @property
    def full(self) -> bool:
        return self.free is not None and self.free < FULL_BELOW_BYTES


@dataclass(frozen=True)
class _Snapshot:
    """Every fact both views show, read once (one read transaction and one ``statvfs``)."""

    storage: _Storage
    chargers: dict[str, ChargerRow]
    connectors: dict[Where, ConnectorState]
    open_sessions: list[Session]
    order_counts: list[tuple[str, str | None, int]]
    order_problems: list[OrderLine]
    alarms: list[ActiveAlarm]


def _snapshot(tx: Tx, storage: _Storage) -> _Snapshot:
    return _Snapshot(
        storage=storage,
        chargers={row.ocpp_id: row for row in store_chargers.all_chargers(tx)},
        connectors={(c.charger, c.evse, c.connector): c for c in store_chargers.all_connectors(tx)},
        open_sessions=store_sessions.open_sessions(tx),
        order_counts=store_orders.order_counts(tx),
        order_problems=store_orders.order_problems(tx),
        alarms=store_alarms.all_active_alarms(tx),
    )


async def status_report(db: Database, site: Site, out: TextIO, now: datetime, *, as_json: bool = False) -> int:
    """Print the report to ``out``, as text or (``as_json``) as one JSON document; returns the exit code (0)."""
    storage = _Storage(db.path, free_bytes(db.path))
    snap = await db.read(lambda tx: _snapshot(tx, storage))
    if as_json:
        json.dump(status_document(snap, site, now), out, ensure_ascii=False, indent=2)
        out.write("\n")
    else:
        out.write("\n".join(_text_lines(snap, site, now)) + "\n")
    return 0


def _text_lines(snap: _Snapshot, site: Site, now: datetime) -> list[str]:
    configured = _configured(site)
    return [
        _storage_line(snap.storage),
        "",
        "Chargers",
        *(_charger_line(ocpp_id, snap.chargers.get(ocpp_id), now) for ocpp_id in _ordered(configured, snap)),
        "",
        "Connectors",
        *_connector_lines(configured, snap.connectors),
        "",
        f"Open sessions ({len(snap.open_sessions)})",
        *(_session_line(s, now) for s in snap.open_sessions),
        "",
        "Orders",
        *(_order_count_line(*count) for count in snap.order_counts),
        *(_order_line(line) for line in snap.order_problems),
        "",
        f"Active alarms ({len(snap.alarms)})",
        *(_alarm_line(a, now) for a in snap.alarms),
    ]


def _configured(site: Site) -> list[ChargerDesc]:
    return [charger for station in site.stations for charger in station.chargers]


def _storage_line(storage: _Storage) -> str:
    path, free = storage.path, storage.free
    if free is None:
        return f"Storage: {path}  free space unknown"
    if storage.full:
        return f"Storage: DISK FULL ({free} bytes free) at {path}: chargers' records are refused until space returns"
    return f"Storage: {path}  {free / 2**20:.1f} MiB free"


def _ordered(configured: list[ChargerDesc], snap: _Snapshot) -> list[str]:
    """The configured chargers in config order, then the others seen (``allow_unknown_chargers``), by name."""
    known = [c.ocpp_id for c in configured]
    seen = set(snap.chargers) | {where[0] for where in snap.connectors}
    return known + sorted(seen - set(known))


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return NEVER
    ago = int((now - moment).total_seconds())
    return f"{moment.strftime('%Y-%m-%d %H:%M:%SZ')} ({ago} s ago)"


def _charger_line(ocpp_id: str, row: ChargerRow | None, now: datetime) -> str:
    if row is None:
        return f"  {ocpp_id:<20} connected: no   OCPP -      last seen: {NEVER}"
    connected = "yes" if row.connected else "no "
    version = row.ocpp_version or "-"
    brand = " / ".join(part for part in (row.vendor, row.model) if part) or "-"
    offline = "  OFFLINE" if row.offline else ""
    return (
        f"  {ocpp_id:<20} connected: {connected}  OCPP {version:<6} last seen: {_when(row.last_seen, now)}"
        f"  vendor/model: {brand}{offline}"
    )


def _connector_lines(
    configured: list[ChargerDesc], connectors: dict[tuple[str, int, int], ConnectorState]
) -> Iterator[str]:
    listed: set[tuple[str, int, int]] = set()
    for charger in configured:
        for desc in charger.connectors:
            key = (charger.ocpp_id, desc.ocpp_connector, desc.ocpp_evse_connector)
            listed.add(key)
            yield _connector_line(key, desc.connector_id, connectors.get(key))
    for key in sorted(set(connectors) - listed):
        yield _connector_line(key, "-", connectors[key])


def _connector_line(key: tuple[str, int, int], connector_id: str, c: ConnectorState | None) -> str:
    where = f"{key[0]} {key[1]}/{key[2]}"
    if c is None:
        return f"  {where:<24} {connector_id:<20} no status yet          provincial -"
    error = f" ({c.error_code})" if c.error_code and c.error_code != "NoError" else ""
    ocpp = (c.ocpp_status or "-") + error
    provincial = "-" if c.provincial_status is None else str(c.provincial_status)
    return f"  {where:<24} {connector_id:<20} {ocpp:<22} provincial {provincial}{_live(c)}"


def _live(c: ConnectorState) -> str:
    parts = [
        f"{value} {unit}"
        for value, unit in ((c.power_w, "W"), (c.soc, "%"), (c.current_a, "A"), (c.voltage_v, "V"))
        if value is not None
    ]
    return f"  [{', '.join(parts)}]" if parts else ""


def _session_line(s: Session, now: datetime) -> str:
    energy = "unknown" if s.energy_wh is None else f"{_kwh(s.energy_wh)} kWh"
    flags = f"  flags: {', '.join(s.flags)}" if s.flags else ""
    return (
        f"  #{s.id:<6} {s.charger} {s.evse}/{s.connector}  OCPP {s.version:<6}"
        f" started {_when(s.started_at, now)}  energy so far {energy}{flags}"
    )


def _kwh(wh: Decimal) -> str:
    return format((wh / 1000).quantize(Decimal("0.001")), "f")


def _order_count_line(order_state: str, outbox_state: str | None, count: int) -> str:
    outbox = f" (outbox: {outbox_state})" if outbox_state else ""
    return f"  {order_state + outbox:<28} {count}"


def _order_line(line: OrderLine) -> str:
    where = f"{line.where[0]} {line.where[1]}/{line.where[2]}"
    if line.outbox_state == "dead":
        detail = f"{line.start_charge_seq}  dead-lettered: {line.reason or '-'}"
    else:
        detail = f"not pushed ({line.state})"
    return f"  #{line.session_id:<6} {where:<20} {detail}"


def _alarm_line(a: ActiveAlarm, now: datetime) -> str:
    where = f"{a.charger} {a.evse}/{a.connector}"
    return f"  {where:<24} code {a.kind.code:<4} raised {_when(a.raised_at, now)}  {a.note}"


# ------------------------------------------------------------------------------------------------ the JSON document
# The same facts as the text, as data: times ISO 8601 UTC ("...Z"), readings, energy and money as decimal strings
# (exact), absent values null. Connectors are listed under their charger.


def status_document(snap: _Snapshot, site: Site, now: datetime) -> dict[str, Any]:
    """The status as one JSON-ready document (``edge-bridge status --json``)."""
    configured = _configured(site)
    storage = snap.storage
    return {
        "format": FORMAT,
        "generated_at": iso_utc(now),
        "storage": {"path": str(storage.path), "free_bytes": storage.free, "disk_full": storage.full},
        "chargers": [_charger_doc(ocpp_id, configured, snap) for ocpp_id in _ordered(configured, snap)],
        "open_sessions": [_session_doc(s) for s in snap.open_sessions],
        "orders": {
            "counts": [_count_doc(*count) for count in snap.order_counts],
            "problems": [_problem_doc(line) for line in snap.order_problems],
        },
        "active_alarms": [_alarm_doc(a) for a in snap.alarms],
    }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _charger_doc(ocpp_id: str, configured: list[ChargerDesc], snap: _Snapshot) -> dict[str, Any]:
    desc = next((c for c in configured if c.ocpp_id == ocpp_id), None)
    row = snap.chargers.get(ocpp_id) or ChargerRow(ocpp_id)
    return {
        "ocpp_id": ocpp_id,
        "configured": desc is not None,
        "connected": row.connected,
        "offline": row.offline,
        "ocpp_version": row.ocpp_version or None,
        "last_seen": iso_utc(row.last_seen),
        "vendor": row.vendor,
        "model": row.model,
        "connectors": _connector_docs(ocpp_id, desc, snap.connectors),
    }


def _connector_docs(
    ocpp_id: str, desc: ChargerDesc | None, connectors: dict[Where, ConnectorState]
) -> list[dict[str, Any]]:
    ids = {
        (ocpp_id, c.ocpp_connector, c.ocpp_evse_connector): c.connector_id for c in (desc.connectors if desc else ())
    }
    seen = sorted(key for key in connectors if key[0] == ocpp_id and key not in ids)
    return [_connector_doc(key, ids.get(key), connectors.get(key)) for key in [*ids, *seen]]


def _connector_doc(key: Where, connector_id: str | None, c: ConnectorState | None) -> dict[str, Any]:
    c = c or ConnectorState(*key)
    return {
        "evse": key[1],
        "connector": key[2],
        "connector_id": connector_id,
        "ocpp_status": c.ocpp_status or None,
        "error_code": c.error_code or None,
        "status_at": iso_utc(c.status_at),
        "provincial_status": c.provincial_status,
        "power_w": _text(c.power_w),
        "soc_percent": _text(c.soc),
        "current_a": _text(c.current_a),
        "voltage_v": _text(c.voltage_v),
    }


def _session_doc(s: Session) -> dict[str, Any]:
    return {
        "id": s.id,
        "charger": s.charger,
        "evse": s.evse,
        "connector": s.connector,
        "ocpp_version": s.version,
        "started_at": iso_utc(s.started_at),
        "energy_kwh": None if s.energy_wh is None else _kwh(s.energy_wh),
        "flags": list(s.flags),
    }


def _count_doc(order_state: str, outbox_state: str | None, count: int) -> dict[str, Any]:
    return {"state": order_state, "outbox_state": outbox_state, "count": count}


def _problem_doc(line: OrderLine) -> dict[str, Any]:
    charger, evse, connector = line.where
    return {
        "session_id": line.session_id,
        "charger": charger,
        "evse": evse,
        "connector": connector,
        "state": line.state,
        "start_charge_seq": line.start_charge_seq,
        "outbox_state": line.outbox_state,
        "reason": line.reason,
    }


def _alarm_doc(a: ActiveAlarm) -> dict[str, Any]:
    kind = a.kind
    where = {"charger": a.charger, "evse": a.evse, "connector": a.connector}
    return {
        **where,
        "code": kind.code,
        "type": kind.type,
        "level": kind.level,
        "raised_at": iso_utc(a.raised_at),
        "note": a.note,
    }


# ------------------------------------------------------------------------------------------------ for the status page
# web/view.py shows the same snapshot, with the same time and energy formats.
Snapshot = _Snapshot
Storage = _Storage
read_snapshot, kwh = _snapshot, _kwh

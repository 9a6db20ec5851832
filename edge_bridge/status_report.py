"""``edge-bridge status``: chargers, connectors, open sessions, orders and active alarms as the store holds them,
for a human.

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

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TextIO

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

NEVER = "never"


@dataclass(frozen=True)
class _Snapshot:
    chargers: dict[str, ChargerRow]
    connectors: dict[Where, ConnectorState]
    open_sessions: list[Session]
    order_counts: list[tuple[str, str | None, int]]
    order_problems: list[OrderLine]
    alarms: list[ActiveAlarm]


def _snapshot(tx: Tx) -> _Snapshot:
    return _Snapshot(
        chargers={row.ocpp_id: row for row in store_chargers.all_chargers(tx)},
        connectors={(c.charger, c.evse, c.connector): c for c in store_chargers.all_connectors(tx)},
        open_sessions=store_sessions.open_sessions(tx),
        order_counts=store_orders.order_counts(tx),
        order_problems=store_orders.order_problems(tx),
        alarms=store_alarms.all_active_alarms(tx),
    )


async def status_report(db: Database, site: Site, out: TextIO, now: datetime) -> int:
    """Print the report to ``out``; returns the exit code (0)."""
    snap = await db.read(_snapshot)
    chargers, connectors, open_sessions, alarms = snap.chargers, snap.connectors, snap.open_sessions, snap.alarms
    order_counts, order_problems = snap.order_counts, snap.order_problems
    configured = [charger for station in site.stations for charger in station.chargers]
    names = {c.ocpp_id for c in configured} | set(chargers)
    lines = [
        _storage_line(db),
        "",
        "Chargers",
        *(_charger_line(ocpp_id, chargers.get(ocpp_id), now) for ocpp_id in _ordered(configured, names)),
        "",
        "Connectors",
        *_connector_lines(configured, connectors),
        "",
        f"Open sessions ({len(open_sessions)})",
        *(_session_line(s, now) for s in open_sessions),
        "",
        "Orders",
        *(_order_count_line(*count) for count in order_counts),
        *(_order_line(line) for line in order_problems),
        "",
        f"Active alarms ({len(alarms)})",
        *(_alarm_line(a, now) for a in alarms),
    ]
    out.write("\n".join(lines) + "\n")
    return 0


def _storage_line(db: Database) -> str:
    free = free_bytes(db.path)
    if free is None:
        return f"Storage: {db.path}  free space unknown"
    if free < FULL_BELOW_BYTES:
        return f"Storage: DISK FULL ({free} bytes free) at {db.path}: chargers' records are refused until space returns"
    return f"Storage: {db.path}  {free / 2**20:.1f} MiB free"


def _ordered(configured: list[ChargerDesc], names: set[str]) -> list[str]:
    known = [c.ocpp_id for c in configured]
    return known + sorted(names - set(known))


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

"""Read-only queries for the status page (``web/``) that no other view needs: live curves, energy by day, the outbox
at a glance and the alarm history. Functions take the caller's ``Tx``; every query is bounded (a LIMIT, or an index
range), so a page costs the same on a store of a year as on a new one.

Rows come back as plain values (times aware UTC, readings exact Decimal); grouping by local day and by station is
the caller's (it knows the site and its time zone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from edge_bridge.store.db import Row, Tx, to_db
from edge_bridge.store.rows import read_row, required_time, untime

MAX_CURVE_POINTS = 240  # per live session: the newest samples (a sample a minute: the last four hours)
MAX_DAY_ROWS = 20_000  # sessions started within the energy-by-day window
CURVE = """
SELECT at, energy_wh, power_w FROM meter_samples
WHERE session_id = ?1 AND (energy_wh IS NOT NULL OR power_w IS NOT NULL) ORDER BY at DESC, id DESC LIMIT ?2
"""
STARTED_SINCE = """
SELECT ocpp_id, started_at, energy_wh FROM sessions
WHERE started_at >= ?1 AND energy_wh IS NOT NULL ORDER BY started_at LIMIT ?2
"""
PENDING_BY_INTERFACE = """
SELECT interface, COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE state = 'pending' GROUP BY interface
ORDER BY interface
"""
DEAD_LETTERS = (
    "SELECT id, interface, key, last_error, updated_at FROM outbox WHERE state = 'dead' ORDER BY id DESC LIMIT ?"
)
DEAD_COUNT = "SELECT COUNT(*) FROM outbox WHERE state = 'dead'"
ALARM_SCAN = 5_000  # alarm reports are looked for among the newest rows of the outbox only
ALARM_ROWS = """
SELECT id, state, payload, created_at FROM outbox
WHERE interface = 'alarm_report' AND id > (SELECT COALESCE(MAX(id), 0) FROM outbox) - ?2 ORDER BY id DESC LIMIT ?1
"""


@dataclass(frozen=True)
class CurvePoint:
    at: datetime
    energy_wh: str | None  # exact decimal text, as stored
    power_w: str | None


@dataclass(frozen=True)
class Started:
    """A session's charger, start and energy (for energy by day)."""

    charger: str
    started_at: datetime
    energy_wh: str


@dataclass(frozen=True)
class Depth:
    interface: str
    pending: int
    oldest: datetime


@dataclass(frozen=True)
class DeadLetter:
    id: int
    interface: str
    key: str
    reason: str
    at: datetime | None


@dataclass(frozen=True)
class AlarmPush:
    """One alarm report queued for the province (a raise or a recovery): its payload JSON text and outbox state."""

    id: int
    state: str
    payload: str
    queued_at: datetime


def _point(row: Row) -> CurvePoint:
    return CurvePoint(required_time(row["at"]), row["energy_wh"], row["power_w"])


def curve(tx: Tx, session_id: int, limit: int = MAX_CURVE_POINTS) -> list[CurvePoint]:
    """The newest ``limit`` samples of a session, oldest first."""
    rows = tx.fetchall(CURVE, (session_id, limit))
    return [read_row(row, _point) for row in reversed(rows)]


def started_since(tx: Tx, since: datetime, limit: int = MAX_DAY_ROWS) -> list[Started]:
    """Sessions with a known energy started at or after ``since``, oldest first."""
    rows = tx.fetchall(STARTED_SINCE, (to_db(since), limit))
    return [
        read_row(row, lambda r: Started(r["ocpp_id"], required_time(r["started_at"]), r["energy_wh"])) for row in rows
    ]


def pending_depths(tx: Tx) -> list[Depth]:
    """Pending pushes by interface, with the creation time of the oldest."""
    rows = tx.fetchall(PENDING_BY_INTERFACE)
    return [read_row(row, lambda r: Depth(r["interface"], r["n"], required_time(r["oldest"]))) for row in rows]


def _dead(row: Row) -> DeadLetter:
    return DeadLetter(row["id"], row["interface"], row["key"], row["last_error"] or "", untime(row["updated_at"]))


def dead_letters(tx: Tx, limit: int) -> tuple[int, list[DeadLetter]]:
    """How many dead letters there are, and the newest ``limit`` of them."""
    count = tx.fetchone(DEAD_COUNT)
    return (count[0] if count else 0), [read_row(row, _dead) for row in tx.fetchall(DEAD_LETTERS, (limit,))]


def alarm_pushes(tx: Tx, limit: int) -> list[AlarmPush]:
    """The newest ``limit`` alarm reports queued (raises and recoveries) among the newest ``ALARM_SCAN`` rows of the
    outbox, newest first."""
    rows = tx.fetchall(ALARM_ROWS, (limit, ALARM_SCAN))
    return [
        read_row(row, lambda r: AlarmPush(r["id"], r["state"], r["payload"], required_time(r["created_at"])))
        for row in rows
    ]

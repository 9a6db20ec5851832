"""SQL for the orders of sessions (migration 0003: order columns of ``sessions``, read with the energy registers
of ``meter_samples`` and the ``outbox`` row of each order). Functions take the caller's ``Tx``; no business rules:
the domain decides, this stores.

The figures of an order (migration 0009: its payload, read for ConnectorID, StartTime, EndTime, totals, StopReason)
are copied from its outbox row in the transaction that queues it (``keep_order_figures``), so they are the pushed
text itself and outlive the row, which is purged ``[retention] outbox_days`` after it was sent. Orders queued before
0009 whose row was purged already have none (``OrderEntry.total_money`` is None).

A row that cannot be read back raises StoreError.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from edge_bridge.errors import StoreError
from edge_bridge.store.db import Row, Tx, to_db
from edge_bridge.store.rows import read_row, required_time, untime

# ------------------------------------------------------------------------------------------------ orders (0003)


@dataclass(frozen=True)
class OrderRecord:
    """The order of a session: its state (None: not decided), StartChargeSeq and outbox row once queued."""

    state: str | None = None
    start_charge_seq: str | None = None
    outbox_id: int | None = None
    confirm_result: int | None = None


@dataclass(frozen=True)
class OrderLine:
    """A session whose order needs a human's eye: not pushed, or dead-lettered (with the outbox's reason)."""

    session_id: int
    where: tuple[str, int, int]
    state: str
    start_charge_seq: str | None
    outbox_state: str | None
    reason: str | None


GET_ORDER = "SELECT order_state, start_charge_seq, order_outbox_id, confirm_result FROM sessions WHERE id = ?"
SET_ORDER = """
UPDATE sessions SET order_state = ?2, start_charge_seq = COALESCE(?3, start_charge_seq),
    order_outbox_id = COALESCE(?4, order_outbox_id),
    ordered_energy_wh = CASE WHEN ?2 = 'queued' THEN energy_wh ELSE ordered_energy_wh END,
    ordered_ended_at = CASE WHEN ?2 = 'queued' THEN ended_at ELSE ordered_ended_at END
WHERE id = ?1
"""
ACCEPT_ORDER = "UPDATE sessions SET order_state = 'accepted', confirm_result = 0 WHERE order_outbox_id = ?"
SESSION_REGISTERS = """
SELECT at, energy_wh FROM meter_samples WHERE session_id = ? AND energy_wh IS NOT NULL ORDER BY at, id
"""
# outbox_state 'purged': an order queued whose outbox row is gone; only `edge-bridge outbox purge` of its dead letter
# does that (a sent row goes by retention, after its order was marked accepted)
ORDER_COUNTS = """
SELECT s.order_state, CASE WHEN s.order_state = 'queued' AND o.id IS NULL THEN 'purged' ELSE o.state END
    AS outbox_state, COUNT(*) AS n
FROM sessions AS s LEFT JOIN outbox AS o ON o.id = s.order_outbox_id
WHERE s.order_state IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2
"""
ORDER_PROBLEMS = """
SELECT s.id, s.ocpp_id, s.evse, s.connector, s.order_state, s.start_charge_seq,
    CASE WHEN s.order_state = 'queued' AND o.id IS NULL THEN 'purged' ELSE o.state END AS outbox_state,
    COALESCE(o.last_error, CASE WHEN o.id IS NULL THEN 'its dead letter was purged: not delivered' END) AS last_error
FROM sessions AS s LEFT JOIN outbox AS o ON o.id = s.order_outbox_id
WHERE s.order_state IN ('unconfigured', 'unmeasured') OR o.state = 'dead' OR (s.order_state = 'queued' AND o.id IS NULL)
ORDER BY s.id DESC LIMIT ?
"""


def _order(row: Row) -> OrderRecord:
    return OrderRecord(row["order_state"], row["start_charge_seq"], row["order_outbox_id"], row["confirm_result"])


def get_order(tx: Tx, session_id: int) -> OrderRecord:
    row = tx.fetchone(GET_ORDER, (session_id,))
    if row is None:
        raise StoreError(f"session {session_id} vanished")
    return read_row(row, _order)


def set_order(
    tx: Tx, session_id: int, order_state: str, start_charge_seq: str | None = None, outbox_id: int | None = None
) -> None:
    """Record the order decision of a session (seq and outbox row are kept when not given). Queuing it also
    keeps the energy and end time the order reports, which the stats then count (D14 = the sums of the orders)."""
    tx.execute(SET_ORDER, (session_id, order_state, start_charge_seq, outbox_id))


def accept_order(tx: Tx, outbox_id: int) -> int:
    """The province accepted (ConfirmResult 0) the order pushed by outbox row ``outbox_id``; returns the number
    of sessions updated (0 or 1)."""
    cursor = tx.execute(ACCEPT_ORDER, (outbox_id,))
    return cursor.rowcount


def _register_row(row: Row) -> tuple[datetime, Decimal]:
    return required_time(row["at"]), Decimal(row["energy_wh"])


def session_registers(tx: Tx, session_id: int) -> list[tuple[datetime, Decimal]]:
    """The energy register readings stored for a session: (charger time, Wh), by time."""
    return [read_row(row, _register_row) for row in tx.fetchall(SESSION_REGISTERS, (session_id,))]


def order_counts(tx: Tx) -> list[tuple[str, str | None, int]]:
    """(order state, outbox state of its row or None, count) for every decided order."""
    return [(r["order_state"], r["outbox_state"], r["n"]) for r in tx.fetchall(ORDER_COUNTS)]


def _order_line(row: Row) -> OrderLine:
    where = (row["ocpp_id"], row["evse"], row["connector"])
    return OrderLine(
        row["id"], where, row["order_state"], row["start_charge_seq"], row["outbox_state"], row["last_error"]
    )


def order_problems(tx: Tx, limit: int = 20) -> list[OrderLine]:
    """The newest orders not pushed (unconfigured, unmeasured) or dead-lettered."""
    return [read_row(row, _order_line) for row in tx.fetchall(ORDER_PROBLEMS, (limit,))]


# ------------------------------------------------------------------------------------------------ figures (0009)

FIGURES = {  # OrderEntry field -> the order payload's key
    "connector_id": "ConnectorID",
    "start_time": "StartTime",
    "end_time": "EndTime",
    "total_power": "TotalPower",
    "elec_money": "TotalElecMoney",
    "service_money": "TotalSeviceMoney",
    "total_money": "TotalMoney",
    "stop_reason": "StopReason",
}
KEEP_FIGURES = """
UPDATE sessions SET order_payload = (SELECT o.payload FROM outbox AS o WHERE o.id = sessions.order_outbox_id)
WHERE id = ?
"""
REPUSH_ORDER = """
UPDATE sessions SET order_state = 'queued', order_outbox_id = ?2, confirm_result = NULL,
    ordered_energy_wh = CASE WHEN ?3 THEN energy_wh ELSE ordered_energy_wh END,
    ordered_ended_at = CASE WHEN ?3 THEN ended_at ELSE ordered_ended_at END
WHERE id = ?1
"""
_ENTRY = """
SELECT s.id, s.ocpp_id, s.evse, s.connector, s.started_at, s.ended_at, s.order_state, s.start_charge_seq,
    s.order_outbox_id, s.order_payload, o.state AS outbox_state, o.last_error
FROM sessions AS s LEFT JOIN outbox AS o ON o.id = s.order_outbox_id
"""
ENTRIES_STARTED = f"""{_ENTRY}
WHERE s.order_state IS NOT NULL AND s.started_at >= ?1 AND s.started_at < ?2 ORDER BY s.started_at, s.id
"""
ENTRY_BY_SEQ = _ENTRY + "WHERE s.start_charge_seq = ?"
RECENT_ENTRIES = _ENTRY + "WHERE s.order_state IS NOT NULL ORDER BY s.id DESC LIMIT ?"


@dataclass(frozen=True)
class OrderEntry:
    """A decided order for reconciliation: where and when its session was, the figures it was pushed with (None:
    not pushed, or queued before 0009 and its outbox row purged), and its outbox row's state and reason."""

    session_id: int
    where: tuple[str, int, int]
    started_at: datetime
    ended_at: datetime | None
    state: str
    start_charge_seq: str | None
    connector_id: str | None = None
    start_time: str | None = None  # as the province saw it: local yyyy-MM-dd HH:mm:ss
    end_time: str | None = None
    total_power: Decimal | None = None
    elec_money: Decimal | None = None
    service_money: Decimal | None = None
    total_money: Decimal | None = None
    stop_reason: int | None = None
    outbox_id: int | None = None
    outbox_state: str | None = None  # None: no row (not pushed, or purged)
    reason: str | None = None  # the outbox row's last error
    payload: str | None = None  # the Data JSON last queued (None: queued before 0009, its row purged since)


def _entry(row: Row) -> OrderEntry:
    payload = row["order_payload"]
    return OrderEntry(
        row["id"],
        (row["ocpp_id"], row["evse"], row["connector"]),
        required_time(row["started_at"]),
        untime(row["ended_at"]),
        row["order_state"],
        row["start_charge_seq"],
        **_figures(payload),
        outbox_id=row["order_outbox_id"],
        outbox_state=row["outbox_state"],
        reason=row["last_error"],
        payload=payload,
    )


def _figures(payload: str | None) -> dict[str, Any]:
    """The figures of a stored order payload, numbers as the exact Decimal of their JSON text; none without one."""
    if payload is None:
        return {}
    data = json.loads(payload, parse_float=Decimal)
    return {field: data.get(key) for field, key in FIGURES.items()}


def keep_order_figures(tx: Tx, session_id: int) -> None:
    """Copy the figures of the order just queued for ``session_id`` from its outbox row (``set_order`` first)."""
    tx.execute(KEEP_FIGURES, (session_id,))


def order_entries(tx: Tx, start: datetime, end: datetime) -> list[OrderEntry]:
    """The decided orders of the sessions started in ``[start, end)``, oldest start first."""
    params = (to_db(start), to_db(end))
    return [read_row(row, _entry) for row in tx.fetchall(ENTRIES_STARTED, params)]


def recent_order_entries(tx: Tx, limit: int) -> list[OrderEntry]:
    """The decided orders of the ``limit`` newest sessions, newest first (the status page)."""
    return [read_row(row, _entry) for row in tx.fetchall(RECENT_ENTRIES, (limit,))]


def order_by_seq(tx: Tx, start_charge_seq: str) -> OrderEntry | None:
    """The order with this StartChargeSeq, if any."""
    row = tx.fetchone(ENTRY_BY_SEQ, (start_charge_seq,))
    return None if row is None else read_row(row, _entry)


def repush_order(tx: Tx, session_id: int, outbox_id: int, rebuilt: bool) -> None:
    """The order of ``session_id`` is queued again as outbox row ``outbox_id``: queued until the province answers,
    its figures taken from that row. A rebuilt order reports the session's energy and end as they are now."""
    tx.execute(REPUSH_ORDER, (session_id, outbox_id, rebuilt))
    keep_order_figures(tx, session_id)

"""SQL for the orders of sessions (migration 0003: order columns of ``sessions``, read with the energy registers
of ``meter_samples`` and the ``outbox`` row of each order). Functions take the caller's ``Tx``; no business rules:
the domain decides, this stores.

A row that cannot be read back raises StoreError.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from edge_bridge.errors import StoreError
from edge_bridge.store.db import Row, Tx
from edge_bridge.store.rows import read_row, required_time

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
ORDER_COUNTS = """
SELECT s.order_state, o.state AS outbox_state, COUNT(*) AS n
FROM sessions AS s LEFT JOIN outbox AS o ON o.id = s.order_outbox_id
WHERE s.order_state IS NOT NULL GROUP BY s.order_state, o.state ORDER BY s.order_state, o.state
"""
ORDER_PROBLEMS = """
SELECT s.id, s.ocpp_id, s.evse, s.connector, s.order_state, s.start_charge_seq, o.state AS outbox_state,
    o.last_error
FROM sessions AS s LEFT JOIN outbox AS o ON o.id = s.order_outbox_id
WHERE s.order_state IN ('unconfigured', 'unmeasured') OR o.state = 'dead'
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

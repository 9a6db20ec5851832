"""When a finished session becomes a provincial order, and what the order is built from (D10-D13, §6, §8). Pure.

A session that finishes (1.6 StopTransaction, 2.0.1 Ended, or closed as a zombie) is ordered once: its order is
queued in the transaction that finishes it and is immutable from then on. The order state on the session:

- ``None``: not decided (the session is open);
- ``queued`` (in the outbox) → ``accepted`` (the province answered ConfirmResult 0, D10);
- ``unconfigured``: its connector is not in the config (or, for a 1.6 orphan stop that names no connector, its
  charger has more than one); never pushed (flag ``order_unconfigured``);
- ``unmeasured``: its energy is unknown when it finishes (an orphan with nothing to measure); never pushed (flag
  ``order_unmeasured``): a reading arriving later could only give a partial energy, with no sign of when the
  picture is complete.

``unconfigured`` and ``unmeasured`` are final, like an order queued; the status report lists them.

Information about a session arriving after its order was queued (a real stop after a zombie close, 2.0.1 readings
after Ended) is kept on the session and flagged ``changed_after_order``; the order is never pushed again with other
content.

The order's energy curve is the session's meter samples as Wh since the session's energy baseline. A zombie carries
no stop reason from the charger: it is reported as ``Other``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from edge_bridge.domain.orders import FinishedSession, Order
from edge_bridge.domain.pushes import ORDER_INFO, Push
from edge_bridge.domain.sessions import END_ZOMBIE, Session, energy_baseline

QUEUED = "queued"
ACCEPTED = "accepted"
UNCONFIGURED = "unconfigured"
UNMEASURED = "unmeasured"
ORDERED = frozenset({QUEUED, ACCEPTED})

ORDER_UNCONFIGURED = "order_unconfigured"
ORDER_UNMEASURED = "order_unmeasured"
CHANGED_AFTER_ORDER = "changed_after_order"

ZOMBIE_STOP_REASON = "Other"


class OrderStep(enum.Enum):
    NOTHING = "nothing"
    BUILD = "build"  # queue the order now
    UNCONFIGURED = "unconfigured"  # never ordered: its connector is not configured
    UNMEASURED = "unmeasured"  # never ordered: its energy is unknown
    LATE = "late"  # ordered already: flag what arrived


STEP_FLAGS = {
    OrderStep.UNCONFIGURED: ORDER_UNCONFIGURED,
    OrderStep.UNMEASURED: ORDER_UNMEASURED,
    OrderStep.LATE: CHANGED_AFTER_ORDER,
}


def order_step(session: Session, order_state: str | None, configured: bool) -> OrderStep:
    """What a session that was just written means for its order."""
    if order_state in ORDERED:
        return OrderStep.LATE
    if session.is_open or order_state is not None:
        return OrderStep.NOTHING
    if not configured:
        return OrderStep.UNCONFIGURED
    if session.energy_wh is None:
        return OrderStep.UNMEASURED
    return OrderStep.BUILD


def stop_reason(session: Session) -> str:
    """The OCPP stop reason text of the order: the charger's, or ``Other`` for a zombie closed by the bridge."""
    if not session.stop_reason and session.end_source == END_ZOMBIE:
        return ZOMBIE_STOP_REASON
    return session.stop_reason


def curve(session: Session, registers: Iterable[tuple[datetime, Decimal]]) -> tuple[tuple[datetime, Decimal], ...]:
    """Register readings (charger time, Wh) as Wh since the session's energy baseline."""
    base = energy_baseline(session)
    offset = Decimal(0) if base is None else base.wh
    return tuple((at, wh - offset) for at, wh in registers)


def finished_session(
    session: Session, connector_id: str, registers: Iterable[tuple[datetime, Decimal]]
) -> FinishedSession:
    """The input of ``orders.build_order`` for a session ``order_step`` said to BUILD."""
    if session.id is None or session.ended_at is None or session.energy_wh is None:
        raise ValueError("only a stored, finished session with a known energy is ordered")
    return FinishedSession(
        session_id=session.id,
        connector_id=connector_id,
        start=session.started_at,
        end=session.ended_at,
        energy_wh=session.energy_wh,
        samples=curve(session, registers),
        stop_reason=stop_reason(session),
    )


def order_push(order: Order) -> Push:
    """notification_orderInfo of the order (flat Data, D10), keyed by its ConnectorID (D18)."""
    return Push(ORDER_INFO, str(order.data["ConnectorID"]), order.data)

"""The order of a finished session (ocpp-bridge §6, D10-D13): queued in the transaction that finishes the session,
immutable once queued; the accept hook records the province's ConfirmResult 0."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from edge_bridge.domain import order_rules
from edge_bridge.domain.order_rules import OrderStep
from edge_bridge.domain.orders import Order, build_order
from edge_bridge.domain.places import ConnectorPlace
from edge_bridge.domain.sessions import END_BEFORE_START, Session, add_flags
from edge_bridge.store import orders
from edge_bridge.store import sessions as stored_sessions
from edge_bridge.store.db import Tx
from edge_bridge.store.outbox import OutboxRow
from edge_bridge.usecases.context import Context

log = logging.getLogger(__name__)


def session_written(ctx: Context, tx: Tx, session: Session, now: datetime) -> None:
    """A session was just stored: queue its order when it finished (D10), or flag what it cannot have."""
    if session.is_open or session.id is None:
        return
    record = orders.get_order(tx, session.id)
    place = ctx.places.session_connector((session.charger, session.evse, session.connector))
    step = order_rules.order_step(session, record.state, place is not None)
    if step is OrderStep.BUILD and place is not None:
        _queue_order(ctx, tx, session.id, session, place, now)
    elif step is not OrderStep.NOTHING:
        _not_ordered(ctx, tx, session.id, session, step)


def order_of(ctx: Context, tx: Tx, session: Session, place: ConnectorPlace) -> Order:
    """The order of a stored, finished session: its register readings, split by the tariffs in force at its
    station during the session (D12, D13)."""
    registers = orders.session_registers(tx, session.id or 0)
    finished = order_rules.finished_session(session, place.connector_id, registers)
    return build_order(finished, ctx.tariff_history(place.station), ctx.tz, ctx.seq_prefix, ctx.stop_overrides)


def rebuilt_order(ctx: Context, tx: Tx, session_id: int, start_charge_seq: str) -> Order:
    """The order of a stored session built again, as ``_queue_order`` builds it, under its StartChargeSeq
    (``edge-bridge orders repush --rebuild``). ValueError names why it cannot be (gone, unfinished, unmeasured, or
    its connector no longer configured)."""
    session = stored_sessions.get_session(tx, session_id)
    if session is None:
        raise ValueError(f"session {session_id} is no longer stored")
    place = ctx.places.session_connector((session.charger, session.evse, session.connector))
    if place is None:
        raise ValueError(f"the connector of session {session_id} is no longer configured")
    order = order_of(ctx, tx, session, place)  # ValueError when not finished with a known energy
    return replace(order, start_charge_seq=start_charge_seq, data={**order.data, "StartChargeSeq": start_charge_seq})


def _queue_order(ctx: Context, tx: Tx, session_id: int, session: Session, place: ConnectorPlace, now: datetime) -> None:
    order = order_of(ctx, tx, session, place)
    (outbox_id,) = ctx.push(tx, (order_rules.order_push(order),), now)
    orders.set_order(tx, session_id, order_rules.QUEUED, order.start_charge_seq, outbox_id)
    orders.keep_order_figures(tx, session_id)  # the pushed figures outlive the outbox row (reconciliation)
    tx.on_commit(functools.partial(_log_queued, session, order))  # a line for an order that was stored


def _log_queued(session: Session, order: Order) -> None:
    fields = {"charger": session.charger, "session": session.id, "start_charge_seq": order.start_charge_seq}
    if order.merged_details:
        log.warning("order_details_merged", extra={**fields, "merged": order.merged_details})
    if END_BEFORE_START in session.flags:  # a clock went back during the session (domain.sessions)
        log.warning("session_end_before_start", extra={**fields, "ended_at": order.data["EndTime"]})
    log.info("order_queued", extra=fields)


def _not_ordered(ctx: Context, tx: Tx, session_id: int, session: Session, step: OrderStep) -> None:
    """Not an order (unconfigured, unmeasured: decided for good) or news after one (LATE): flag and log."""
    flagged = replace(session, flags=add_flags(session.flags, order_rules.STEP_FLAGS[step]))
    if flagged != session:
        ctx.state.update_session(tx, flagged)
    if step is not OrderStep.LATE:
        orders.set_order(tx, session_id, step.value)
    fields = {"charger": session.charger, "session": session_id, "evse": session.evse}
    log.warning(f"order_{step.value}", extra={**fields, "connector": session.connector})


def order_accepted(tx: Tx, row: OutboxRow, _answer: Mapping[str, Any] | None) -> None:
    """Accept hook of notification_orderInfo: the session's order is accepted. The uploader accepts an order only
    with ConfirmResult 0 (D10); anything else is dead-lettered with its reason and never reaches this hook."""
    if orders.accept_order(tx, row.id) == 0:
        log.warning("order_accepted_unknown", extra={"row": row.id})

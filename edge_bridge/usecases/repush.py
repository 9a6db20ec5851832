"""``edge-bridge orders repush``: queue orders again for the province under their StartChargeSeq, after a dispute.

Every order named or none: ``repush`` plans them all first (an unknown StartChargeSeq, an order still waiting in the
outbox, or one whose content was not kept raises ``Refused`` before anything is written), then queues them in the
caller's transaction. The content is the stored payload byte for byte, or with ``rebuild`` the order built again by
``orders.order_of`` (the daemon's own rules) from the stored session, priced by the tariff versions the daemon
recorded (``tariffs.stored``), its StartChargeSeq kept and what changed logged (``order_rebuilt``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edge_bridge.domain import order_rules
from edge_bridge.domain.pushes import ORDER_INFO
from edge_bridge.provincial import codec
from edge_bridge.store.db import Tx
from edge_bridge.store.orders import OrderEntry, order_by_seq, repush_order
from edge_bridge.usecases import tariffs
from edge_bridge.usecases.context import Context
from edge_bridge.usecases.orders import rebuilt_order

log = logging.getLogger(__name__)


class Refused(ValueError):
    """A repush that cannot be done (exit 1, nothing queued)."""


@dataclass(frozen=True)
class Plan:
    """One order to queue again: its entry, the payload to push and, when rebuilt, what changed."""

    entry: OrderEntry
    key: str
    payload: str
    rebuilt: bool = False
    changed: dict[str, list[str]] = field(default_factory=dict)


def repush(ctx: Context, seqs: Sequence[str], rebuild: bool, now: datetime, tx: Tx) -> list[tuple[Plan, int]]:
    """Plan every order first (a refusal raises before anything is written), then queue them all."""
    if rebuild:  # price as the daemon did: by the tariff versions it recorded
        ctx.reconfigure(ctx.site, tariffs.stored(tx, ctx.site), ctx.offline_after_s, ctx.stop_overrides)
    plans = [_plan(ctx, tx, seq, rebuild) for seq in seqs]
    return [(plan, _queue(ctx, tx, plan, now)) for plan in plans]


def _plan(ctx: Context, tx: Tx, seq: str, rebuild: bool) -> Plan:
    entry = order_by_seq(tx, seq)
    if entry is None:
        raise Refused(f"no order with StartChargeSeq {seq!r}")
    if entry.outbox_state == "pending":
        raise Refused(f"order {seq} is still waiting in the outbox (row {entry.outbox_id})")
    if rebuild:
        return _rebuilt(ctx, tx, entry, seq)
    if entry.payload is None or entry.connector_id is None:
        raise Refused(f"the content of order {seq} was not kept (queued before store version 9): use --rebuild")
    return Plan(entry, entry.connector_id, entry.payload)


def _rebuilt(ctx: Context, tx: Tx, entry: OrderEntry, seq: str) -> Plan:
    try:
        order = rebuilt_order(ctx, tx, entry.session_id, seq)
    except ValueError as exc:
        raise Refused(f"order {seq} cannot be rebuilt: {exc}") from None
    push = order_rules.order_push(order)
    payload = codec.dumps(dict(push.data)).decode("utf-8")
    return Plan(entry, push.key, payload, rebuilt=True, changed=differences(entry.payload, payload))


def differences(old: str | None, new: str) -> dict[str, list[str]]:
    """The fields of two order payloads that differ: field → [old, new] (ChargeDetails: their counts)."""
    before: dict[str, Any] = codec.loads(old.encode()) if old else {}
    after: dict[str, Any] = codec.loads(new.encode())
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    return {k: [_field(before.get(k)), _field(after.get(k))] for k in changed}


def _field(value: Any) -> str:
    if isinstance(value, list):
        return f"{len(value)} details"
    return "" if value is None else str(value)


def _queue(ctx: Context, tx: Tx, plan: Plan, now: datetime) -> int:
    row = ctx.outbox.enqueue(tx, ORDER_INFO, plan.key, plan.payload, now)
    repush_order(tx, plan.entry.session_id, row, plan.rebuilt)
    tx.on_commit(functools.partial(_log_repushed, plan, row))
    return row


def _log_repushed(plan: Plan, row: int) -> None:
    fields = {"start_charge_seq": plan.entry.start_charge_seq, "session": plan.entry.session_id}
    if plan.rebuilt:
        log.info("order_rebuilt", extra={**fields, "changed": plan.changed})
    log.info("order_repushed", extra={**fields, "row": row, "rebuilt": plan.rebuilt})

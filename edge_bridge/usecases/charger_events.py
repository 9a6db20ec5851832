"""What chargers report (ocpp-bridge §2-§5): the normalized events of one OCPP message, applied in the caller's
transaction. Decisions are the pure domain's (``domain.status``, ``domain.sessions``); what they mean for the
province is queued in the same transaction (statuses, alarms, orders, station info).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from edge_bridge.domain import sessions, status
from edge_bridge.domain.events import (
    ChargerBooted,
    ConnectorStatusReported,
    Event,
    FaultReported,
    MeterSampled,
    SessionEvent,
)
from edge_bridge.store import chargers
from edge_bridge.store import sessions as stored
from edge_bridge.store.chargers import ChargerRow
from edge_bridge.store.db import Tx
from edge_bridge.usecases import alarms, connectors, liveness, orders, station_info
from edge_bridge.usecases.context import Context
from edge_bridge.usecases.sessions import write_outcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    """What the charger side needs back: the transactionId a 1.6 StartTransaction is answered with, and the
    connectors (evse, connector) whose session the message ended (their status is asked for if none follows)."""

    transaction_id: int | None = None
    ended: tuple[tuple[int, int], ...] = ()


NOTHING = Applied()


def apply(ctx: Context, tx: Tx, events: Sequence[Event], now: datetime) -> Applied:
    """Apply the events of one OCPP message."""
    applied = NOTHING
    for event in events:
        one = _apply_one(ctx, tx, event, now)
        transaction_id = one.transaction_id or applied.transaction_id
        applied = Applied(transaction_id, applied.ended + one.ended)
    return applied


def _apply_one(ctx: Context, tx: Tx, event: Event, now: datetime) -> Applied:
    charger = ctx.state.charger(tx, event.charger)
    charger = liveness.bring_online(ctx, tx, charger, now)
    if isinstance(event, ChargerBooted):
        _booted(ctx, tx, event)
    elif isinstance(event, ConnectorStatusReported):
        _status_reported(ctx, tx, charger, event, now)
    elif isinstance(event, MeterSampled):
        _sampled(ctx, tx, charger, event, now)
    elif isinstance(event, SessionEvent):
        return _session_event(ctx, tx, charger, event, now)
    elif isinstance(event, FaultReported):
        alarms.fault(ctx, tx, event, now)
    # ChargerSeen: bring_online is all it does
    return NOTHING


def _booted(ctx: Context, tx: Tx, event: ChargerBooted) -> None:
    """Store what the charger says about itself; when that is new, its station's info is checked once at the end
    of the batch (``station_info.queue_changed``, D7)."""
    before = ctx.state.charger(tx, event.charger)
    ctx.state.set_boot(tx, event)
    place = ctx.places.charger(event.charger)
    said = (event.vendor, event.model, event.serial, event.firmware)
    if place is not None and said != (before.vendor, before.model, before.serial, before.firmware):
        station_info.mark_changed(ctx.changed_stations, tx, place.station.station_id)


def _status_reported(ctx: Context, tx: Tx, charger: ChargerRow, event: ConnectorStatusReported, now: datetime) -> None:
    current = connectors.connector(ctx, tx, (event.charger, event.evse, event.connector))
    updated = status.apply_report(current, event)
    chargers.log_status(tx, event, applied=updated is not None)
    if updated is None:
        log.debug("status_older_ignored", extra={"charger": event.charger, "evse": event.evse})
        return
    ctx.state.put_connector(tx, updated)
    only = None if status.is_charger_level(event.evse) else (event.evse, event.connector)
    connectors.restatus(ctx, tx, charger, now, only)
    alarms.status_alarms(ctx, tx, event, now)


def _sampled(ctx: Context, tx: Tx, charger: ChargerRow, event: MeterSampled, now: datetime) -> None:
    owner = _owner(ctx, tx, event)
    if owner is not None:
        owner = sessions.sampled(owner, event.readings, event.received_at, event.flags)
        ctx.state.update_session(tx, owner)
    where = (event.charger, event.evse, event.connector)
    stored.insert_samples(tx, where, None if owner is None else owner.id, event.readings, event.received_at)
    if owner is not None:
        orders.session_written(ctx, tx, owner, now)
    known = [(c.evse, c.connector) for c in ctx.state.connectors_of(tx, event.charger)]
    for evse, connector in status.live_targets(event.evse, event.connector, known):
        connectors.live_readings(ctx, tx, charger, (event.charger, evse, connector), event.readings, now)


def _owner(ctx: Context, tx: Tx, event: MeterSampled) -> sessions.Session | None:
    if event.transaction_ref is not None:
        return ctx.state.session_by_ref(tx, event.charger, status.V16, event.transaction_ref)
    here = ctx.state.open_sessions_on(tx, event.charger, event.evse, event.connector)
    return sessions.owner_of_untagged(here, event)


def _session_event(ctx: Context, tx: Tx, charger: ChargerRow, event: SessionEvent, now: datetime) -> Applied:
    version = sessions.session_version(event, charger.ocpp_version)
    outcome = _decide_201(ctx, tx, event) if version == status.V201 else _decide_16(ctx, tx, event)
    if outcome is None:
        return NOTHING
    session = write_outcome(ctx, tx, charger, outcome, now)
    if session is not None:
        where = (event.charger, session.evse, session.connector)
        stored.insert_samples(tx, where, session.id, outcome.readings, event.received_at)
        connectors.live_readings(ctx, tx, charger, where, outcome.readings, now)
        orders.session_written(ctx, tx, session, now)
    if event.kind == "ended":
        return Applied(ended=_ended_where(session))
    if version == status.V16 and event.kind == "started":
        return Applied(outcome.reply_id or (None if session is None else session.id))
    return NOTHING


def _ended_where(session: sessions.Session | None) -> tuple[tuple[int, int], ...]:
    """The connector a real stop just finished the session on; none when it names none (a 1.6 orphan)."""
    if session is None or session.is_open or session.evse < 1:
        return ()
    return ((session.evse, session.connector),)


def _decide_16(ctx: Context, tx: Tx, event: SessionEvent) -> sessions.SessionOutcome | None:
    if event.kind == "started":
        same = stored.session_by_start_key(tx, sessions.start_key(event))
        return sessions.start_16(event, same_start=same, open_here=_open_here(ctx, tx, event))
    found = None
    if event.transaction_ref is not None:
        found = ctx.state.session_by_ref(tx, event.charger, status.V16, event.transaction_ref)
    if event.kind == "ended":
        found = found or stored.session_by_stop_key(tx, event.charger, sessions.stop_key(event))
        return sessions.stop_16(event, found)
    if found is None:  # an "updated" for an unknown 1.6 id: nothing to attach it to
        return None
    return sessions.SessionOutcome(session=sessions.sampled(found, event.readings, event.received_at, event.flags))


def _decide_201(ctx: Context, tx: Tx, event: SessionEvent) -> sessions.SessionOutcome | None:
    ref = event.transaction_ref
    if ref is None:
        log.warning("transaction_event_without_id", extra={"charger": event.charger})
        return None
    if event.seq_no is not None and not stored.record_tx_event(
        tx, event.charger, ref, event.seq_no, event.kind, event.received_at
    ):
        return None  # a repeated (transactionId, seqNo)
    found = ctx.state.session_by_ref(tx, event.charger, status.V201, ref)
    here = [] if found is not None else _open_here(ctx, tx, event)
    return sessions.transaction_event(event, session=found, open_here=here)


def _open_here(ctx: Context, tx: Tx, event: SessionEvent) -> list[sessions.Session]:
    evse, connector = sessions.where(event)
    return ctx.state.open_sessions_on(tx, event.charger, evse, connector)

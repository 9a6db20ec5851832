"""Chargers connecting, going silent and coming back, and zombie sessions (ocpp-bridge §4, §5).

Every frame (or pong) is a sign of life, recorded in memory by ``Seen.touch``; ``sweep`` persists it, marks
chargers silent for ``offline_after_s`` offline (their connectors report 0, alarm 27) and closes zombie sessions
whose grace elapsed. Any event of an offline charger brings it back at once (``bring_online``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from edge_bridge.domain import sessions, status
from edge_bridge.store import chargers
from edge_bridge.store import sessions as stored_sessions
from edge_bridge.store.chargers import ChargerRow
from edge_bridge.store.db import Tx
from edge_bridge.usecases import alarms, connectors
from edge_bridge.usecases.context import Context
from edge_bridge.usecases.sessions import write_outcome

log = logging.getLogger(__name__)


class Seen:
    """The last sign of life of each charger, in memory until a sweep persists it."""

    def __init__(self) -> None:
        self._seen: dict[str, datetime] = {}
        self._persisted: dict[str, datetime] = {}

    def touch(self, charger: str, now: datetime) -> None:
        last = self._seen.get(charger)
        if last is None or now > last:
            self._seen[charger] = now

    def get(self, charger: str) -> datetime | None:
        return self._seen.get(charger)

    def unpersisted(self) -> dict[str, datetime]:
        return {c: at for c, at in self._seen.items() if self._persisted.get(c) != at}

    def persisted(self, done: dict[str, datetime]) -> None:
        self._persisted.update(done)


def connected(ctx: Context, tx: Tx, charger: str, ocpp_version: str, now: datetime) -> list[tuple[int, int]]:
    """A websocket of ``charger`` opened, speaking ``ocpp_version`` (``1.6``/``ocpp1.6``, ``2.0.1``/...). Returns
    the connectors whose status to ask for (``connectors.status_targets``)."""
    version = status.ocpp_version(ocpp_version)
    row = ctx.state.attach(tx, charger)
    ctx.state.set_connected(tx, charger, True, version)
    ctx.state.seen(tx, charger, now)
    bring_online(ctx, tx, row, now, force=row.ocpp_version != version)
    return connectors.status_targets(ctx, tx, charger)


def disconnected(ctx: Context, tx: Tx, charger: str, last_seen: datetime | None) -> None:
    """The websocket of ``charger`` closed (it goes offline only after ``offline_after_s`` of silence)."""
    ctx.state.charger(tx, charger)
    ctx.state.set_connected(tx, charger, False)
    if last_seen is not None:
        ctx.state.seen(tx, charger, last_seen)
    ctx.state.detach(tx, charger)


def bring_online(ctx: Context, tx: Tx, row: ChargerRow, now: datetime, force: bool = False) -> ChargerRow:
    """Any sign of life ends the offline state at once (its connectors get their own Status back)."""
    if not row.offline and not force:
        return row
    if row.offline:
        ctx.state.set_offline(tx, row.ocpp_id, False)
        log.info("charger_online", extra={"charger": row.ocpp_id})
    fresh = ctx.state.charger(tx, row.ocpp_id)
    connectors.restatus(ctx, tx, fresh, now)
    if row.offline:
        alarms.offline(ctx, tx, row.ocpp_id, False, now)
    return fresh


def sweep(ctx: Context, tx: Tx, seen: dict[str, datetime], now: datetime) -> None:
    """Persist ``seen`` (last signs of life), mark silent chargers offline, close zombies whose grace elapsed."""
    for charger, at in seen.items():
        ctx.state.seen(tx, charger, at)
    for row in chargers.all_chargers(tx):
        _check_offline(ctx, tx, row, now)
    for session in stored_sessions.open_sessions(tx):
        _check_zombie(ctx, tx, session, now)


def _check_offline(ctx: Context, tx: Tx, row: ChargerRow, now: datetime) -> None:
    is_offline = status.is_offline(row.last_seen, now, ctx.offline_after_s)
    if is_offline == row.offline:
        return
    ctx.state.set_offline(tx, row.ocpp_id, is_offline)
    log.info("charger_offline" if is_offline else "charger_online", extra={"charger": row.ocpp_id})
    connectors.restatus(ctx, tx, replace(row, offline=is_offline), now)
    alarms.offline(ctx, tx, row.ocpp_id, is_offline, now)


def _check_zombie(ctx: Context, tx: Tx, session: sessions.Session, now: datetime) -> None:
    latest = stored_sessions.latest_start(tx, session.charger, session.evse, session.connector)
    outcome = sessions.sweep_session(
        session,
        now=now,
        grace_s=ctx.zombie_grace_s,
        later_start=latest is not None and latest > session.started_at,
        connector=ctx.state.connector(tx, (session.charger, session.evse, session.connector)),
    )
    if outcome is not None:
        write_outcome(ctx, tx, ctx.state.charger(tx, session.charger), outcome, now)

"""Writing a session decision of ``domain.sessions``: the session (inserted or updated), the zombies it closed,
the Status of the connectors it touched, its pushes, and the order of whatever it finished."""

from __future__ import annotations

import logging
from datetime import datetime

from edge_bridge.domain.sessions import Session, SessionOutcome
from edge_bridge.store.chargers import ChargerRow
from edge_bridge.store.db import Tx
from edge_bridge.usecases import connectors, orders
from edge_bridge.usecases.context import Context

log = logging.getLogger(__name__)


def write_outcome(ctx: Context, tx: Tx, charger: ChargerRow, outcome: SessionOutcome, now: datetime) -> Session | None:
    """Store a session decision; returns ``outcome.session`` as stored (inserted when new)."""
    for zombie in outcome.zombies:
        ctx.state.update_session(tx, zombie)
        log.info("session_zombie_closed", extra={"charger": zombie.charger, "session": zombie.id})
        orders.session_written(ctx, tx, zombie, now)
    stored = None
    if outcome.session is not None:
        stored = _store_session(ctx, tx, outcome.session)
    touched = {(s.evse, s.connector) for s in (*outcome.zombies, *filter(None, [outcome.session]))}
    for evse, connector in sorted(touched):
        connectors.restatus(ctx, tx, charger, now, (evse, connector))
    ctx.push(tx, outcome.pushes, now)
    return stored


def _store_session(ctx: Context, tx: Tx, session: Session) -> Session:
    if session.id is None:
        return ctx.state.insert_session(tx, session)
    ctx.state.update_session(tx, session)
    return session

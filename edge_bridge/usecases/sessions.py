"""Writing a session decision of ``domain.sessions``: the session (inserted or updated), the zombies it closed,
the Status of the connectors it touched, its pushes, and the order of whatever it finished."""

from __future__ import annotations

import logging
from datetime import datetime

from edge_bridge.domain.sessions import Session, SessionOutcome
from edge_bridge.store import sessions
from edge_bridge.store.chargers import ChargerRow
from edge_bridge.store.db import Tx
from edge_bridge.usecases import connectors, orders
from edge_bridge.usecases.context import Context

log = logging.getLogger(__name__)


def write_outcome(ctx: Context, tx: Tx, charger: ChargerRow, outcome: SessionOutcome, now: datetime) -> int | None:
    """Store a session decision; returns the id of ``outcome.session`` (inserted when new)."""
    for zombie in outcome.zombies:
        sessions.update_session(tx, zombie)
        log.info("session_zombie_closed", extra={"charger": zombie.charger, "session": zombie.id})
        orders.session_written(ctx, tx, zombie, now)
    session_id = None
    if outcome.session is not None:
        session_id = _store_session(tx, outcome.session)
    touched = {(s.evse, s.connector) for s in (*outcome.zombies, *filter(None, [outcome.session]))}
    for evse, connector in sorted(touched):
        connectors.restatus(ctx, tx, charger, now, (evse, connector))
    ctx.push(tx, outcome.pushes, now)
    return session_id


def _store_session(tx: Tx, session: Session) -> int:
    if session.id is not None:
        sessions.update_session(tx, session)
        return session.id
    session_id = sessions.insert_session(tx, session)
    if session.transaction_ref is None:
        sessions.set_transaction_ref(tx, session_id, str(session_id))
    return session_id

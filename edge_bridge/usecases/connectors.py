"""The provincial Status and live readings of connectors (ocpp-bridge §5): decided by ``domain.status``, stored,
and pushed as notification_stationStatus when the effective Status changes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from edge_bridge.domain import sessions, status
from edge_bridge.domain.events import Reading
from edge_bridge.domain.places import Where
from edge_bridge.store.chargers import ChargerRow
from edge_bridge.store.db import Tx
from edge_bridge.usecases.context import Context

log = logging.getLogger(__name__)


def connector(ctx: Context, tx: Tx, where: Where) -> status.ConnectorState:
    """The stored state of a connector, or a fresh one when it never reported."""
    found = ctx.state.connector(tx, where)
    return found if found is not None else status.ConnectorState(*where)


def restatus(ctx: Context, tx: Tx, charger: ChargerRow, now: datetime, only: tuple[int, int] | None = None) -> None:
    """Decide the provincial Status of the charger's connectors (or of ``only``) again; store and push changes."""
    rows = ctx.state.connectors_of(tx, charger.ocpp_id)
    level = any(status.is_charger_level(c.evse) and status.is_charger_level_fault(c.ocpp_status) for c in rows)
    for row in rows:
        if only is None or (row.evse, row.connector) == only:
            _restatus_one(ctx, tx, charger, row, level, now)


def _restatus_one(
    ctx: Context, tx: Tx, charger: ChargerRow, row: status.ConnectorState, level: bool, now: datetime
) -> None:
    here = []  # only an Occupied connector needs its transaction's chargingState
    if row.ocpp_status == status.REFINED_BY_CHARGING_STATE:
        here = ctx.state.open_sessions_on(tx, row.charger, row.evse, row.connector)
    outcome = status.restatus(
        row,
        version=charger.ocpp_version,
        charger_level_fault=level,
        offline=charger.offline,
        charging_state=sessions.charging_state_of(here),
        connector_id=ctx.connector_id((row.charger, row.evse, row.connector)),
    )
    if (change := outcome.change) is not None:
        ctx.state.put_connector(tx, outcome.state)
        where = {"charger": change.charger, "evse": change.evse, "connector": change.connector}
        log.debug("status_changed", extra={**where, "before": change.before, "after": change.after})
    ctx.push(tx, outcome.pushes, now)


def status_targets(ctx: Context, tx: Tx, charger: str) -> list[tuple[int, int]]:
    """The connectors (evse, connector) whose current status to ask a charger for when it (re)connects: the
    configured ones and every one it ever reported (its whole-charger 0 only if it reported one), in order."""
    place = ctx.places.charger(charger)
    plugs = () if place is None else place.charger.connectors
    configured = {(c.ocpp_connector, c.ocpp_evse_connector) for c in plugs}
    reported = {(c.evse, c.connector) for c in ctx.state.connectors_of(tx, charger)}
    return sorted(configured | reported)


def live_readings(
    ctx: Context, tx: Tx, charger: ChargerRow, where: Where, readings: Sequence[Reading], now: datetime
) -> None:
    """Keep the newest power, SoC, current and voltage of a connector (a new connector gets its Status too)."""
    if not readings:
        return
    current = ctx.state.connector(tx, where)
    base = current if current is not None else status.ConnectorState(*where)
    updated = status.apply_readings(base, tuple(readings))
    if updated != current:
        ctx.state.put_connector(tx, updated)
    if current is None:
        restatus(ctx, tx, charger, now, (where[1], where[2]))

"""Alarms as raise/recover pairs (ocpp-bridge §7): decided by ``domain.alarm_rules``, kept in ``active_alarms`` so
that a restart neither repeats nor forgets them, pushed as alarm_report for configured places."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from edge_bridge.domain import alarm_rules
from edge_bridge.domain.alarm_rules import ActiveAlarm, AlarmChange, AlarmChanges
from edge_bridge.domain.events import ConnectorStatusReported, FaultReported
from edge_bridge.store import alarms
from edge_bridge.store.db import Tx
from edge_bridge.usecases.context import Context

log = logging.getLogger(__name__)

Decide = Callable[[Sequence[ActiveAlarm]], AlarmChanges]


def status_alarms(ctx: Context, tx: Tx, report: ConnectorStatusReported, now: datetime) -> None:
    """An applied StatusNotification: its errorCode raises, NoError recovers."""
    _alarms(ctx, tx, report.charger, lambda active: alarm_rules.on_status(report, active), now)


def fault(ctx: Context, tx: Tx, event: FaultReported, now: datetime) -> None:
    """A 2.0.1 problem variable raised or cleared."""
    _alarms(ctx, tx, event.charger, lambda active: alarm_rules.on_fault(event, active), now)


def offline(ctx: Context, tx: Tx, charger: str, is_offline: bool, now: datetime) -> None:
    """The charger went silent (alarm 27 raised) or came back (recovered)."""
    _alarms(ctx, tx, charger, lambda active: alarm_rules.on_offline(charger, is_offline, active, now), now)


def _alarms(ctx: Context, tx: Tx, charger: str, decide: Decide, now: datetime) -> None:
    for change in decide(alarms.active_alarms(tx, charger)):
        _alarm(ctx, tx, change, now)


def _alarm(ctx: Context, tx: Tx, change: AlarmChange, now: datetime) -> None:
    a = change.alarm
    if change.raised:
        alarms.raise_alarm(tx, a)
    else:
        alarms.clear_alarm(tx, a.charger, a.key)
    fields = {"charger": a.charger, "alarm": a.key, "code": a.kind.code}
    log.info("alarm_raised" if change.raised else "alarm_recovered", extra=fields)
    site = ctx.places.alarm_site((a.charger, a.evse, a.connector))
    if site is not None:
        ctx.push(tx, (alarm_rules.alarm_push(change, site, ctx.tz),), now)

"""When an alarm is raised and when it is recovered (ocpp-bridge §7, D8). Pure.

Each fault has a key within its charger; an alarm is *active* from its raise to its recovery, and the store keeps
the active ones, so the rules are idempotent across restarts:

- 1.6 StatusNotification with an errorCode other than NoError raises (key: connector and errorCode) unless that
  alarm is active; a NoError on the connector recovers every active status alarm of it.
- 2.0.1 NotifyEvent (``FaultReported``) raises (key: evse, connector, component, variable) when not active, and
  recovers when active; a repeat either way changes nothing.
- Offline (``offline_after_s`` of silence) raises code 27 for the whole charger; any sign of life recovers it.

A recovery repeats what was raised (code, type, level, note), whatever the code table says by then. Each raise and
each recovery is one alarm_report push ``{"AlarmInfos": [item]}``, keyed by the ConnectorID, or by the EquipmentID
for an alarm of the whole equipment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from edge_bridge.domain.alarms import (
    OFFLINE,
    AlarmKind,
    AlarmSite,
    alarm_for_error_code,
    alarm_for_variable,
    alarm_info,
)
from edge_bridge.domain.events import ConnectorStatusReported, FaultReported
from edge_bridge.domain.pushes import ALARM_REPORT, Push

OFFLINE_KEY = "offline"
STATUS_PREFIX = "status"
FAULT_PREFIX = "fault"
OFFLINE_NOTE = "no frame from the charger for offline_after_s"


@dataclass(frozen=True)
class ActiveAlarm:
    """A raised alarm that has not been recovered."""

    charger: str
    key: str
    evse: int
    connector: int
    kind: AlarmKind
    note: str
    raised_at: datetime


@dataclass(frozen=True)
class AlarmChange:
    """One raise (store ``alarm`` as active) or recovery (forget it), reported at ``at``."""

    alarm: ActiveAlarm
    raised: bool
    at: datetime


AlarmChanges = tuple[AlarmChange, ...]


def status_key(evse: int, connector: int, error_code: str) -> str:
    return f"{STATUS_PREFIX}|{evse}|{connector}|{error_code}"


def fault_key(evse: int, connector: int, component: str, variable: str) -> str:
    return f"{FAULT_PREFIX}|{evse}|{connector}|{component}|{variable}"


def _keys(active: Iterable[ActiveAlarm]) -> set[str]:
    return {a.key for a in active}


def status_note(report: ConnectorStatusReported) -> str:
    """NoteString of a 1.6 status alarm: the errorCode, then info and vendorErrorCode when given."""
    parts = [report.error_code]
    parts += [f"info={report.info}"] if report.info else []
    parts += [f"vendorErrorCode={report.vendor_error_code}"] if report.vendor_error_code else []
    return "; ".join(parts)


def on_status(report: ConnectorStatusReported, active: Iterable[ActiveAlarm]) -> AlarmChanges:
    """An applied 1.6 StatusNotification: raise its errorCode's alarm once, or recover the connector's alarms."""
    kind = alarm_for_error_code(report.error_code)
    if kind is None:
        prefix = status_key(report.evse, report.connector, "")
        return tuple(AlarmChange(a, False, report.at) for a in active if a.key.startswith(prefix))
    key = status_key(report.evse, report.connector, report.error_code)
    if key in _keys(active):
        return ()
    alarm = ActiveAlarm(report.charger, key, report.evse, report.connector, kind, status_note(report), report.at)
    return (AlarmChange(alarm, True, report.at),)


def on_fault(event: FaultReported, active: Iterable[ActiveAlarm]) -> AlarmChanges:
    """A 2.0.1 problem variable raised or cleared: idempotent both ways."""
    key = fault_key(event.evse, event.connector, event.component, event.variable)
    current = next((a for a in active if a.key == key), None)
    if event.active and current is None:
        kind = alarm_for_variable(event.component, event.variable)
        note = "; ".join(p for p in (f"{event.component}.{event.variable}", event.detail) if p)
        alarm = ActiveAlarm(event.charger, key, event.evse, event.connector, kind, note, event.at)
        return (AlarmChange(alarm, True, event.at),)
    if not event.active and current is not None:
        return (AlarmChange(current, False, event.at),)
    return ()


def on_offline(charger: str, offline: bool, active: Iterable[ActiveAlarm], at: datetime) -> AlarmChanges:
    """The charger went silent (raise code 27 for the whole charger) or came back (recover it)."""
    current = next((a for a in active if a.key == OFFLINE_KEY), None)
    if offline and current is None:
        return (AlarmChange(ActiveAlarm(charger, OFFLINE_KEY, 0, 0, OFFLINE, OFFLINE_NOTE, at), True, at),)
    if not offline and current is not None:
        return (AlarmChange(current, False, at),)
    return ()


def alarm_push(change: AlarmChange, site: AlarmSite, tz: ZoneInfo) -> Push:
    """The alarm_report of one raise or recovery (D8)."""
    a = change.alarm
    item = alarm_info(site, a.kind, change.raised, change.at, tz, a.note)
    return Push(ALARM_REPORT, site.connector_id or site.equipment_id, {"AlarmInfos": [item]})

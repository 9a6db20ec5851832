"""SQL for the active alarms of chargers (migration 0003). Functions take the caller's ``Tx``; no business rules:
the domain decides, this stores.

A row that cannot be read back raises StoreError.
"""

from __future__ import annotations

from edge_bridge.domain.alarm_rules import ActiveAlarm
from edge_bridge.domain.alarms import AlarmKind
from edge_bridge.store.db import Row, Tx, to_db
from edge_bridge.store.rows import read_row, required_time

# ------------------------------------------------------------------------------------------------ alarms (0003)

ACTIVE_ALARMS = "SELECT * FROM active_alarms WHERE ocpp_id = ? ORDER BY raised_at, alarm_key"
ALL_ACTIVE_ALARMS = "SELECT * FROM active_alarms ORDER BY ocpp_id, raised_at, alarm_key"
RAISE_ALARM = """
INSERT INTO active_alarms (ocpp_id, alarm_key, evse, connector, alarm_code, alarm_type, alarm_level, note, raised_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (ocpp_id, alarm_key) DO NOTHING
"""
CLEAR_ALARM = "DELETE FROM active_alarms WHERE ocpp_id = ? AND alarm_key = ?"


def _alarm(row: Row) -> ActiveAlarm:
    return ActiveAlarm(
        charger=row["ocpp_id"],
        key=row["alarm_key"],
        evse=row["evse"],
        connector=row["connector"],
        kind=AlarmKind(row["alarm_code"], row["alarm_type"], row["alarm_level"]),
        note=row["note"],
        raised_at=required_time(row["raised_at"]),
    )


def active_alarms(tx: Tx, charger: str) -> list[ActiveAlarm]:
    return [read_row(row, _alarm) for row in tx.fetchall(ACTIVE_ALARMS, (charger,))]


def all_active_alarms(tx: Tx) -> list[ActiveAlarm]:
    return [read_row(row, _alarm) for row in tx.fetchall(ALL_ACTIVE_ALARMS)]


def raise_alarm(tx: Tx, a: ActiveAlarm) -> None:
    """Remember ``a`` as active (a second raise of the same key keeps the first)."""
    params = (a.charger, a.key, a.evse, a.connector, a.kind.code, a.kind.type, a.kind.level, a.note, to_db(a.raised_at))
    tx.execute(RAISE_ALARM, params)


def clear_alarm(tx: Tx, charger: str, key: str) -> None:
    tx.execute(CLEAR_ALARM, (charger, key))

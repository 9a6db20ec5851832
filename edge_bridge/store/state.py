"""SQL for what the chargers told us: chargers, connectors, status reports, sessions, meter samples, 2.0.1 event
keys (migration 0002); orders of sessions and active alarms (migration 0003). Functions take the caller's ``Tx``;
no business rules: the domain decides, this stores.

Decimals are stored as exact text (``format(d, "f")``), times as ``db.to_db`` text, flags as a JSON list.
A row that cannot be read back raises StoreError.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import aiosqlite

from edge_bridge.domain.alarm_rules import ActiveAlarm
from edge_bridge.domain.alarms import AlarmKind
from edge_bridge.domain.events import ConnectorStatusReported, Reading
from edge_bridge.domain.sessions import Register, Registers, Session
from edge_bridge.domain.status import ConnectorState
from edge_bridge.errors import StoreError
from edge_bridge.store.db import Tx, from_db, to_db

T = TypeVar("T")

# ------------------------------------------------------------------------------------------------ conversions


def dec(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def undec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def time(value: datetime | None) -> str | None:
    return None if value is None else to_db(value)


def untime(text: str | None) -> datetime | None:
    return None if text is None else from_db(text)


def _read(row: aiosqlite.Row, convert: Callable[[aiosqlite.Row], T]) -> T:
    try:
        return convert(row)
    except (ValueError, TypeError, InvalidOperation, KeyError) as exc:
        raise StoreError(f"unreadable row: {exc}") from exc


def _required(text: str | None) -> datetime:
    moment = untime(text)
    if moment is None:
        raise ValueError("missing time")
    return moment


# ------------------------------------------------------------------------------------------------ chargers


@dataclass(frozen=True)
class ChargerRow:
    ocpp_id: str
    vendor: str = ""
    model: str = ""
    serial: str = ""
    firmware: str = ""
    ocpp_version: str = ""
    connected: bool = False
    offline: bool = False
    last_seen: datetime | None = None
    booted_at: datetime | None = None


ENSURE_CHARGER = "INSERT INTO chargers (ocpp_id) VALUES (?) ON CONFLICT (ocpp_id) DO NOTHING"
GET_CHARGER = "SELECT * FROM chargers WHERE ocpp_id = ?"
ALL_CHARGERS = "SELECT * FROM chargers ORDER BY ocpp_id"
SET_BOOT = """
UPDATE chargers SET vendor = ?2, model = ?3, serial = ?4, firmware = ?5, booted_at = ?6 WHERE ocpp_id = ?1
"""
SET_CONNECTED = "UPDATE chargers SET connected = ?2, ocpp_version = COALESCE(?3, ocpp_version) WHERE ocpp_id = ?1"
SET_OFFLINE = "UPDATE chargers SET offline = ?2 WHERE ocpp_id = ?1"
# last_seen only moves forward (fixed-width UTC text sorts as time)
SEEN = """
INSERT INTO chargers (ocpp_id, last_seen) VALUES (?1, ?2)
ON CONFLICT (ocpp_id) DO UPDATE SET last_seen = MAX(COALESCE(last_seen, ''), excluded.last_seen)
"""
RESET_CONNECTED = "UPDATE chargers SET connected = 0 WHERE connected != 0"


def _charger(row: aiosqlite.Row) -> ChargerRow:
    return ChargerRow(
        ocpp_id=row["ocpp_id"],
        vendor=row["vendor"],
        model=row["model"],
        serial=row["serial"],
        firmware=row["firmware"],
        ocpp_version=row["ocpp_version"],
        connected=bool(row["connected"]),
        offline=bool(row["offline"]),
        last_seen=untime(row["last_seen"]),
        booted_at=untime(row["booted_at"]),
    )


async def ensure_charger(tx: Tx, ocpp_id: str) -> ChargerRow:
    """The charger's row, created empty when it has none."""
    await tx.execute(ENSURE_CHARGER, (ocpp_id,))
    charger = await get_charger(tx, ocpp_id)
    if charger is None:
        raise StoreError(f"charger {ocpp_id!r} vanished")
    return charger


async def get_charger(tx: Tx, ocpp_id: str) -> ChargerRow | None:
    row = await tx.fetchone(GET_CHARGER, (ocpp_id,))
    return None if row is None else _read(row, _charger)


async def all_chargers(tx: Tx) -> list[ChargerRow]:
    return [_read(row, _charger) for row in await tx.fetchall(ALL_CHARGERS)]


async def set_boot(tx: Tx, ocpp_id: str, vendor: str, model: str, serial: str, firmware: str, at: datetime) -> None:
    await tx.execute(SET_BOOT, (ocpp_id, vendor, model, serial, firmware, to_db(at)))


async def set_connected(tx: Tx, ocpp_id: str, connected: bool, ocpp_version: str | None = None) -> None:
    await tx.execute(SET_CONNECTED, (ocpp_id, int(connected), ocpp_version))


async def set_offline(tx: Tx, ocpp_id: str, offline: bool) -> None:
    await tx.execute(SET_OFFLINE, (ocpp_id, int(offline)))


async def seen(tx: Tx, ocpp_id: str, at: datetime) -> None:
    """Move ``last_seen`` forward to ``at`` (creating the row)."""
    await tx.execute(SEEN, (ocpp_id, to_db(at)))


async def reset_connected(tx: Tx) -> None:
    """Every charger disconnected (the process just started: no socket is open)."""
    await tx.execute(RESET_CONNECTED)


# ------------------------------------------------------------------------------------------------ connectors

GET_CONNECTOR = "SELECT * FROM connectors WHERE ocpp_id = ? AND evse = ? AND connector = ?"
CONNECTORS_OF = "SELECT * FROM connectors WHERE ocpp_id = ? ORDER BY evse, connector"
ALL_CONNECTORS = "SELECT * FROM connectors ORDER BY ocpp_id, evse, connector"
PUT_CONNECTOR = """
INSERT OR REPLACE INTO connectors (ocpp_id, evse, connector, ocpp_status, error_code, info, vendor_error_code,
    status_at, status_received_at, provincial_status, power_w, soc, current_a, voltage_v, readings_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
"""
LOG_STATUS = """
INSERT INTO status_reports (ocpp_id, evse, connector, ocpp_status, error_code, info, vendor_error_code, at,
    received_at, applied, flags)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def _connector(row: aiosqlite.Row) -> ConnectorState:
    return ConnectorState(
        charger=row["ocpp_id"],
        evse=row["evse"],
        connector=row["connector"],
        ocpp_status=row["ocpp_status"],
        error_code=row["error_code"],
        info=row["info"],
        vendor_error_code=row["vendor_error_code"],
        status_at=untime(row["status_at"]),
        status_received_at=untime(row["status_received_at"]),
        provincial_status=row["provincial_status"],
        power_w=undec(row["power_w"]),
        soc=undec(row["soc"]),
        current_a=undec(row["current_a"]),
        voltage_v=undec(row["voltage_v"]),
        readings_at=untime(row["readings_at"]),
    )


async def get_connector(tx: Tx, charger: str, evse: int, connector: int) -> ConnectorState | None:
    row = await tx.fetchone(GET_CONNECTOR, (charger, evse, connector))
    return None if row is None else _read(row, _connector)


async def connectors_of(tx: Tx, charger: str) -> list[ConnectorState]:
    return [_read(row, _connector) for row in await tx.fetchall(CONNECTORS_OF, (charger,))]


async def all_connectors(tx: Tx) -> list[ConnectorState]:
    return [_read(row, _connector) for row in await tx.fetchall(ALL_CONNECTORS)]


async def put_connector(tx: Tx, c: ConnectorState) -> None:
    """Insert or replace the whole connector row."""
    params = (
        c.charger,
        c.evse,
        c.connector,
        c.ocpp_status,
        c.error_code,
        c.info,
        c.vendor_error_code,
        time(c.status_at),
        time(c.status_received_at),
        c.provincial_status,
        dec(c.power_w),
        dec(c.soc),
        dec(c.current_a),
        dec(c.voltage_v),
        time(c.readings_at),
    )
    await tx.execute(PUT_CONNECTOR, params)


async def log_status(tx: Tx, report: ConnectorStatusReported, applied: bool) -> None:
    """Keep every status report, applied or not (an older one is stored but changes nothing)."""
    params = (
        report.charger,
        report.evse,
        report.connector,
        report.status,
        report.error_code,
        report.info,
        report.vendor_error_code,
        to_db(report.at),
        to_db(report.received_at),
        int(applied),
        json.dumps(list(report.flags)),
    )
    await tx.execute(LOG_STATUS, params)


# ------------------------------------------------------------------------------------------------ sessions

SESSION_COLUMNS = (
    "ocpp_id",
    "evse",
    "connector",
    "version",
    "transaction_ref",
    "id_tag",
    "started_at",
    "started_received_at",
    "ended_at",
    "ended_received_at",
    "last_received_at",
    "meter_start_wh",
    "meter_stop_wh",
    "first_register_at",
    "first_register_wh",
    "first_nonzero_at",
    "first_nonzero_wh",
    "last_register_at",
    "last_register_wh",
    "last_sample_at",
    "energy_wh",
    "stop_reason",
    "state",
    "end_source",
    "orphan",
    "flags",
    "start_key",
    "stop_key",
    "charging_state",
    "charging_state_at",
)
# built from the constant column list above, never from input
_NAMES = ", ".join(SESSION_COLUMNS)
_MARKS = ", ".join("?" * len(SESSION_COLUMNS))
_SETS = ", ".join(f"{c} = ?" for c in SESSION_COLUMNS)
INSERT_SESSION = f"INSERT INTO sessions ({_NAMES}) VALUES ({_MARKS})"  # noqa: S608
UPDATE_SESSION = f"UPDATE sessions SET {_SETS} WHERE id = ?"  # noqa: S608
SET_REF = "UPDATE sessions SET transaction_ref = ?2 WHERE id = ?1"
BY_ID = "SELECT * FROM sessions WHERE id = ?"
BY_REF = "SELECT * FROM sessions WHERE ocpp_id = ? AND version = ? AND transaction_ref = ? AND orphan = ?"
BY_START_KEY = "SELECT * FROM sessions WHERE start_key = ?"
BY_STOP_KEY = "SELECT * FROM sessions WHERE ocpp_id = ? AND stop_key = ?"
OPEN_ON = """
SELECT * FROM sessions WHERE ocpp_id = ? AND evse = ? AND connector = ? AND state = 'open' ORDER BY started_at, id
"""
OPEN_ALL = "SELECT * FROM sessions WHERE state = 'open' ORDER BY started_at, id"
LATEST_START = "SELECT MAX(started_at) FROM sessions WHERE ocpp_id = ? AND evse = ? AND connector = ?"


def _register(at: str | None, wh: str | None) -> Register | None:
    moment, value = untime(at), undec(wh)
    return None if moment is None or value is None else Register(moment, value)


def _registers(row: aiosqlite.Row) -> Registers:
    return Registers(
        first=_register(row["first_register_at"], row["first_register_wh"]),
        first_nonzero=_register(row["first_nonzero_at"], row["first_nonzero_wh"]),
        last=_register(row["last_register_at"], row["last_register_wh"]),
    )


def _session(row: aiosqlite.Row) -> Session:
    flags = json.loads(row["flags"])
    if not isinstance(flags, list):
        raise ValueError("flags is not a list")
    return Session(
        id=row["id"],
        charger=row["ocpp_id"],
        version=row["version"],
        evse=row["evse"],
        connector=row["connector"],
        started_at=_required(row["started_at"]),
        started_received_at=_required(row["started_received_at"]),
        last_received_at=_required(row["last_received_at"]),
        transaction_ref=row["transaction_ref"],
        id_tag=row["id_tag"],
        ended_at=untime(row["ended_at"]),
        ended_received_at=untime(row["ended_received_at"]),
        meter_start_wh=undec(row["meter_start_wh"]),
        meter_stop_wh=undec(row["meter_stop_wh"]),
        registers=_registers(row),
        last_sample_at=untime(row["last_sample_at"]),
        energy_wh=undec(row["energy_wh"]),
        stop_reason=row["stop_reason"],
        state=row["state"],
        end_source=row["end_source"],
        orphan=bool(row["orphan"]),
        flags=tuple(str(f) for f in flags),
        start_key=row["start_key"],
        stop_key=row["stop_key"],
        charging_state=row["charging_state"],
        charging_state_at=untime(row["charging_state_at"]),
    )


def _register_params(register: Register | None) -> tuple[str | None, str | None]:
    return (None, None) if register is None else (to_db(register.at), dec(register.wh))


def _session_params(s: Session) -> tuple[Any, ...]:
    regs = s.registers
    return (
        s.charger,
        s.evse,
        s.connector,
        s.version,
        s.transaction_ref,
        s.id_tag,
        to_db(s.started_at),
        to_db(s.started_received_at),
        time(s.ended_at),
        time(s.ended_received_at),
        to_db(s.last_received_at),
        dec(s.meter_start_wh),
        dec(s.meter_stop_wh),
        *_register_params(regs.first),
        *_register_params(regs.first_nonzero),
        *_register_params(regs.last),
        time(s.last_sample_at),
        dec(s.energy_wh),
        s.stop_reason,
        s.state,
        s.end_source,
        int(s.orphan),
        json.dumps(list(s.flags)),
        s.start_key,
        s.stop_key,
        s.charging_state,
        time(s.charging_state_at),
    )


async def insert_session(tx: Tx, session: Session) -> int:
    """Insert a new session; returns its id (AUTOINCREMENT: positive, never reused, monotonic)."""
    cursor = await tx.execute(INSERT_SESSION, _session_params(session))
    if cursor.lastrowid is None:
        raise StoreError("session insert returned no id")
    return cursor.lastrowid


async def set_transaction_ref(tx: Tx, session_id: int, ref: str) -> None:
    await tx.execute(SET_REF, (session_id, ref))


async def update_session(tx: Tx, session: Session) -> None:
    if session.id is None:
        raise StoreError("update of a session without an id")
    await tx.execute(UPDATE_SESSION, (*_session_params(session), session.id))


async def _one_session(tx: Tx, sql: str, params: Sequence[Any]) -> Session | None:
    row = await tx.fetchone(sql, params)
    return None if row is None else _read(row, _session)


async def get_session(tx: Tx, session_id: int) -> Session | None:
    return await _one_session(tx, BY_ID, (session_id,))


async def session_by_ref(tx: Tx, charger: str, version: str, ref: str, orphan: bool = False) -> Session | None:
    return await _one_session(tx, BY_REF, (charger, version, ref, int(orphan)))


async def session_by_start_key(tx: Tx, key: str) -> Session | None:
    return await _one_session(tx, BY_START_KEY, (key,))


async def session_by_stop_key(tx: Tx, charger: str, key: str) -> Session | None:
    return await _one_session(tx, BY_STOP_KEY, (charger, key))


async def open_sessions_on(tx: Tx, charger: str, evse: int, connector: int) -> list[Session]:
    return [_read(row, _session) for row in await tx.fetchall(OPEN_ON, (charger, evse, connector))]


async def open_sessions(tx: Tx) -> list[Session]:
    return [_read(row, _session) for row in await tx.fetchall(OPEN_ALL)]


async def latest_start(tx: Tx, charger: str, evse: int, connector: int) -> datetime | None:
    """The latest ``started_at`` of any session on the connector."""
    row = await tx.fetchone(LATEST_START, (charger, evse, connector))
    return None if row is None else _read(row, lambda r: untime(r[0]))


# ------------------------------------------------------------------------------------------------ samples

# a sample is one moment of one connector in one context: a replayed frame adds nothing, but may attach it
INSERT_SAMPLE = """
INSERT INTO meter_samples (session_id, ocpp_id, evse, connector, at, received_at, energy_wh, power_w, soc,
    current_a, voltage_v, context, raw)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (ocpp_id, evse, connector, at, context)
DO UPDATE SET session_id = COALESCE(meter_samples.session_id, excluded.session_id)
"""


async def insert_samples(
    tx: Tx,
    where: tuple[str, int, int],
    session_id: int | None,
    readings: Sequence[Reading],
    received_at: datetime,
) -> None:
    """Store ``readings`` of connector ``where`` = (charger, evse, connector), attached to ``session_id``."""
    charger, evse, connector = where
    for r in readings:
        params = (
            session_id,
            charger,
            evse,
            connector,
            to_db(r.at),
            to_db(received_at),
            dec(r.energy_wh),
            dec(r.power_w),
            dec(r.soc),
            dec(r.current_a),
            dec(r.voltage_v),
            r.context,
            json.dumps(list(r.raw_skipped), ensure_ascii=False),
        )
        await tx.execute(INSERT_SAMPLE, params)


# ------------------------------------------------------------------------------------------------ 2.0.1 keys

RECORD_TX_EVENT = """
INSERT INTO tx_events (ocpp_id, transaction_ref, seq_no, event_type, received_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (ocpp_id, transaction_ref, seq_no) DO NOTHING
"""


async def record_tx_event(tx: Tx, charger: str, ref: str, seq_no: int, event_type: str, received_at: datetime) -> bool:
    """Remember a 2.0.1 TransactionEvent key; False when it was already known (a repeat)."""
    cursor = await tx.execute(RECORD_TX_EVENT, (charger, ref, seq_no, event_type, to_db(received_at)))
    return cursor.rowcount == 1


# ------------------------------------------------------------------------------------------------ orders (0003)


@dataclass(frozen=True)
class OrderRecord:
    """The order of a session: its state (None: not decided), StartChargeSeq and outbox row once queued."""

    state: str | None = None
    start_charge_seq: str | None = None
    outbox_id: int | None = None
    confirm_result: int | None = None


@dataclass(frozen=True)
class OrderLine:
    """A session whose order needs a human's eye: not pushed, or dead-lettered (with the outbox's reason)."""

    session_id: int
    where: tuple[str, int, int]
    state: str
    start_charge_seq: str | None
    outbox_state: str | None
    reason: str | None


GET_ORDER = "SELECT order_state, start_charge_seq, order_outbox_id, confirm_result FROM sessions WHERE id = ?"
SET_ORDER = """
UPDATE sessions SET order_state = ?2, start_charge_seq = COALESCE(?3, start_charge_seq),
    order_outbox_id = COALESCE(?4, order_outbox_id)
WHERE id = ?1
"""
ACCEPT_ORDER = "UPDATE sessions SET order_state = 'accepted', confirm_result = ?2 WHERE start_charge_seq = ?1"
SESSION_REGISTERS = """
SELECT at, energy_wh FROM meter_samples WHERE session_id = ? AND energy_wh IS NOT NULL ORDER BY at, id
"""
ORDER_COUNTS = """
SELECT s.order_state, o.state AS outbox_state, COUNT(*) AS n
FROM sessions AS s LEFT JOIN outbox AS o ON o.id = s.order_outbox_id
WHERE s.order_state IS NOT NULL GROUP BY s.order_state, o.state ORDER BY s.order_state, o.state
"""
ORDER_PROBLEMS = """
SELECT s.id, s.ocpp_id, s.evse, s.connector, s.order_state, s.start_charge_seq, o.state AS outbox_state,
    o.last_error
FROM sessions AS s LEFT JOIN outbox AS o ON o.id = s.order_outbox_id
WHERE s.order_state IN ('unconfigured', 'unmeasured') OR o.state = 'dead'
ORDER BY s.id DESC LIMIT ?
"""


def _order(row: aiosqlite.Row) -> OrderRecord:
    return OrderRecord(row["order_state"], row["start_charge_seq"], row["order_outbox_id"], row["confirm_result"])


async def get_order(tx: Tx, session_id: int) -> OrderRecord:
    row = await tx.fetchone(GET_ORDER, (session_id,))
    if row is None:
        raise StoreError(f"session {session_id} vanished")
    return _read(row, _order)


async def set_order(
    tx: Tx, session_id: int, order_state: str, start_charge_seq: str | None = None, outbox_id: int | None = None
) -> None:
    """Record the order decision of a session (seq and outbox row are kept when not given)."""
    await tx.execute(SET_ORDER, (session_id, order_state, start_charge_seq, outbox_id))


async def accept_order(tx: Tx, start_charge_seq: str, confirm_result: int | None) -> int:
    """The province accepted the order ``start_charge_seq``; returns the number of sessions updated (0 or 1)."""
    cursor = await tx.execute(ACCEPT_ORDER, (start_charge_seq, confirm_result))
    return cursor.rowcount


def _register_row(row: aiosqlite.Row) -> tuple[datetime, Decimal]:
    return _required(row["at"]), Decimal(row["energy_wh"])


async def session_registers(tx: Tx, session_id: int) -> list[tuple[datetime, Decimal]]:
    """The energy register readings stored for a session: (charger time, Wh), by time."""
    return [_read(row, _register_row) for row in await tx.fetchall(SESSION_REGISTERS, (session_id,))]


async def order_counts(tx: Tx) -> list[tuple[str, str | None, int]]:
    """(order state, outbox state of its row or None, count) for every decided order."""
    return [(r["order_state"], r["outbox_state"], r["n"]) for r in await tx.fetchall(ORDER_COUNTS)]


def _order_line(row: aiosqlite.Row) -> OrderLine:
    where = (row["ocpp_id"], row["evse"], row["connector"])
    return OrderLine(
        row["id"], where, row["order_state"], row["start_charge_seq"], row["outbox_state"], row["last_error"]
    )


async def order_problems(tx: Tx, limit: int = 20) -> list[OrderLine]:
    """The newest orders not pushed (unconfigured, unmeasured) or dead-lettered."""
    return [_read(row, _order_line) for row in await tx.fetchall(ORDER_PROBLEMS, (limit,))]


# ------------------------------------------------------------------------------------------------ alarms (0003)

ACTIVE_ALARMS = "SELECT * FROM active_alarms WHERE ocpp_id = ? ORDER BY raised_at, alarm_key"
ALL_ACTIVE_ALARMS = "SELECT * FROM active_alarms ORDER BY ocpp_id, raised_at, alarm_key"
RAISE_ALARM = """
INSERT INTO active_alarms (ocpp_id, alarm_key, evse, connector, alarm_code, alarm_type, alarm_level, note, raised_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (ocpp_id, alarm_key) DO NOTHING
"""
CLEAR_ALARM = "DELETE FROM active_alarms WHERE ocpp_id = ? AND alarm_key = ?"


def _alarm(row: aiosqlite.Row) -> ActiveAlarm:
    return ActiveAlarm(
        charger=row["ocpp_id"],
        key=row["alarm_key"],
        evse=row["evse"],
        connector=row["connector"],
        kind=AlarmKind(row["alarm_code"], row["alarm_type"], row["alarm_level"]),
        note=row["note"],
        raised_at=_required(row["raised_at"]),
    )


async def active_alarms(tx: Tx, charger: str) -> list[ActiveAlarm]:
    return [_read(row, _alarm) for row in await tx.fetchall(ACTIVE_ALARMS, (charger,))]


async def all_active_alarms(tx: Tx) -> list[ActiveAlarm]:
    return [_read(row, _alarm) for row in await tx.fetchall(ALL_ACTIVE_ALARMS)]


async def raise_alarm(tx: Tx, a: ActiveAlarm) -> None:
    """Remember ``a`` as active (a second raise of the same key keeps the first)."""
    params = (a.charger, a.key, a.evse, a.connector, a.kind.code, a.kind.type, a.kind.level, a.note, to_db(a.raised_at))
    await tx.execute(RAISE_ALARM, params)


async def clear_alarm(tx: Tx, charger: str, key: str) -> None:
    await tx.execute(CLEAR_ALARM, (charger, key))

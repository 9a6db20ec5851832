"""SQL for the sessions of chargers (migration 0002): sessions, their meter samples, 2.0.1 TransactionEvent keys.
Functions take the caller's ``Tx``; no business rules: the domain decides, this stores.

Decimals are stored as exact text, times as ``db.to_db`` text, flags as a JSON list (see ``rows``).
A row that cannot be read back raises StoreError.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from edge_bridge.domain.events import Reading
from edge_bridge.domain.sessions import Register, Registers, Session
from edge_bridge.errors import StoreError
from edge_bridge.store.db import Row, Tx, to_db
from edge_bridge.store.rows import dec, read_row, required_time, time, undec, untime

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
    "highest_register_at",
    "highest_register_wh",
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
OPEN_OF = "SELECT * FROM sessions WHERE ocpp_id = ? AND state = 'open' ORDER BY started_at, id"
LATEST_START = "SELECT MAX(started_at) FROM sessions WHERE ocpp_id = ? AND evse = ? AND connector = ?"


def _register(at: str | None, wh: str | None) -> Register | None:
    moment, value = untime(at), undec(wh)
    return None if moment is None or value is None else Register(moment, value)


def _registers(row: Row) -> Registers:
    return Registers(
        first=_register(row["first_register_at"], row["first_register_wh"]),
        first_nonzero=_register(row["first_nonzero_at"], row["first_nonzero_wh"]),
        last=_register(row["last_register_at"], row["last_register_wh"]),
        highest=_register(row["highest_register_at"], row["highest_register_wh"]),
    )


def _session(row: Row) -> Session:
    flags = json.loads(row["flags"])
    if not isinstance(flags, list):
        raise ValueError("flags is not a list")
    return Session(
        id=row["id"],
        charger=row["ocpp_id"],
        version=row["version"],
        evse=row["evse"],
        connector=row["connector"],
        started_at=required_time(row["started_at"]),
        started_received_at=required_time(row["started_received_at"]),
        last_received_at=required_time(row["last_received_at"]),
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
        *_register_params(regs.highest),
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


def insert_session(tx: Tx, session: Session) -> int:
    """Insert a new session; returns its id (AUTOINCREMENT: positive, never reused, monotonic)."""
    cursor = tx.execute(INSERT_SESSION, _session_params(session))
    if cursor.lastrowid is None:
        raise StoreError("session insert returned no id")
    return cursor.lastrowid


def set_transaction_ref(tx: Tx, session_id: int, ref: str) -> None:
    tx.execute(SET_REF, (session_id, ref))


def update_session(tx: Tx, session: Session) -> None:
    if session.id is None:
        raise StoreError("update of a session without an id")
    tx.execute(UPDATE_SESSION, (*_session_params(session), session.id))


def _one_session(tx: Tx, sql: str, params: Sequence[Any]) -> Session | None:
    row = tx.fetchone(sql, params)
    return None if row is None else read_row(row, _session)


def get_session(tx: Tx, session_id: int) -> Session | None:
    return _one_session(tx, BY_ID, (session_id,))


def session_by_ref(tx: Tx, charger: str, version: str, ref: str, orphan: bool = False) -> Session | None:
    return _one_session(tx, BY_REF, (charger, version, ref, int(orphan)))


def session_by_start_key(tx: Tx, key: str) -> Session | None:
    return _one_session(tx, BY_START_KEY, (key,))


def session_by_stop_key(tx: Tx, charger: str, key: str) -> Session | None:
    return _one_session(tx, BY_STOP_KEY, (charger, key))


def open_sessions_on(tx: Tx, charger: str, evse: int, connector: int) -> list[Session]:
    return [read_row(row, _session) for row in tx.fetchall(OPEN_ON, (charger, evse, connector))]


def open_sessions_of(tx: Tx, charger: str) -> list[Session]:
    return [read_row(row, _session) for row in tx.fetchall(OPEN_OF, (charger,))]


def open_sessions(tx: Tx) -> list[Session]:
    return [read_row(row, _session) for row in tx.fetchall(OPEN_ALL)]


def latest_start(tx: Tx, charger: str, evse: int, connector: int) -> datetime | None:
    """The latest ``started_at`` of any session on the connector."""
    row = tx.fetchone(LATEST_START, (charger, evse, connector))
    return None if row is None else read_row(row, lambda r: untime(r[0]))


# ------------------------------------------------------------------------------------------------ samples

# a sample is one moment of one connector in one context: a replayed frame adds nothing, but may attach it
INSERT_SAMPLE = """
INSERT INTO meter_samples (session_id, ocpp_id, evse, connector, at, received_at, energy_wh, power_w, soc,
    current_a, voltage_v, context, raw)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (ocpp_id, evse, connector, at, context)
DO UPDATE SET session_id = COALESCE(meter_samples.session_id, excluded.session_id)
"""


def insert_samples(
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
        tx.execute(INSERT_SAMPLE, params)


# ------------------------------------------------------------------------------------------------ 2.0.1 keys

RECORD_TX_EVENT = """
INSERT INTO tx_events (ocpp_id, transaction_ref, seq_no, event_type, received_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (ocpp_id, transaction_ref, seq_no) DO NOTHING
"""


def record_tx_event(tx: Tx, charger: str, ref: str, seq_no: int, event_type: str, received_at: datetime) -> bool:
    """Remember a 2.0.1 TransactionEvent key; False when it was already known (a repeat)."""
    cursor = tx.execute(RECORD_TX_EVENT, (charger, ref, seq_no, event_type, to_db(received_at)))
    return cursor.rowcount == 1

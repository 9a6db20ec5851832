"""SQL for what the chargers told us about themselves (migration 0002): chargers, connectors, status reports.
Functions take the caller's ``Tx``; no business rules: the domain decides, this stores.

Decimals are stored as exact text, times as ``db.to_db`` text, flags as a JSON list (see ``rows``).
A row that cannot be read back raises StoreError.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from edge_bridge.domain.events import ConnectorStatusReported
from edge_bridge.domain.status import ConnectorState
from edge_bridge.errors import StoreError
from edge_bridge.store.db import Row, Tx, to_db
from edge_bridge.store.rows import dec, read_row, time, undec, untime

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


def _charger(row: Row) -> ChargerRow:
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


def ensure_charger(tx: Tx, ocpp_id: str) -> ChargerRow:
    """The charger's row, created empty when it has none."""
    tx.execute(ENSURE_CHARGER, (ocpp_id,))
    charger = get_charger(tx, ocpp_id)
    if charger is None:
        raise StoreError(f"charger {ocpp_id!r} vanished")
    return charger


def get_charger(tx: Tx, ocpp_id: str) -> ChargerRow | None:
    row = tx.fetchone(GET_CHARGER, (ocpp_id,))
    return None if row is None else read_row(row, _charger)


def all_chargers(tx: Tx) -> list[ChargerRow]:
    return [read_row(row, _charger) for row in tx.fetchall(ALL_CHARGERS)]


def set_boot(tx: Tx, ocpp_id: str, vendor: str, model: str, serial: str, firmware: str, at: datetime) -> None:
    tx.execute(SET_BOOT, (ocpp_id, vendor, model, serial, firmware, to_db(at)))


def set_connected(tx: Tx, ocpp_id: str, connected: bool, ocpp_version: str | None = None) -> None:
    tx.execute(SET_CONNECTED, (ocpp_id, int(connected), ocpp_version))


def set_offline(tx: Tx, ocpp_id: str, offline: bool) -> None:
    tx.execute(SET_OFFLINE, (ocpp_id, int(offline)))


def seen(tx: Tx, ocpp_id: str, at: datetime) -> None:
    """Move ``last_seen`` forward to ``at`` (creating the row)."""
    tx.execute(SEEN, (ocpp_id, to_db(at)))


def reset_connected(tx: Tx) -> None:
    """Every charger disconnected (the process just started: no socket is open)."""
    tx.execute(RESET_CONNECTED)


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


def _connector(row: Row) -> ConnectorState:
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


def get_connector(tx: Tx, charger: str, evse: int, connector: int) -> ConnectorState | None:
    row = tx.fetchone(GET_CONNECTOR, (charger, evse, connector))
    return None if row is None else read_row(row, _connector)


def connectors_of(tx: Tx, charger: str) -> list[ConnectorState]:
    return [read_row(row, _connector) for row in tx.fetchall(CONNECTORS_OF, (charger,))]


def all_connectors(tx: Tx) -> list[ConnectorState]:
    return [read_row(row, _connector) for row in tx.fetchall(ALL_CONNECTORS)]


def put_connector(tx: Tx, c: ConnectorState) -> None:
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
    tx.execute(PUT_CONNECTOR, params)


def log_status(tx: Tx, report: ConnectorStatusReported, applied: bool) -> None:
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
    tx.execute(LOG_STATUS, params)

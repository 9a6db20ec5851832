"""Read-only SQL for the pull API (migration 0002 tables): live connector statuses, finished sessions of a connector
ending in a UTC interval, and what BootNotification taught about every charger. No business rules: the domain
decides what the rows mean (``domain/status.py``, ``domain/stats.py``, ``domain/stations.py``).

A row that cannot be read back raises StoreError.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from edge_bridge.domain.places import Where
from edge_bridge.domain.stations import BootInfo
from edge_bridge.domain.stats import FinishedSpan
from edge_bridge.store.db import Row, Tx, to_db
from edge_bridge.store.rows import read_row, required_time, untime

# ------------------------------------------------------------------------------------------------ statuses


@dataclass(frozen=True)
class LiveConnector:
    """A connector's stored provincial Status (None: never decided) and its charger's last_seen (None: never)."""

    provincial_status: int | None
    last_seen: datetime | None


LIVE_CONNECTORS = """
SELECT c.ocpp_id, c.evse, c.connector, c.provincial_status, h.last_seen
FROM connectors AS c LEFT JOIN chargers AS h ON h.ocpp_id = c.ocpp_id
"""


def _live(row: Row) -> tuple[Where, LiveConnector]:
    where = (str(row["ocpp_id"]), int(row["evse"]), int(row["connector"]))
    status = row["provincial_status"]
    return where, LiveConnector(None if status is None else int(status), untime(row["last_seen"]))


def live_connectors(tx: Tx) -> dict[Where, LiveConnector]:
    """Every stored connector by (ocpp_id, evse, connector); a connector without a row has never reported."""
    return dict(read_row(row, _live) for row in tx.fetchall(LIVE_CONNECTORS))


# ------------------------------------------------------------------------------------------------ sessions

# the sessions_connector index narrows to the connector; fixed-width UTC text compares as time
FINISHED_ENDING = """
SELECT started_at, COALESCE(ordered_ended_at, ended_at) AS ended_at,
    COALESCE(ordered_energy_wh, energy_wh) AS energy_wh
FROM sessions
WHERE ocpp_id = ?1 AND evse = ?2 AND connector = ?3 AND state = 'finished'
    AND COALESCE(ordered_ended_at, ended_at) >= ?4 AND COALESCE(ordered_ended_at, ended_at) < ?5
ORDER BY 2, id
"""


def _span(row: Row) -> FinishedSpan:
    energy = row["energy_wh"]
    return FinishedSpan(
        started_at=required_time(row["started_at"]),
        ended_at=required_time(row["ended_at"]),
        energy_wh=None if energy is None else Decimal(energy),
    )


def finished_sessions(tx: Tx, where: Where, start: datetime, end: datetime) -> list[FinishedSpan]:
    """The finished sessions of connector ``where`` whose end (charger time) is in ``[start, end)``."""
    params = (*where, to_db(start), to_db(end))
    return [read_row(row, _span) for row in tx.fetchall(FINISHED_ENDING, params)]


# ------------------------------------------------------------------------------------------------ boot info

BOOT_INFO = "SELECT ocpp_id, vendor, model, serial, firmware FROM chargers"


def _boot(row: Row) -> tuple[str, BootInfo]:
    return str(row["ocpp_id"]), BootInfo(row["vendor"], row["model"], row["serial"], row["firmware"])


def boot_infos(tx: Tx) -> dict[str, BootInfo]:
    """What every known charger said about itself in BootNotification, by ocpp_id (empty strings: nothing)."""
    return dict(read_row(row, _boot) for row in tx.fetchall(BOOT_INFO))


# ------------------------------------------------------------------------------------------------ station info

STATION_INFO_QUEUED = """
SELECT key, MAX(created_at) AS at FROM outbox WHERE interface = 'notification_stationInfo' GROUP BY key
"""


def station_info_changes(tx: Tx) -> dict[str, datetime]:
    """When each station's info was last queued for the province, by station_id (while the outbox keeps it)."""
    return {str(row["key"]): required_time(row["at"]) for row in tx.fetchall(STATION_INFO_QUEUED)}

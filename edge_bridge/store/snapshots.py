"""The last StationInfo the province accepted, per station (to push again only on change)."""

from __future__ import annotations

from datetime import datetime

from edge_bridge.store.db import Tx, to_db

GET = "SELECT payload FROM accepted_station_info WHERE station_id = ?"
SET = """
INSERT INTO accepted_station_info (station_id, payload, accepted_at) VALUES (?1, ?2, ?3)
ON CONFLICT (station_id) DO UPDATE SET payload = excluded.payload, accepted_at = excluded.accepted_at
"""


def accepted_station_info(tx: Tx, station_id: str) -> str | None:
    """The accepted payload (JSON text) of ``station_id``, or None."""
    row = tx.fetchone(GET, (station_id,))
    return None if row is None else str(row["payload"])


def set_accepted_station_info(tx: Tx, station_id: str, payload: str, now: datetime) -> None:
    """Record ``payload`` as accepted for ``station_id`` at ``now``."""
    tx.execute(SET, (station_id, payload, to_db(now)))

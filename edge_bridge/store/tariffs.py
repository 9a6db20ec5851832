"""SQL for the tariff history (migration 0010): the versions of each station's tariff, oldest first. No rules: the
domain (``domain/tariff_history.py``) says what a version means; ``usecases/tariffs.py`` decides when to write one."""

from __future__ import annotations

from datetime import datetime

from edge_bridge.domain.site import Tariff
from edge_bridge.domain.tariff_history import TariffHistory, tariff_from_text, tariff_text
from edge_bridge.store.db import Row, Tx, from_db, to_db
from edge_bridge.store.rows import read_row

HISTORY = "SELECT since, tariff FROM tariff_versions WHERE station_id = ? ORDER BY since"
RECORD = "INSERT OR REPLACE INTO tariff_versions (station_id, since, tariff) VALUES (?, ?, ?)"


def _version(row: Row) -> tuple[datetime, Tariff]:
    return from_db(str(row["since"])), tariff_from_text(str(row["tariff"]))


def history(tx: Tx, station_id: str) -> TariffHistory | None:
    """The station's tariff versions, or None before the first was recorded."""
    versions = tuple(read_row(row, _version) for row in tx.fetchall(HISTORY, (station_id,)))
    return TariffHistory(versions) if versions else None


def record(tx: Tx, station_id: str, since: datetime, tariff: Tariff) -> None:
    """``tariff`` is in force at ``station_id`` from ``since`` on."""
    tx.execute(RECORD, (station_id, to_db(since), tariff_text(tariff)))

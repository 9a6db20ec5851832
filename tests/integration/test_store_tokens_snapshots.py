"""Issued tokens (hashed, expiring) and accepted StationInfo snapshots on a real SQLite file."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge_bridge.store.db import Database, Tx
from edge_bridge.store.snapshots import accepted_station_info, set_accepted_station_info
from edge_bridge.store.tokens import purge_expired, save_token, token_hash, token_valid
from tests.conftest import Opener

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
TOKEN = "tok-3f9a1c77-plain-secret-value"


def disk_bytes(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(folder.iterdir()))


async def test_token_valid_until_it_expires(db: Database) -> None:
    await db.write(lambda tx: save_token(tx, TOKEN, T0, T0 + HOUR))

    def checks(tx: Tx) -> list[bool]:
        moments = [(TOKEN, T0), (TOKEN, T0 + HOUR - timedelta(microseconds=1)), (TOKEN, T0 + HOUR)]
        return [token_valid(tx, token, at) for token, at in [*moments, ("some-other-token", T0)]]

    assert await db.read(checks) == [True, True, False, False]


async def test_saving_a_token_again_extends_it(db: Database) -> None:
    def save_twice(tx: Tx) -> None:
        save_token(tx, TOKEN, T0, T0 + HOUR)
        save_token(tx, TOKEN, T0 + HOUR, T0 + 2 * HOUR)

    await db.write(save_twice)
    assert await db.read(lambda tx: token_valid(tx, TOKEN, T0 + HOUR))


async def test_purge_expired(db: Database) -> None:
    def save_two(tx: Tx) -> None:
        save_token(tx, "old", T0, T0 + HOUR)
        save_token(tx, "new", T0, T0 + 2 * HOUR)

    await db.write(save_two)
    assert await db.write(lambda tx: purge_expired(tx, T0 + HOUR)) == 1
    rows = await db.read(lambda tx: tx.fetchall("SELECT token_hash FROM issued_tokens"))
    assert [row[0] for row in rows] == [token_hash("new")]


async def test_only_the_hash_reaches_the_disk(opened: Opener, tmp_path: Path) -> None:
    database = await opened(tmp_path / "edge.db")
    await database.write(lambda tx: save_token(tx, TOKEN, T0, T0 + HOUR))
    written = disk_bytes(tmp_path)  # db, -wal, -shm while open
    await database.close()
    written += disk_bytes(tmp_path)  # db after the closing checkpoint
    assert token_hash(TOKEN) == hashlib.sha256(TOKEN.encode()).hexdigest()
    assert token_hash(TOKEN).encode() in written
    assert TOKEN.encode() not in written


async def test_station_info_absent_then_set_then_replaced(db: Database) -> None:
    def set_three(tx: Tx) -> str | None:
        before = accepted_station_info(tx, "S1")
        set_accepted_station_info(tx, "S1", '{"v": 1}', T0)
        set_accepted_station_info(tx, "S1", '{"v": 2}', T0 + HOUR)
        set_accepted_station_info(tx, "S2", '{"v": 9}', T0)
        return before

    assert await db.write(set_three) is None

    def read_back(tx: Tx) -> tuple[str | None, str | None, str]:
        row = tx.fetchone("SELECT accepted_at FROM accepted_station_info WHERE station_id = 'S1'")
        assert row is not None
        return accepted_station_info(tx, "S1"), accepted_station_info(tx, "S2"), row[0]

    assert await db.read(read_back) == ('{"v": 2}', '{"v": 9}', "2024-05-01T09:00:00.000000Z")


async def test_station_info_survives_reopen(opened: Opener, tmp_path: Path) -> None:
    first = await opened(tmp_path / "edge.db")
    await first.write(lambda tx: set_accepted_station_info(tx, "S1", '{"v": 1}', T0))
    await first.close()
    again = await opened(tmp_path / "edge.db")
    assert await again.read(lambda tx: accepted_station_info(tx, "S1")) == '{"v": 1}'

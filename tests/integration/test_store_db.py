"""open_database, migrations and transactions against real SQLite files."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from edge_bridge.errors import StoreError
from edge_bridge.store import db as store_db
from edge_bridge.store.db import Database
from tests.conftest import Opener


@pytest.fixture
async def db(opened: Opener, tmp_path: Path) -> Database:
    return await opened(tmp_path / "nested" / "dir" / "edge.db")


async def scalar(database: Database, sql: str) -> object:
    async with database.read() as tx:
        row = await tx.fetchone(sql)
    assert row is not None
    return row[0]


def sync_scalar(path: Path, sql: str) -> Any:
    """One value read through a second, plain sqlite3 connection (sees committed data only)."""
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchone()[0]


def set_user_version(path: Path, version: int) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {version}")


async def test_creates_parent_dirs_and_keeps_path(db: Database, tmp_path: Path) -> None:
    assert db.path == tmp_path / "nested" / "dir" / "edge.db"
    assert db.path.is_file()


@pytest.mark.parametrize(
    ("pragma", "expected"),
    [("journal_mode", "wal"), ("synchronous", 2), ("busy_timeout", 5000), ("foreign_keys", 1)],
)
async def test_pragmas_are_set(db: Database, pragma: str, expected: object) -> None:
    assert await scalar(db, f"PRAGMA {pragma}") == expected


async def test_migrations_applied(db: Database) -> None:
    assert await scalar(db, "PRAGMA user_version") == len(store_db.migrations()) >= 1
    async with db.read() as tx:
        rows = await tx.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    assert {"outbox", "issued_tokens", "accepted_station_info"} <= {row["name"] for row in rows}


async def test_reopen_is_a_no_op_and_keeps_data(opened: Opener, tmp_path: Path) -> None:
    path = tmp_path / "edge.db"
    first = await opened(path)
    async with first.transaction() as tx:
        await tx.execute("INSERT INTO accepted_station_info VALUES ('s1', '{}', 'x')")
    await first.close()
    second = await opened(path)  # re-running 0001 would fail: its tables exist
    assert await scalar(second, "SELECT count(*) FROM accepted_station_info") == 1
    assert await scalar(second, "PRAGMA user_version") == len(store_db.migrations())


async def test_newer_schema_refused_naming_both_versions(opened: Opener, tmp_path: Path) -> None:
    path = tmp_path / "edge.db"
    await (await opened(path)).close()
    set_user_version(path, 7)
    with pytest.raises(StoreError, match=rf"version 7 .*\({len(store_db.migrations())}\)"):
        await opened(path)


async def test_failed_migration_rolls_back_with_its_version(
    opened: Opener, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "edge.db"
    await (await opened(path)).close()
    newest = len(store_db.migrations())
    steps = [*store_db.migrations(), (newest + 1, "CREATE TABLE half (x);\nINSERT INTO nowhere VALUES (1);")]
    monkeypatch.setattr(store_db, "migrations", lambda: steps)
    with pytest.raises(StoreError, match=f"migration {newest + 1:04d}"):
        await opened(path)
    assert sync_scalar(path, "PRAGMA user_version") == newest
    assert sync_scalar(path, "SELECT count(*) FROM sqlite_master WHERE name = 'half'") == 0


async def test_garbage_file_refused(opened: Opener, tmp_path: Path) -> None:
    path = tmp_path / "edge.db"
    path.write_bytes(b"this is not a database, " * 100)
    with pytest.raises(StoreError, match=f"{path}.*not a database"):
        await opened(path)


async def test_directory_in_the_way_refused(opened: Opener, tmp_path: Path) -> None:
    path = tmp_path / "edge.db"
    path.mkdir()
    with pytest.raises(StoreError, match=str(path)):
        await opened(path)


async def test_file_in_the_way_of_parent_refused(opened: Opener, tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(StoreError, match="blocker"):
        await opened(tmp_path / "blocker" / "edge.db")


async def test_commit_runs_callbacks_after_commit(db: Database) -> None:
    seen: list[int] = []

    def callback() -> None:
        seen.append(sync_scalar(db.path, "SELECT count(*) FROM accepted_station_info"))

    async with db.transaction() as tx:
        await tx.execute("INSERT INTO accepted_station_info VALUES ('s1', '{}', 'x')")
        tx.on_commit(callback)
        assert seen == []
    assert seen == [1]


async def test_exception_rolls_back_and_skips_callbacks(db: Database) -> None:
    called: list[str] = []
    with pytest.raises(RuntimeError, match="boom"):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO accepted_station_info VALUES ('s1', '{}', 'x')")
            tx.on_commit(lambda: called.append("yes"))
            raise RuntimeError("boom")
    assert called == []
    assert await scalar(db, "SELECT count(*) FROM accepted_station_info") == 0
    async with db.transaction() as tx:  # the connection is usable again
        await tx.execute("INSERT INTO accepted_station_info VALUES ('s2', '{}', 'x')")
    assert await scalar(db, "SELECT count(*) FROM accepted_station_info") == 1


async def test_sql_errors_become_store_errors_and_roll_back(db: Database) -> None:
    with pytest.raises(StoreError, match="no such table"):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO accepted_station_info VALUES ('s1', '{}', 'x')")
            await tx.fetchall("SELECT * FROM nowhere")
    assert await scalar(db, "SELECT count(*) FROM accepted_station_info") == 0


async def test_check_constraint_enforced(db: Database) -> None:
    with pytest.raises(StoreError, match="CHECK"):
        async with db.transaction() as tx:
            await tx.execute(
                "INSERT INTO outbox (interface, key, payload, state, created_at) VALUES ('i', 'k', '{}', 'x', 't')"
            )


async def test_on_commit_refused_in_read(db: Database) -> None:
    async with db.read() as tx:
        with pytest.raises(StoreError, match="on_commit"):
            tx.on_commit(lambda: None)


async def test_concurrent_writers_are_serialized(db: Database) -> None:
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO accepted_station_info VALUES ('n', '0', 'x')")

    async def increment() -> None:
        async with db.transaction() as tx:
            row = await tx.fetchone("SELECT payload FROM accepted_station_info WHERE station_id = 'n'")
            assert row is not None
            await asyncio.sleep(0.001)
            await tx.execute("UPDATE accepted_station_info SET payload = ? WHERE station_id = 'n'", (int(row[0]) + 1,))

    await asyncio.gather(*(increment() for _ in range(20)))
    assert await scalar(db, "SELECT payload FROM accepted_station_info WHERE station_id = 'n'") == "20"


async def test_cancelled_transaction_rolls_back(db: Database) -> None:
    entered = asyncio.Event()

    async def writer() -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO accepted_station_info VALUES ('s1', '{}', 'x')")
            entered.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(writer())
    waiting = asyncio.create_task(entered.wait())
    done, _ = await asyncio.wait({waiting, task}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    if waiting not in done:
        waiting.cancel()
        task.cancel()
        raise AssertionError(f"the writer did not enter its transaction: {task}")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await scalar(db, "SELECT count(*) FROM accepted_station_info") == 0


async def test_close_is_idempotent(opened: Opener, tmp_path: Path) -> None:
    database = await opened(tmp_path / "edge.db")
    async with database.transaction() as tx:
        await tx.execute("INSERT INTO accepted_station_info VALUES ('s1', '{}', 'x')")
    await database.close()
    await database.close()  # a second close neither raises nor hangs
    # closed for good: using it fails at once (aiosqlite's ValueError, not a StoreError: db.py does not wrap it)
    async with asyncio.timeout(5):
        with pytest.raises(ValueError, match="no active connection"):
            async with database.read() as tx:
                await tx.fetchone("SELECT 1")
        with pytest.raises(ValueError, match="no active connection"):
            async with database.transaction() as tx:
                await tx.execute("INSERT INTO accepted_station_info VALUES ('s2', '{}', 'x')")
    assert sync_scalar(database.path, "SELECT group_concat(station_id) FROM accepted_station_info") == "s1"

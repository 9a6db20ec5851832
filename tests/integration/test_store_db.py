"""open_database, migrations and transactions against real SQLite files."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from edge_bridge.errors import StoreError
from edge_bridge.store import db as store_db
from edge_bridge.store.db import Database, Tx
from tests.conftest import Opener


@pytest.fixture
async def db(opened: Opener, tmp_path: Path) -> Database:
    return await opened(tmp_path / "nested" / "dir" / "edge.db")


async def scalar(database: Database, sql: str) -> object:
    row = await database.read(lambda tx: tx.fetchone(sql))
    assert row is not None
    return row[0]


INSERT = "INSERT INTO accepted_station_info VALUES (?, '{}', 'x')"


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
    [("journal_mode", "wal"), ("synchronous", 2), ("busy_timeout", 0), ("foreign_keys", 1)],
)
async def test_pragmas_are_set(db: Database, pragma: str, expected: object) -> None:
    assert await scalar(db, f"PRAGMA {pragma}") == expected


async def test_migrations_applied(db: Database) -> None:
    assert await scalar(db, "PRAGMA user_version") == len(store_db.migrations()) >= 1
    rows = await db.read(lambda tx: tx.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'"))
    assert {"outbox", "issued_tokens", "accepted_station_info"} <= {row["name"] for row in rows}


async def test_reopen_is_a_no_op_and_keeps_data(opened: Opener, tmp_path: Path) -> None:
    path = tmp_path / "edge.db"
    first = await opened(path)
    await first.write(lambda tx: tx.execute(INSERT, ("s1",)))
    await first.close()
    second = await opened(path)  # re-running 0001 would fail: its tables exist
    assert await scalar(second, "SELECT count(*) FROM accepted_station_info") == 1
    assert await scalar(second, "PRAGMA user_version") == len(store_db.migrations())


async def test_newer_schema_refused_naming_both_versions(opened: Opener, tmp_path: Path) -> None:
    path = tmp_path / "edge.db"
    await (await opened(path)).close()
    newer = len(store_db.migrations()) + 1
    set_user_version(path, newer)
    with pytest.raises(StoreError, match=rf"version {newer} .*\({newer - 1}\)"):
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

    def work(tx: Tx) -> list[int]:
        tx.execute(INSERT, ("s1",))
        tx.on_commit(callback)
        return list(seen)

    assert await db.write(work) == []  # not called inside the transaction
    assert seen == [1]  # called after COMMIT: another connection sees the row
    assert db.commits == 1


def insert_then(error: BaseException, callbacks: list[str]) -> Callable[[Tx], None]:
    def work(tx: Tx) -> None:
        tx.execute(INSERT, ("s1",))
        tx.on_commit(lambda: callbacks.append("yes"))
        raise error

    return work


async def test_exception_rolls_back_and_skips_callbacks(db: Database) -> None:
    called: list[str] = []
    with pytest.raises(RuntimeError, match="boom"):
        await db.write(insert_then(RuntimeError("boom"), called))
    assert called == [] and db.commits == 0
    assert await scalar(db, "SELECT count(*) FROM accepted_station_info") == 0
    await db.write(lambda tx: tx.execute(INSERT, ("s2",)))  # the connection is usable again
    assert await scalar(db, "SELECT count(*) FROM accepted_station_info") == 1


async def test_sql_errors_become_store_errors_and_roll_back(db: Database) -> None:
    def work(tx: Tx) -> None:
        tx.execute(INSERT, ("s1",))
        tx.fetchall("SELECT * FROM nowhere")

    with pytest.raises(StoreError, match="no such table"):
        await db.write(work)
    assert await scalar(db, "SELECT count(*) FROM accepted_station_info") == 0


async def test_check_constraint_enforced(db: Database) -> None:
    sql = "INSERT INTO outbox (interface, key, payload, state, created_at) VALUES ('i', 'k', '{}', 'x', 't')"
    with pytest.raises(StoreError, match="CHECK"):
        await db.write(lambda tx: tx.execute(sql))


async def test_on_commit_refused_in_read(db: Database) -> None:
    with pytest.raises(StoreError, match="on_commit"):
        await db.read(lambda tx: tx.on_commit(lambda: None))


async def test_a_read_sees_one_snapshot_and_writes_nothing(db: Database) -> None:
    def read_twice(tx: Tx) -> tuple[object, object]:
        first = tx.fetchone("SELECT count(*) FROM accepted_station_info")
        sync_insert(db.path, "other")  # a second connection commits in between
        second = tx.fetchone("SELECT count(*) FROM accepted_station_info")
        assert first is not None and second is not None
        return first[0], second[0]

    assert await db.read(read_twice) == (0, 0)
    assert await scalar(db, "SELECT count(*) FROM accepted_station_info") == 1


def sync_insert(path: Path, station: str) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(INSERT, (station,))
        conn.commit()


async def test_a_savepoint_undoes_only_itself_and_its_callbacks(db: Database) -> None:
    called: list[str] = []

    def work(tx: Tx) -> None:
        tx.execute(INSERT, ("kept",))
        tx.on_commit(lambda: called.append("kept"))
        with pytest.raises(RuntimeError), tx.savepoint():
            tx.execute(INSERT, ("undone",))
            tx.on_commit(lambda: called.append("undone"))
            raise RuntimeError("this unit fails")
        with tx.savepoint():
            tx.execute(INSERT, ("also kept",))

    await db.write(work)
    rows = await db.read(lambda tx: tx.fetchall("SELECT station_id FROM accepted_station_info ORDER BY 1"))
    assert [r[0] for r in rows] == ["also kept", "kept"]
    assert called == ["kept"]


async def test_units_never_interleave(db: Database) -> None:
    await db.write(lambda tx: tx.execute("INSERT INTO accepted_station_info VALUES ('n', '0', 'x')"))

    def increment(tx: Tx) -> None:
        row = tx.fetchone("SELECT payload FROM accepted_station_info WHERE station_id = 'n'")
        assert row is not None
        time.sleep(0.001)
        tx.execute("UPDATE accepted_station_info SET payload = ? WHERE station_id = 'n'", (int(row[0]) + 1,))

    await asyncio.gather(*(db.write(increment) for _ in range(20)))
    assert await scalar(db, "SELECT payload FROM accepted_station_info WHERE station_id = 'n'") == "20"


async def test_a_caller_cancelled_during_its_commit_leaves_its_unit_whole(db: Database) -> None:
    ran: list[str] = []

    def two_rows(tx: Tx) -> None:
        tx.execute(INSERT, ("s1",))
        tx.execute(INSERT, ("s2",))
        tx.on_commit(lambda: ran.append("committed"))

    task = asyncio.create_task(db.write(two_rows))
    await asyncio.sleep(0)  # the unit ran; its COMMIT is on the store's thread
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # the COMMIT completed (callbacks included) before the next unit could start
    assert await scalar(db, "SELECT count(*) FROM accepted_station_info") == 2
    assert ran == ["committed"]


def hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another process's connection (the CLI, say) in the middle of a write."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


async def test_a_write_waits_for_another_process_without_blocking_the_loop(db: Database) -> None:
    other = hold_write_lock(db.path)
    write = asyncio.create_task(db.write(lambda tx: tx.execute(INSERT, ("s1",))))
    ticks = 0
    for _ in range(10):  # the loop keeps running while the write waits for the lock
        await asyncio.sleep(0.01)
        ticks += 1
    assert not write.done() and ticks == 10
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(write, 5)
    assert await scalar(db, "SELECT count(*) FROM accepted_station_info") == 1


async def test_a_write_gives_up_on_a_lock_held_too_long(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_db, "BUSY_TIMEOUT_S", 0.05)
    other = hold_write_lock(db.path)
    try:
        with pytest.raises(StoreError, match="BEGIN IMMEDIATE failed: database is locked"):
            await db.write(lambda tx: tx.execute(INSERT, ("s1",)))
    finally:
        other.close()
    await db.write(lambda tx: tx.execute(INSERT, ("s2",)))  # the lock is free again: the store works on


async def test_close_is_idempotent_and_final(opened: Opener, tmp_path: Path) -> None:
    database = await opened(tmp_path / "edge.db")
    await database.write(lambda tx: tx.execute(INSERT, ("s1",)))
    await database.close()
    await database.close()  # a second close neither raises nor hangs
    with pytest.raises(StoreError, match="closed"):
        await database.read(lambda tx: tx.fetchone("SELECT 1"))
    with pytest.raises(StoreError, match="closed"):
        await database.write(lambda tx: tx.execute(INSERT, ("s2",)))
    assert sync_scalar(database.path, "SELECT group_concat(station_id) FROM accepted_station_info") == "s1"


async def test_migration_7_teaches_open_sessions_their_highest_sample(
    opened: Opener, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store of version 6 with an open and a finished session: after the upgrade the open one knows the highest
    register it sampled (a later meterStop of 0 is not believed); the finished one is left as it was ordered."""
    path = tmp_path / "edge.db"
    monkeypatch.setattr(store_db, "migrations", lambda: ALL_MIGRATIONS[:6])
    await (await opened(path)).close()
    with closing(sqlite3.connect(path)) as conn, conn:
        for session_id, state in ((1, "open"), (2, "finished")):
            conn.execute(
                "INSERT INTO sessions (id, ocpp_id, evse, connector, version, started_at, started_received_at,"
                " last_received_at, state) VALUES (?, 'CP', 1, 1, '1.6', 'a', 'a', 'a', ?)",
                (session_id, state),
            )
        samples = [(1, "2024-05-01T08:01", "900.5"), (1, "2024-05-01T08:02", "1617"), (1, "2024-05-01T08:03", "0"),
                   (2, "2024-05-01T09:01", "5000")]  # fmt: skip
        conn.executemany(
            "INSERT INTO meter_samples (session_id, ocpp_id, evse, connector, at, received_at, energy_wh)"
            " VALUES (?, 'CP', 1, 1, ?, ?, ?)",
            [(s, at, at, wh) for s, at, wh in samples],
        )
    monkeypatch.setattr(store_db, "migrations", lambda: ALL_MIGRATIONS)
    await (await opened(path)).close()
    highest = "SELECT highest_register_at || ' ' || highest_register_wh FROM sessions WHERE id = ?"
    assert sync_scalar(path, highest.replace("?", "1")) == "2024-05-01T08:02 1617"
    assert sync_scalar(path, highest.replace("?", "2")) is None


ALL_MIGRATIONS = store_db.migrations()

"""The one SQLite connection: PRAGMAs, numbered migrations, serialized transactions, UTC time text.

One aiosqlite connection serves the whole process. Every use goes through ``Database.transaction()`` (writes,
``BEGIN IMMEDIATE``) or ``Database.read()`` (reads); both hold one asyncio.Lock, so they never nest: inside a
transaction, pass its ``Tx`` on instead of opening another.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from edge_bridge.errors import StoreError

Params = Iterable[Any]

PRAGMAS = ("PRAGMA synchronous = FULL", "PRAGMA busy_timeout = 5000", "PRAGMA foreign_keys = ON")
MIGRATION_NAME = re.compile(r"^(\d{4})_\w+\.sql$")
TIME_TEXT_LENGTH = len("2024-01-01T00:00:00.000000Z")


def to_db(moment: datetime) -> str:
    """Aware datetime → ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC (fixed width, sorts as text)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: the store keeps aware UTC times")
    plain = moment.astimezone(UTC).replace(tzinfo=None)
    return plain.isoformat(timespec="microseconds") + "Z"


def from_db(text: str) -> datetime:
    """The inverse of ``to_db``: aware UTC. Raises ValueError on any other shape."""
    if len(text) != TIME_TEXT_LENGTH or not text.endswith("Z"):
        raise ValueError(f"not a stored UTC time: {text!r}")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


class Tx:
    """One unit of work on the connection. ``on_commit`` callbacks run only after a successful COMMIT."""

    def __init__(self, conn: aiosqlite.Connection, writable: bool) -> None:
        self.conn = conn
        self._writable = writable
        self._callbacks: list[Callable[[], None]] = []

    async def execute(self, sql: str, params: Params = ()) -> aiosqlite.Cursor:
        """Run one statement; sqlite errors become StoreError."""
        try:
            return await self.conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"query failed: {exc}") from exc

    async def fetchall(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        """All rows of one query."""
        cursor = await self.execute(sql, params)
        async with cursor:
            return list(await cursor.fetchall())

    async def fetchone(self, sql: str, params: Params = ()) -> aiosqlite.Row | None:
        """The first row of one query, or None."""
        cursor = await self.execute(sql, params)
        async with cursor:
            row: aiosqlite.Row | None = await cursor.fetchone()
            return row

    def on_commit(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` once this transaction has committed (never after a rollback)."""
        if not self._writable:
            raise StoreError("on_commit needs a transaction(), not a read()")
        self._callbacks.append(fn)

    def _run_callbacks(self) -> None:
        for fn in self._callbacks:
            fn()


class Database:
    """The open store. Build it with ``open_database``."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.path = path
        self._conn = conn
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; rolls back and re-raises on any exception."""
        async with self._lock:
            tx = Tx(self._conn, writable=True)
            try:
                await _run(self._conn, "BEGIN IMMEDIATE")
                yield tx
                await _run(self._conn, "COMMIT")
            except BaseException:
                await _rollback(self._conn)
                raise
        tx._run_callbacks()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        """A ``Tx`` for read-only queries."""
        async with self._lock:
            yield Tx(self._conn, writable=False)

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        async with self._lock:
            await self._conn.close()


async def open_database(path: Path) -> Database:
    """Open (creating if needed) the store at ``path``, set PRAGMAs and apply pending migrations."""
    conn = await _connect(path)
    try:
        await _configure(conn)
        await _migrate(conn, migrations())
    except sqlite3.Error as exc:
        await conn.close()
        raise StoreError(f"cannot open database {path}: {exc}") from exc
    except BaseException:
        await conn.close()
        raise
    return Database(conn, path)


async def _connect(path: Path) -> aiosqlite.Connection:
    try:
        await asyncio.to_thread(_probe, path)
        conn = await aiosqlite.connect(path, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from exc
    conn.row_factory = aiosqlite.Row
    return conn


def _probe(path: Path) -> None:
    """Fail here, not in aiosqlite.connect: a failed connect leaves its worker thread racing the loop's close."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sqlite3.connect(path).close()


async def _configure(conn: aiosqlite.Connection) -> None:
    mode = await _scalar(conn, "PRAGMA journal_mode = WAL")
    if mode != "wal":
        raise StoreError(f"journal_mode is {mode!r}, WAL is required")
    for pragma in PRAGMAS:
        await _run(conn, pragma)


def migrations() -> list[tuple[int, str]]:
    """The packaged migrations as (version, SQL), checked to number 1, 2, 3, … without gaps."""
    folder = resources.files("edge_bridge.store").joinpath("migrations")
    found = sorted(
        (int(match.group(1)), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if (match := MIGRATION_NAME.match(entry.name))
    )
    if [version for version, _ in found] != list(range(1, len(found) + 1)):
        raise StoreError(f"migrations are not numbered 1..{len(found)}: {[v for v, _ in found]}")
    return found


async def _migrate(conn: aiosqlite.Connection, steps: list[tuple[int, str]]) -> None:
    current = int(await _scalar(conn, "PRAGMA user_version"))
    newest = steps[-1][0] if steps else 0
    if current > newest:
        raise StoreError(f"database schema version {current} is newer than this edge-bridge ({newest})")
    for version, sql in steps:
        if version > current:
            await _apply(conn, version, sql)


async def _apply(conn: aiosqlite.Connection, version: int, sql: str) -> None:
    """One migration and its user_version bump in one transaction."""
    script = f"BEGIN IMMEDIATE;\n{sql}\n;PRAGMA user_version = {version};\nCOMMIT;"
    try:
        await conn.executescript(script)
    except sqlite3.Error as exc:
        await _rollback(conn)
        raise StoreError(f"migration {version:04d} failed: {exc}") from exc


async def _scalar(conn: aiosqlite.Connection, sql: str) -> Any:
    async with conn.execute(sql) as cursor:
        row = await cursor.fetchone()
    return None if row is None else row[0]


async def _run(conn: aiosqlite.Connection, sql: str) -> None:
    try:
        await conn.execute(sql)
    except sqlite3.Error as exc:
        raise StoreError(f"{sql} failed: {exc}") from exc


async def _rollback(conn: aiosqlite.Connection) -> None:
    """Unconditional: the worker thread runs statements in order, so this also undoes a BEGIN still queued."""
    with suppress(sqlite3.Error):
        await conn.execute("ROLLBACK")

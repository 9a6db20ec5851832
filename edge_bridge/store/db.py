"""The one SQLite connection: PRAGMAs, numbered migrations, transactions, UTC time text.

Every use of the store is a plain function of a ``Tx``: ``await db.write(work)`` runs ``work(tx)`` between
``BEGIN IMMEDIATE`` and ``COMMIT``, ``await db.read(work)`` in a read transaction (one consistent snapshot). Units
run one at a time in the order they were asked for, so they never interleave and never nest: inside ``work``, pass
its ``Tx`` on instead of opening another.

Where the work runs: the statements of a unit run on the event loop (each takes microseconds: the daemon is the
only writer, and its hot state is in memory), and only the COMMIT, the fsync that takes the time, runs on the
store's own thread, so the loop keeps serving chargers while the disk syncs. One hop per transaction, however many
statements (a batch of many messages is one transaction: ``usecases/writer.py``). Running the statements on a
thread instead costs a hand-over of the interpreter lock at every statement and every row fetched (the sqlite3
module releases it around each step); that cost a fifth of the daemon's CPU under load. aiosqlite does exactly that,
and hops to its thread once per statement besides, so it is not used.

Another process (the ``edge-bridge`` CLI) may hold the write lock for a moment: ``BEGIN IMMEDIATE`` is retried
without blocking the loop for up to ``BUSY_TIMEOUT_S``.

A ``Tx`` and the rows it returns exist only inside ``work``; ``on_commit`` callbacks run on the event loop after
COMMIT, never after a rollback. When the awaiting task is cancelled during its COMMIT, the COMMIT still completes
(with its callbacks), and the next unit starts only after it.

A full disk is classified here and nowhere else: SQLite's SQLITE_FULL, or an I/O error while the database's
filesystem has no space left, raises ``StoreFullError`` (a ``StoreError``), and the transaction is rolled back whole.
``Database.full`` holds from the first write that failed so until a COMMIT succeeds with at least
``FULL_BELOW_BYTES`` free again; the condition is logged once when it starts (``disk_full``) and once when it ends
(``disk_full_cleared``), never per write.

Opening never writes to a file that is not a usable edge-bridge store: ``db_file.vet`` refuses a damaged, truncated,
foreign or newer file (``DatabaseUnusableError``) before any PRAGMA or migration touches it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from edge_bridge.errors import StoreError, StoreFullError
from edge_bridge.store import db_file

log = logging.getLogger(__name__)

Params = Iterable[Any]
Row = sqlite3.Row
T = TypeVar("T")

PRAGMAS = ("PRAGMA synchronous = FULL", "PRAGMA busy_timeout = 0", "PRAGMA foreign_keys = ON")
BUSY_TIMEOUT_S = 5.0  # how long a write waits for another process's write lock
BUSY_RETRY_S = 0.005
MIGRATION_NAME = re.compile(r"^(\d{4})_\w+\.sql$")
TIME_TEXT_LENGTH = len("2024-01-01T00:00:00.000000Z")
TIME_TEXT_CACHE = 8192
FULL_BELOW_BYTES = 64 * 1024  # free space on the database's filesystem under which an I/O error means "disk full"


@functools.lru_cache(maxsize=TIME_TEXT_CACHE)
def to_db(moment: datetime) -> str:
    """Aware datetime → ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC (fixed width, sorts as text). Cached: a session's
    times are written again with every update."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: the store keeps aware UTC times")
    plain = moment.astimezone(UTC).replace(tzinfo=None)
    return plain.isoformat(timespec="microseconds") + "Z"


@functools.lru_cache(maxsize=TIME_TEXT_CACHE)
def from_db(text: str) -> datetime:
    """The inverse of ``to_db``: aware UTC. Raises ValueError on any other shape. Cached: a row's times are often
    equal (a new outbox row is created and due at the same moment)."""
    if len(text) != TIME_TEXT_LENGTH or not text.endswith("Z"):
        raise ValueError(f"not a stored UTC time: {text!r}")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


class Tx:
    """One unit of work on the connection, used on the event loop inside ``Database`` units. sqlite errors become
    StoreError."""

    def __init__(self, conn: sqlite3.Connection, writable: bool) -> None:
        self._conn = conn
        self._writable = writable
        self.callbacks: list[Callable[[], None]] = []
        self._undo: list[Callable[[], None]] = []
        self._savepoints = 0
        self.full: StoreFullError | None = None  # a statement found the disk full (even if a savepoint caught it)

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        """Run one statement."""
        try:
            return self._conn.execute(sql, tuple(params))
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        """Run one statement for each parameter row."""
        try:
            return self._conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: sqlite3.Error) -> StoreError:
        error = store_error("query failed", exc, self._conn)
        if isinstance(error, StoreFullError):
            self.full = error
        return error

    def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """All rows of one query."""
        return list(self.execute(sql, params).fetchall())

    def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """The first row of one query, or None."""
        row: Row | None = self.execute(sql, params).fetchone()
        return row

    def on_commit(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` on the event loop once this transaction has committed (never after a rollback)."""
        if not self._writable:
            raise StoreError("on_commit needs a write(), not a read()")
        self.callbacks.append(fn)

    def on_rollback(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` if what was done so far is undone (its savepoint or the transaction rolls back): the way
        in-memory state that mirrors the store is kept equal to what is committed."""
        self._undo.append(fn)

    def rolled_back(self, keep: int = 0) -> None:
        """Undo the in-memory changes registered after the first ``keep``, newest first."""
        while len(self._undo) > keep:
            self._undo.pop()()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested unit: an exception inside undoes its statements, its ``on_commit`` callbacks and its
        in-memory changes (``on_rollback``), and is re-raised; the rest of the transaction stands."""
        self._savepoints += 1
        name, kept, undo = f"sp{self._savepoints}", len(self.callbacks), len(self._undo)
        self.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            with suppress(StoreError):
                self.execute(f"ROLLBACK TO {name}")
                self.execute(f"RELEASE {name}")
            del self.callbacks[kept:]
            self.rolled_back(undo)
            raise
        else:
            self.execute(f"RELEASE {name}")
        finally:
            self._savepoints -= 1


class Database:
    """The open store. Build it with ``open_database``; ``commits`` counts the write units committed; ``full``
    holds while the last write found the disk full (``full_since``: when that began, loop time)."""

    def __init__(self, thread: ThreadPoolExecutor, conn: sqlite3.Connection, path: Path) -> None:
        self.path = path
        self.commits = 0
        self.full_since: float | None = None
        self._thread = thread  # runs the COMMITs (and opening and closing)
        self._conn = conn
        self._lock = asyncio.Lock()  # one unit at a time; held by a write until its COMMIT ended
        self._closed = False

    async def write(self, work: Callable[[Tx], T]) -> T:
        """``work(tx)`` between ``BEGIN IMMEDIATE`` and ``COMMIT``; rolled back and re-raised on any exception.
        Its ``on_commit`` callbacks run before this returns."""
        await self._lock.acquire()
        try:
            self._check_open()
            await self._begin()
            tx = Tx(self._conn, writable=True)
            try:
                result = work(tx)
            except BaseException as exc:
                self._undo(tx)
                self._note_full(exc if isinstance(exc, StoreFullError) else tx.full)
                raise
        except BaseException:
            self._lock.release()
            raise
        committing = asyncio.get_running_loop().run_in_executor(self._thread, self._commit_now)
        committing.add_done_callback(lambda done: self._committed(done, tx))
        await asyncio.shield(committing)  # a cancelled caller leaves the COMMIT (and the lock) to finish
        return result

    async def read(self, work: Callable[[Tx], T]) -> T:
        """``work(tx)`` in a read transaction (one snapshot)."""
        async with self._lock:
            self._check_open()
            _run(self._conn, "BEGIN")
            try:
                return work(Tx(self._conn, writable=False))
            finally:
                _rollback(self._conn)

    async def close(self) -> None:
        """Close the connection and end the thread (idempotent); waits for a COMMIT in progress."""
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            await asyncio.get_running_loop().run_in_executor(self._thread, self._conn.close)
        self._thread.shutdown(wait=True)

    @property
    def full(self) -> bool:
        """The last write failed because the database's filesystem is full."""
        return self.full_since is not None

    def _note_full(self, exc: StoreFullError | None) -> None:
        """Log the start of a full disk once; later failures while it lasts are the callers' to count."""
        if exc is None or self.full:
            return
        self.full_since = asyncio.get_running_loop().time()
        fields = {"path": str(self.path), "free_bytes": free_bytes(self.path), "error": str(exc)}
        log.error("disk_full", extra=fields)

    def _note_committed(self, tx: Tx) -> None:
        """A COMMIT succeeded: the disk is no longer full once there is room again (a small COMMIT may fit in what a
        failed larger one allocated: that alone is not space returning)."""
        if self.full_since is None or tx.full is not None or (free_bytes(self.path) or 0) < FULL_BELOW_BYTES:
            return
        lasted = asyncio.get_running_loop().time() - self.full_since
        self.full_since = None
        log.warning("disk_full_cleared", extra={"path": str(self.path), "lasted_s": round(lasted, 1)})

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the database is closed")

    async def _begin(self) -> None:
        """``BEGIN IMMEDIATE``, waiting (without blocking the loop) while another process holds the write lock."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + BUSY_TIMEOUT_S
        while True:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or loop.time() >= give_up:
                    error = store_error("BEGIN IMMEDIATE failed", exc, self._conn)
                    self._note_full(error if isinstance(error, StoreFullError) else None)
                    raise error from exc
            await asyncio.sleep(BUSY_RETRY_S)

    def _commit_now(self) -> None:
        """On the store's thread: COMMIT, or roll back when it fails."""
        try:
            _run(self._conn, "COMMIT")
        except BaseException:
            _rollback(self._conn)
            raise

    def _committed(self, done: asyncio.Future[None], tx: Tx) -> None:
        """On the loop, once the COMMIT ended: undo what mirrors the store if it failed, release the next unit,
        then run the callbacks."""
        failed = done.cancelled() or done.exception() is not None
        if failed:
            tx.rolled_back()
            error = None if done.cancelled() else done.exception()
            self._note_full(error if isinstance(error, StoreFullError) else tx.full)
        else:
            self.commits += 1
            self._note_committed(tx)
        self._lock.release()
        if not failed:
            for fn in tx.callbacks:
                fn()

    def _undo(self, tx: Tx) -> None:
        """Roll back the open transaction, in the store and in what mirrors it in memory."""
        _rollback(self._conn)
        tx.rolled_back()


async def open_database(path: Path) -> Database:
    """Open (creating if needed) the store at ``path``, set PRAGMAs and apply pending migrations."""
    thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-bridge-db")
    try:
        conn = await asyncio.get_running_loop().run_in_executor(thread, _open, path)
    except BaseException:
        thread.shutdown(wait=True)
        raise
    return Database(thread, conn, path)


def _open(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db_file.vet_header(path)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # the loop, and COMMIT
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from exc
    conn.row_factory = sqlite3.Row
    try:
        db_file.vet_schema(conn, path, newest=len(migrations()))
        _configure(conn)
        _migrate(conn, migrations())
    except sqlite3.Error as exc:
        error = store_error(f"cannot open database {path}", exc, conn)
        conn.close()
        raise error from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _configure(conn: sqlite3.Connection) -> None:
    mode = _scalar(conn, "PRAGMA journal_mode = WAL")
    if mode != "wal":
        raise StoreError(f"journal_mode is {mode!r}, WAL is required")
    for pragma in PRAGMAS:
        _run(conn, pragma)


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


def _migrate(conn: sqlite3.Connection, steps: list[tuple[int, str]]) -> None:
    current = int(_scalar(conn, "PRAGMA user_version"))
    newest = steps[-1][0] if steps else 0
    if current > newest:
        raise StoreError(f"database schema version {current} is newer than this edge-bridge ({newest})")
    for version, sql in steps:
        if version > current:
            _apply(conn, version, sql)


def _apply(conn: sqlite3.Connection, version: int, sql: str) -> None:
    """One migration and its user_version bump in one transaction."""
    script = f"BEGIN IMMEDIATE;\n{sql}\n;PRAGMA user_version = {version};\nCOMMIT;"
    try:
        conn.executescript(script)
    except sqlite3.Error as exc:
        _rollback(conn)
        raise StoreError(f"migration {version:04d} failed: {exc}") from exc


def _scalar(conn: sqlite3.Connection, sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    return None if row is None else row[0]


def _run(conn: sqlite3.Connection, sql: str) -> None:
    try:
        conn.execute(sql)
    except sqlite3.Error as exc:
        raise store_error(f"{sql} failed", exc, conn) from exc


def store_error(what: str, exc: sqlite3.Error, conn: sqlite3.Connection) -> StoreError:
    """``exc`` as a StoreError: a StoreFullError when SQLite found the disk full (SQLITE_FULL), or reports an I/O
    error while the database's filesystem has next to no space left (ENOSPC surfaces so on some writes)."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
    message = f"{what}: {exc}"
    if code == sqlite3.SQLITE_FULL:
        return StoreFullError(message)
    if code == sqlite3.SQLITE_IOERR and _low_on_space(conn):
        return StoreFullError(f"{message} (no space left on the database's filesystem)")
    return StoreError(message)


def _low_on_space(conn: sqlite3.Connection) -> bool:
    with suppress(sqlite3.Error):
        for row in conn.execute("PRAGMA database_list"):
            if row[1] == "main" and row[2]:
                free = free_bytes(Path(row[2]))
                return free is not None and free < FULL_BELOW_BYTES
    return False


def free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged writer may still use on the filesystem holding ``path`` (None if it cannot be told)."""
    try:
        stat = os.statvfs(path if path.is_dir() else path.parent)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


def _rollback(conn: sqlite3.Connection) -> None:
    """Safe to call with no transaction open."""
    if conn.in_transaction:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")

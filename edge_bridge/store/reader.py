"""A second, read-only connection to the daemon's database, for views (the status page) that must not slow it.

Invariants:
- It never writes: the file is opened with ``mode=ro`` and ``PRAGMA query_only``; it never migrates (the daemon
  opened the file first, so its schema is current).
- Its statements run on its own thread, never on the event loop and never under the ``Database``'s unit lock: a
  page being read neither delays a charger's write nor waits for a group commit. SQLite in WAL lets it read while
  the daemon writes; each ``read`` is one read transaction (one consistent snapshot), ended before it returns, so it
  never holds back a checkpoint.
- ``work`` gets the same ``Tx`` the store functions take, so every query of ``store/`` is usable here unchanged.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from edge_bridge.errors import StoreError
from edge_bridge.store.db import Tx, store_error

T = TypeVar("T")


class ReadOnlyStore:
    """``await read(work)``: ``work(tx)`` in one read transaction on the reader's thread. Open with ``open``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-bridge-reader")
        self._conn: sqlite3.Connection | None = None

    async def read(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` on a snapshot; a failure is a StoreError."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._read, work)

    async def close(self) -> None:
        """Close the connection and end the thread (idempotent)."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)

    def _read(self, work: Callable[[Tx], T]) -> T:
        conn = self._connection()
        try:
            conn.execute("BEGIN")
            return work(Tx(conn, writable=False))
        except sqlite3.Error as exc:
            raise store_error("read failed", exc, conn) from exc
        finally:
            if conn.in_transaction:
                conn.rollback()

    def _connection(self) -> sqlite3.Connection:
        """Opened on first use (on the reader's thread), so that opening never blocks the loop."""
        if self._conn is None:
            try:
                conn = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)
                conn.execute("PRAGMA query_only = ON")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open database {self.path} read-only: {exc}") from exc
            conn.row_factory = sqlite3.Row
            self._conn = conn
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

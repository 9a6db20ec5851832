"""Whether a database file may be used at all, decided before anything writes to it.

``vet_header(path)`` reads the file's first 100 bytes and its size with plain file I/O (SQLite has not touched it
yet); ``vet_schema(conn, path, newest)`` then asks SQLite only read-only questions (the schema version and the table
names). Either raises a ``DatabaseUnusableError`` whose message says what is wrong, names the path and what to do:

- not a SQLite file (the header is damaged or it is another kind of file), or shorter than its header says (a
  truncated copy): ``DatabaseDamagedError``;
- a SQLite file that is not an edge-bridge store (tables, but no schema version of ours, or without our tables):
  ``DatabaseDamagedError``;
- a schema version above ``newest``: ``DatabaseTooNewError``.

Invariant: a refused file is never written, migrated or switched to WAL: its bytes are unchanged. A missing or empty
file is a new store. A file whose WAL holds frames may be longer in the WAL than in the main file after a crash in
the middle of a checkpoint, so the length check is made only when there is no WAL with content.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge_bridge.errors import DatabaseDamagedError, DatabaseTooNewError

HEADER = b"SQLite format 3\x00"
HEADER_BYTES = 100
OUR_TABLES = frozenset({"outbox", "issued_tokens"})  # created by migration 0001
RESTORE = "restore it from a backup, or move it away to start with an empty store (its records are then lost)"


def vet_header(path: Path) -> None:
    """Refuse a file that is not SQLite or is shorter than its header says. A missing or empty file passes.

    Caution: closing this plain handle drops every POSIX lock the process holds on the file (fcntl semantics), the
    locks of SQLite connections to it included. The daemon and each command open the store once per process, so
    none is held then; a test that opens the same database twice in one process, beside another process, can lose
    its WAL to that other process's close."""
    if not path.exists() or path.stat().st_size == 0:
        return
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(HEADER_BYTES)
    if len(head) < HEADER_BYTES or not head.startswith(HEADER):
        raise DatabaseDamagedError(
            f"{path} is not a database: no SQLite header (damaged, or another kind of file); {RESTORE}"
        )
    expected = _expected_size(head)
    if expected is not None and size < expected and not _wal_has_frames(path):
        raise DatabaseDamagedError(f"{path} is truncated: {size} bytes where its header says {expected}; {RESTORE}")


def _expected_size(head: bytes) -> int | None:
    """Page size × page count from the header, when the header vouches for its page count (SQLite file format §1.3:
    the count is valid when nonzero and the change counter equals the version-valid-for number)."""
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    valid = pages > 0 and head[24:28] == head[92:96]
    return page_size * pages if valid and page_size >= 512 else None


def _wal_has_frames(path: Path) -> bool:
    wal = path.with_name(path.name + "-wal")
    return wal.exists() and wal.stat().st_size > 32  # the WAL header alone is 32 bytes


def vet_schema(conn: sqlite3.Connection, path: Path, newest: int) -> None:
    """Refuse a SQLite file that is damaged, not ours, or from a newer edge-bridge (read-only queries only)."""
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code not in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
            raise
        raise DatabaseDamagedError(f"{path} is damaged ({exc}); {RESTORE}") from exc
    if version > newest:
        raise DatabaseTooNewError(
            f"{path} has schema version {version} from a newer edge-bridge than this one ({newest}): "
            "install that version or a newer one, or restore a backup made by this version"
        )
    if (version == 0 and tables) or (version > 0 and not tables >= OUR_TABLES):
        raise DatabaseDamagedError(
            f"{path} is a SQLite database but not an edge-bridge store (schema version {version}, tables "
            f"{', '.join(sorted(tables)) or 'none'}); point [storage] path at the store, or move this file away"
        )

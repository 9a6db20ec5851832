"""The durable outbox: the one owner of every outbox write (procrastinate's manager, on SQLite).

Rows of one key go out in id order (D18); ids are never reused, so they order each key. Reading pending rows
does not write: the uploader (the one consumer) keeps what it loaded in memory (``provincial/lanes.py``) and marks
each row sent, retried or dead. Sent and dead rows hold nothing back. ``attempts`` counts delivery attempts, the
successful one included. Whoever waits for work registers with ``on_work``: it is called after every COMMIT that
enqueued or requeued rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from edge_bridge.errors import StoreError
from edge_bridge.store.db import Database, Params, Row, Tx, from_db, to_db

STATES = ("pending", "sent", "dead")

ENQUEUE = """
INSERT INTO outbox (interface, key, payload, state, attempts, created_at, next_attempt_at, updated_at)
VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?4, ?4)
"""

# pending rows in id order after ?1, up to ?2, at most ?3
PENDING = "SELECT * FROM outbox WHERE state = 'pending' AND id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3"
NO_ID_LIMIT = 2**63 - 1

MARK_SENT = """
UPDATE outbox SET state = 'sent', attempts = attempts + 1, sent_at = ?2, updated_at = ?2, response = ?3,
    next_attempt_at = NULL
WHERE id = ?1 AND state = 'pending'
"""

MARK_SENT_MANY = """
UPDATE outbox SET state = 'sent', attempts = attempts + 1, sent_at = ?1, updated_at = ?1, response = ?2,
    next_attempt_at = NULL
WHERE id IN (SELECT value FROM json_each(?3)) AND state = 'pending'
"""

MARK_RETRY = """
UPDATE outbox SET attempts = attempts + 1, updated_at = ?2, next_attempt_at = ?3, last_error = ?4
WHERE id = ?1 AND state = 'pending'
"""

MARK_DEAD = """
UPDATE outbox SET state = 'dead', attempts = attempts + 1, updated_at = ?2, next_attempt_at = NULL,
    last_error = ?3
WHERE id = ?1 AND state = 'pending'
"""

REQUEUE = """
UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?1, updated_at = ?1
WHERE state = 'dead' AND (?2 IS NULL OR id IN (SELECT value FROM json_each(?2)))
"""

COUNTS = "SELECT state, COUNT(*) AS n FROM outbox GROUP BY state"

LATEST_PENDING_PAYLOAD = """
SELECT payload FROM outbox WHERE interface = ? AND key = ? AND state = 'pending' ORDER BY id DESC LIMIT 1
"""

ROWS = "SELECT * FROM outbox WHERE (?1 IS NULL OR state = ?1) ORDER BY id DESC LIMIT ?2"

PURGE_SENT = """
DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE state = 'sent' AND sent_at < ?1 LIMIT ?2)
"""
PURGE_CHUNK = 2000  # rows per transaction: the statements run on the event loop


@dataclass(frozen=True)
class OutboxRow:
    """One outbox row as stored."""

    id: int
    interface: str
    key: str
    payload: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_error: str | None
    sent_at: datetime | None
    response: str | None
    updated_at: datetime | None = None  # when the row last changed state or was marked


def _maybe_time(text: str | None) -> datetime | None:
    return None if text is None else from_db(text)


def _row(row: Row) -> OutboxRow:
    return OutboxRow(
        id=row["id"],
        interface=row["interface"],
        key=row["key"],
        payload=row["payload"],
        state=row["state"],
        attempts=row["attempts"],
        created_at=from_db(row["created_at"]),
        next_attempt_at=_maybe_time(row["next_attempt_at"]),
        last_error=row["last_error"],
        sent_at=_maybe_time(row["sent_at"]),
        response=row["response"],
        updated_at=_maybe_time(row["updated_at"]),
    )


class Outbox:
    """Enqueue inside the caller's transaction; claim heads per key; mark; requeue; wait for work."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._listeners: list[Callable[[bool], None]] = []

    def on_work(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(requeued)`` (on the event loop) after each COMMIT that enqueued rows (False) or put
        dead rows back (True: their ids are older than rows enqueued since)."""
        self._listeners.append(listener)

    def _notify(self, requeued: bool = False) -> None:
        for listener in self._listeners:
            listener(requeued)

    def enqueue(self, tx: Tx, interface: str, key: str, payload: str, now: datetime) -> int:
        """Insert a pending row due ``now``; listeners hear of it once ``tx`` commits. Returns the row id."""
        cursor = tx.execute(ENQUEUE, (interface, key, payload, to_db(now)))
        tx.on_commit(self._notify)
        if cursor.lastrowid is None:
            raise StoreError("outbox insert returned no id")
        return cursor.lastrowid

    async def pending(self, after_id: int, limit: int, upto_id: int = NO_ID_LIMIT) -> list[OutboxRow]:
        """Pending rows with an id above ``after_id`` and up to ``upto_id``, lowest first, at most ``limit``."""
        params = (after_id, upto_id, limit)
        return await self._db.read(lambda tx: [_row(r) for r in tx.fetchall(PENDING, params)])

    async def mark_sent(self, id: int, now: datetime, response: str | None) -> None:
        """The province accepted row ``id``."""
        await self._db.write(lambda tx: self.mark_sent_in(tx, id, now, response))

    async def mark_retry(self, id: int, now: datetime, next_attempt_at: datetime, error: str) -> None:
        """Row ``id`` failed for now: try again at ``next_attempt_at``."""
        await self._db.write(lambda tx: self.mark_retry_in(tx, id, now, next_attempt_at, error))

    async def mark_dead(self, id: int, now: datetime, reason: str) -> None:
        """Row ``id`` will not succeed: dead-letter it with ``reason``."""
        await self._db.write(lambda tx: self.mark_dead_in(tx, id, now, reason))

    @staticmethod
    def mark_sent_in(tx: Tx, id: int, now: datetime, response: str | None) -> None:
        """``mark_sent`` in the caller's transaction (with the accept hook)."""
        _mark_in(tx, MARK_SENT, (id, to_db(now), response))

    @staticmethod
    def mark_sent_many(tx: Tx, ids_by_response: Mapping[str | None, Sequence[int]], now: datetime) -> int:
        """``mark_sent_in`` for many rows at once, one statement per distinct response (most answers are alike);
        the number of rows marked."""
        at = to_db(now)
        marked = [tx.execute(MARK_SENT_MANY, (at, answer, json.dumps(ids))) for answer, ids in ids_by_response.items()]
        return sum(cursor.rowcount for cursor in marked)

    @staticmethod
    def mark_retry_in(tx: Tx, id: int, now: datetime, next_attempt_at: datetime, error: str) -> None:
        """``mark_retry`` in the caller's transaction."""
        _mark_in(tx, MARK_RETRY, (id, to_db(now), to_db(next_attempt_at), error))

    @staticmethod
    def mark_dead_in(tx: Tx, id: int, now: datetime, reason: str) -> None:
        """``mark_dead`` in the caller's transaction."""
        _mark_in(tx, MARK_DEAD, (id, to_db(now), reason))

    async def requeue(self, ids: Sequence[int] | None, now: datetime) -> int:
        """Dead rows (all of them when ``ids`` is None) back to pending, due ``now``. Returns the count."""
        wanted = None if ids is None else json.dumps(list(ids))

        def requeue(tx: Tx) -> int:
            tx.on_commit(lambda: self._notify(requeued=True))
            return tx.execute(REQUEUE, (to_db(now), wanted)).rowcount

        return await self._db.write(requeue)

    @staticmethod
    def latest_pending_payload(tx: Tx, interface: str, key: str) -> str | None:
        """The payload of the newest pending row of ``interface`` for ``key``, if any."""
        row = tx.fetchone(LATEST_PENDING_PAYLOAD, (interface, key))
        return None if row is None else str(row["payload"])

    async def pending_count(self) -> int:
        """Rows waiting to go (read through the pending index: cheap while the backlog is small)."""
        row = await self._db.read(lambda tx: tx.fetchone("SELECT COUNT(*) AS n FROM outbox WHERE state = 'pending'"))
        return int(row["n"]) if row is not None else 0

    async def counts(self) -> dict[str, int]:
        """Rows per state; every state is present."""
        rows = await self._db.read(lambda tx: tx.fetchall(COUNTS))
        return {state: 0 for state in STATES} | {row["state"]: row["n"] for row in rows}

    async def rows(self, state: str | None = None, limit: int = 100) -> list[OutboxRow]:
        """Rows newest first, of one state or of all."""
        return await self._db.read(lambda tx: [_row(row) for row in tx.fetchall(ROWS, (state, limit))])

    async def purge_sent(self, older_than: datetime, chunk: int = PURGE_CHUNK) -> int:
        """Delete sent rows sent before ``older_than``, a chunk per transaction. Returns the count."""
        total = 0
        while True:
            deleted = await self._db.write(lambda tx: tx.execute(PURGE_SENT, (to_db(older_than), chunk)).rowcount)
            total += deleted
            if deleted < chunk:
                return total


def _mark_in(tx: Tx, sql: str, params: Params) -> None:
    cursor = tx.execute(sql, params)
    if cursor.rowcount != 1:
        raise StoreError("outbox row is missing or not pending")

"""The durable outbox: the one owner of every outbox write (procrastinate's manager, on SQLite).

Rows of one key go out in id order (D18): only the lowest pending id of a key (its head) is ever claimable,
so a head waiting for its retry holds back the rest of its key. Sent and dead rows hold nothing back.
``attempts`` counts delivery attempts, the successful one included. Claiming does not write: the caller
leases a key by passing it in ``busy_keys`` until it has marked the row.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from edge_bridge.errors import StoreError
from edge_bridge.store.db import Database, Params, Row, Tx, from_db, to_db

STATES = ("pending", "sent", "dead")

ENQUEUE = """
INSERT INTO outbox (interface, key, payload, state, attempts, created_at, next_attempt_at, updated_at)
VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?4, ?4)
"""

# heads (lowest pending id per key) of the keys not in the JSON array ?1
HEADS = """
SELECT o.* FROM outbox AS o
JOIN (SELECT MIN(id) AS head_id FROM outbox WHERE state = 'pending' GROUP BY key) AS h ON o.id = h.head_id
WHERE o.key NOT IN (SELECT value FROM json_each(?1))
"""

CLAIM = HEADS + " AND o.next_attempt_at <= ?2 ORDER BY o.id LIMIT ?3"

NEXT_DUE = """
SELECT MIN(o.next_attempt_at) FROM outbox AS o
JOIN (SELECT MIN(id) AS head_id FROM outbox WHERE state = 'pending' GROUP BY key) AS h ON o.id = h.head_id
WHERE o.key NOT IN (SELECT value FROM json_each(?1))
"""

MARK_SENT = """
UPDATE outbox SET state = 'sent', attempts = attempts + 1, sent_at = ?2, updated_at = ?2, response = ?3,
    next_attempt_at = NULL
WHERE id = ?1 AND state = 'pending'
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

PURGE_SENT = "DELETE FROM outbox WHERE state = 'sent' AND sent_at < ?"


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
        self._work = asyncio.Event()

    def enqueue(self, tx: Tx, interface: str, key: str, payload: str, now: datetime) -> int:
        """Insert a pending row due ``now``; waiters wake once ``tx`` commits. Returns the row id."""
        cursor = tx.execute(ENQUEUE, (interface, key, payload, to_db(now)))
        tx.on_commit(self._work.set)
        if cursor.lastrowid is None:
            raise StoreError("outbox insert returned no id")
        return cursor.lastrowid

    async def claim(self, now: datetime, busy_keys: Collection[str], limit: int) -> list[OutboxRow]:
        """The due heads of keys not in ``busy_keys``, lowest id first, at most ``limit``."""
        params = (_json(busy_keys), to_db(now), limit)
        return await self._db.read(lambda tx: [_row(row) for row in tx.fetchall(CLAIM, params)])

    async def next_due(self, busy_keys: Collection[str]) -> datetime | None:
        """The earliest ``next_attempt_at`` among heads of keys not in ``busy_keys``; None if none."""
        row = await self._db.read(lambda tx: tx.fetchone(NEXT_DUE, (_json(busy_keys),)))
        return None if row is None else _maybe_time(row[0])

    async def mark_sent(self, id: int, now: datetime, response: str | None) -> None:
        """The province accepted row ``id``."""
        await self._db.write(lambda tx: self.mark_sent_in(tx, id, now, response))

    @staticmethod
    def mark_sent_in(tx: Tx, id: int, now: datetime, response: str | None) -> None:
        """The province accepted row ``id``, in the caller's transaction (with the accept hook)."""
        _mark_in(tx, MARK_SENT, (id, to_db(now), response))

    async def mark_retry(self, id: int, now: datetime, next_attempt_at: datetime, error: str) -> None:
        """Row ``id`` failed for now: try again at ``next_attempt_at``."""
        params = (id, to_db(now), to_db(next_attempt_at), error)
        await self._db.write(lambda tx: _mark_in(tx, MARK_RETRY, params))

    async def mark_dead(self, id: int, now: datetime, reason: str) -> None:
        """Row ``id`` will not succeed: dead-letter it with ``reason``."""
        await self._db.write(lambda tx: _mark_in(tx, MARK_DEAD, (id, to_db(now), reason)))

    async def requeue(self, ids: Sequence[int] | None, now: datetime) -> int:
        """Dead rows (all of them when ``ids`` is None) back to pending, due ``now``. Returns the count."""
        wanted = None if ids is None else json.dumps(list(ids))

        def requeue(tx: Tx) -> int:
            tx.on_commit(self._work.set)
            return tx.execute(REQUEUE, (to_db(now), wanted)).rowcount

        return await self._db.write(requeue)

    async def wait(self, timeout: float | None) -> None:  # noqa: ASYNC109 - the uploader sleeps until next_due
        """Return once something was enqueued or requeued since the last wait, or after ``timeout`` s."""
        with suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._work.wait()
        self._work.clear()

    @staticmethod
    def latest_pending_payload(tx: Tx, interface: str, key: str) -> str | None:
        """The payload of the newest pending row of ``interface`` for ``key``, if any."""
        row = tx.fetchone(LATEST_PENDING_PAYLOAD, (interface, key))
        return None if row is None else str(row["payload"])

    async def counts(self) -> dict[str, int]:
        """Rows per state; every state is present."""
        rows = await self._db.read(lambda tx: tx.fetchall(COUNTS))
        return {state: 0 for state in STATES} | {row["state"]: row["n"] for row in rows}

    async def rows(self, state: str | None = None, limit: int = 100) -> list[OutboxRow]:
        """Rows newest first, of one state or of all."""
        return await self._db.read(lambda tx: [_row(row) for row in tx.fetchall(ROWS, (state, limit))])

    async def purge_sent(self, older_than: datetime) -> int:
        """Delete sent rows sent before ``older_than``. Returns the count."""
        return await self._db.write(lambda tx: tx.execute(PURGE_SENT, (to_db(older_than),)).rowcount)


def _mark_in(tx: Tx, sql: str, params: Params) -> None:
    cursor = tx.execute(sql, params)
    if cursor.rowcount != 1:
        raise StoreError("outbox row is missing or not pending")


def _json(keys: Collection[str]) -> str:
    return json.dumps(list(keys))

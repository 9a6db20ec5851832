"""The durable outbox: the one owner of every outbox write (procrastinate's manager, on SQLite).

Rows of one key go out in id order (D18); ids are never reused, so they order each key. Reading pending rows
does not write: the uploader (the one consumer) keeps what it loaded in memory (``provincial/lanes.py``) and marks
each row sent, retried or dead. Sent and dead rows hold nothing back. ``attempts`` counts delivery attempts, the
successful one included. Whoever waits for work registers with ``on_work``: it is called after every COMMIT that
enqueued or requeued rows.

Every outcome of a delivery attempt is also kept as an answer (``push_answers``, migration 0008), in the same
transaction as the mark: the province's Ret and Msg (or why there was no answer) and the decrypted Data. A row
keeps its first ``KEEP_ANSWERS`` and its last ``KEEP_ANSWERS`` answers (a push retried for days does not grow the
table; acceptance in a batch may add one more: at most ``2 * KEEP_ANSWERS + 1``), and its answers go with it
(ON DELETE CASCADE). Only dead rows are purged by hand (``purge_dead``): a pending row is a record not yet delivered,
and sent rows go by retention (``purge_sent``). A purged order row leaves its session's order queued with no outbox
row: the order was not delivered.
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

KEEP_ANSWERS = 20  # first and last answers kept per row

ADD_ANSWER = """
INSERT INTO push_answers (outbox_id, seq, at, outcome, ret, reason, data)
VALUES (?1, 1 + COALESCE((SELECT MAX(seq) FROM push_answers WHERE outbox_id = ?1), 0), ?2, ?3, ?4, ?5, ?6)
"""
# the answers between the first and the last KEEP_ANSWERS (?2) of row ?1
TRIM_ANSWERS = """
DELETE FROM push_answers WHERE outbox_id = ?1 AND seq > ?2
    AND seq <= (SELECT MAX(seq) FROM push_answers WHERE outbox_id = ?1) - ?2
"""
# an accepted answer for each row of ?3 still pending: run just before MARK_SENT_MANY marks the same rows
ADD_ACCEPTED_MANY = """
INSERT INTO push_answers (outbox_id, seq, at, outcome, ret, reason, data)
SELECT o.id, 1 + COALESCE((SELECT MAX(a.seq) FROM push_answers AS a WHERE a.outbox_id = o.id), 0),
    ?1, 'accepted', 0, '', ?2
FROM outbox AS o WHERE o.id IN (SELECT value FROM json_each(?3)) AND o.state = 'pending'
"""
ANSWERS = "SELECT * FROM push_answers WHERE outbox_id = ? ORDER BY seq"

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

ROW = "SELECT * FROM outbox WHERE id = ?"
ORDER_OF_ROW = "SELECT id, start_charge_seq FROM sessions WHERE order_outbox_id = ?"
STATES_OF = "SELECT id, state FROM outbox WHERE id IN (SELECT value FROM json_each(?1))"
DEAD_CHUNK = "SELECT id FROM outbox WHERE state = 'dead' ORDER BY id LIMIT ?1"
ORDERS_OF_ROWS = """
SELECT id, start_charge_seq, order_outbox_id FROM sessions
WHERE order_outbox_id IN (SELECT value FROM json_each(?1)) ORDER BY id
"""
PURGE_DEAD = "DELETE FROM outbox WHERE state = 'dead' AND id IN (SELECT value FROM json_each(?1))"


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


@dataclass(frozen=True)
class Answer:
    """One outcome of a delivery attempt of a row (``push_answers``): ``ret`` None when the province's protocol
    answer never came or could not be read (``reason`` says why); ``data`` the decrypted answer Data, if any."""

    seq: int  # 1, 2, 3, ... per row; a gap is answers not kept
    at: datetime
    outcome: str  # accepted | transient | permanent
    ret: int | None
    reason: str
    data: str | None


@dataclass(frozen=True)
class OrderRef:
    """The session whose order an outbox row carries."""

    session_id: int
    start_charge_seq: str | None
    outbox_id: int


@dataclass(frozen=True)
class RowDetail:
    """One row with every answer kept for it, oldest first, and the session whose order it is, if any."""

    row: OutboxRow
    answers: list[Answer]
    order: OrderRef | None


@dataclass(frozen=True)
class DeadPurge:
    """What ``purge_dead`` did: the rows deleted, the orders they carried (now not delivered), and, when some
    asked-for rows were not dead (state, or None: no such row), those: then nothing was deleted."""

    purged: list[int]
    orders: list[OrderRef]
    refused: dict[int, str | None]


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


def _answer(row: Row) -> Answer:
    return Answer(row["seq"], from_db(row["at"]), row["outcome"], row["ret"], row["reason"], row["data"])


def _order_ref(row: Row, outbox_id: int) -> OrderRef:
    return OrderRef(row["id"], row["start_charge_seq"], outbox_id)


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

    async def mark_retry(
        self, id: int, now: datetime, next_attempt_at: datetime, error: str, ret: int | None = None
    ) -> None:
        """Row ``id`` failed for now: try again at ``next_attempt_at``."""
        await self._db.write(lambda tx: self.mark_retry_in(tx, id, now, next_attempt_at, error, ret))

    async def mark_dead(
        self, id: int, now: datetime, reason: str, ret: int | None = None, data: str | None = None
    ) -> None:
        """Row ``id`` will not succeed: dead-letter it with ``reason``."""
        await self._db.write(lambda tx: self.mark_dead_in(tx, id, now, reason, ret, data))

    @staticmethod
    def mark_sent_in(tx: Tx, id: int, now: datetime, response: str | None) -> None:
        """``mark_sent`` in the caller's transaction (with the accept hook); ``response``: the answer's Data."""
        _mark_in(tx, MARK_SENT, (id, to_db(now), response))
        _add_answer(tx, id, now, "accepted", 0, "", response)

    @staticmethod
    def mark_sent_many(tx: Tx, ids_by_response: Mapping[str | None, Sequence[int]], now: datetime) -> int:
        """``mark_sent_in`` for many rows at once, two statements per distinct response (most answers are alike);
        the number of rows marked."""
        at = to_db(now)
        marked = 0
        for answer, ids in ids_by_response.items():
            wanted = json.dumps(ids)
            tx.execute(ADD_ACCEPTED_MANY, (at, answer, wanted))
            marked += tx.execute(MARK_SENT_MANY, (at, answer, wanted)).rowcount
        return marked

    @staticmethod
    def mark_retry_in(
        tx: Tx,
        id: int,
        now: datetime,
        next_attempt_at: datetime,
        error: str,
        ret: int | None = None,
        data: str | None = None,
    ) -> None:
        """``mark_retry`` in the caller's transaction; ``ret`` and ``data``: the province's answer, if any."""
        _mark_in(tx, MARK_RETRY, (id, to_db(now), to_db(next_attempt_at), error))
        _add_answer(tx, id, now, "transient", ret, error, data)

    @staticmethod
    def mark_dead_in(
        tx: Tx, id: int, now: datetime, reason: str, ret: int | None = None, data: str | None = None
    ) -> None:
        """``mark_dead`` in the caller's transaction; ``ret`` and ``data``: the province's answer, if any."""
        _mark_in(tx, MARK_DEAD, (id, to_db(now), reason))
        _add_answer(tx, id, now, "permanent", ret, reason, data)

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

    async def detail(self, id: int) -> RowDetail | None:
        """Row ``id`` with its answers and the session whose order it carries (one snapshot); None: no such row."""
        return await self._db.read(lambda tx: _detail(tx, id))

    async def purge_dead(self, ids: Sequence[int] | None, chunk: int = PURGE_CHUNK) -> DeadPurge:
        """Delete dead rows (and their answers): those of ``ids``, all or none (any of them not dead: nothing is
        deleted and they are ``refused``), or every dead row when ``ids`` is None, a chunk per transaction."""
        if ids is not None:
            return await self._db.write(lambda tx: _purge_listed(tx, list(ids)))
        purged: list[int] = []
        orders: list[OrderRef] = []
        while True:
            done = await self._db.write(lambda tx: _purge_rows(tx, _dead_chunk(tx, chunk)))
            purged, orders = purged + done.purged, orders + done.orders
            if len(done.purged) < chunk:
                return DeadPurge(purged, orders, {})


def _detail(tx: Tx, id: int) -> RowDetail | None:
    row = tx.fetchone(ROW, (id,))
    if row is None:
        return None
    order = tx.fetchone(ORDER_OF_ROW, (id,))
    answers = [_answer(answer) for answer in tx.fetchall(ANSWERS, (id,))]
    return RowDetail(_row(row), answers, None if order is None else _order_ref(order, id))


def _purge_listed(tx: Tx, ids: list[int]) -> DeadPurge:
    states: dict[int, str | None] = {row["id"]: row["state"] for row in tx.fetchall(STATES_OF, (json.dumps(ids),))}
    refused = {id: states.get(id) for id in ids if states.get(id) != "dead"}
    return DeadPurge([], [], refused) if refused else _purge_rows(tx, sorted(set(ids)))


def _dead_chunk(tx: Tx, chunk: int) -> list[int]:
    return [row["id"] for row in tx.fetchall(DEAD_CHUNK, (chunk,))]


def _purge_rows(tx: Tx, ids: list[int]) -> DeadPurge:
    """Delete the dead rows of ``ids``; the orders they carried."""
    wanted = (json.dumps(ids),)
    orders = [_order_ref(row, row["order_outbox_id"]) for row in tx.fetchall(ORDERS_OF_ROWS, wanted)]
    tx.execute(PURGE_DEAD, wanted)
    return DeadPurge(ids, orders, {})


def _add_answer(tx: Tx, id: int, now: datetime, outcome: str, ret: int | None, reason: str, data: str | None) -> None:
    """Keep one answer of row ``id``, and only the first and last ``KEEP_ANSWERS`` of its answers."""
    tx.execute(ADD_ANSWER, (id, to_db(now), outcome, ret, reason, data))
    tx.execute(TRIM_ANSWERS, (id, KEEP_ANSWERS))


def _mark_in(tx: Tx, sql: str, params: Params) -> None:
    cursor = tx.execute(sql, params)
    if cursor.rowcount != 1:
        raise StoreError("outbox row is missing or not pending")

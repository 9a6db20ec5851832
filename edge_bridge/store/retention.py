"""The retention purge (``[retention]``): what a gateway that runs for years must forget, and what it must not.

Kept regardless of age: open sessions and their samples, and finished sessions whose order is still queued for the
province (their order payload is in the outbox, but the session is the record of it). Accepted pushes are purged
by ``Outbox.purge_sent``, their answers (``push_answers``) with them.

The 2.0.1 TransactionEvent keys (``tx_events``, one per event, which tell a replayed event from a new one) of a
finished session go with the samples (``samples_before``), not with the session: a charger replays its offline queue
within hours or days, never months, and a repeat that came later still would find its session finished (a repeated
``Ended`` is a duplicate stop) and its samples gone. Kept for the sessions' 400 days they were the largest table.

A purge deletes at most a chunk of each kind per transaction (``Purged.more`` says whether to call again): the
statements run on the event loop, so a first purge after months must not hold the chargers up in one long
transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from edge_bridge.store.db import Database, Tx, to_db

CHUNK = 2000  # samples or status reports per transaction
SESSION_CHUNK = 2  # sessions per transaction (a day's session has 1,440 samples)
KEY_SESSION_CHUNK = 20  # 2.0.1 sessions whose event keys go per transaction (one key per event: about 100 each)

OLD_SAMPLES = """
DELETE FROM meter_samples WHERE id IN (
    SELECT id FROM meter_samples WHERE at < ?1
        AND (session_id IS NULL OR session_id IN (SELECT id FROM sessions WHERE state = 'finished'))
    LIMIT ?2)
"""
OLD_STATUS_REPORTS = """
DELETE FROM status_reports WHERE rowid IN (SELECT rowid FROM status_reports WHERE received_at < ?1 LIMIT ?2)
"""
EXPIRED_SESSIONS = """
SELECT id FROM sessions
WHERE state = 'finished' AND ended_at < ?1 AND (order_state IS NULL OR order_state != 'queued')
LIMIT ?2
"""
EXPIRED_TX_EVENTS = """
DELETE FROM tx_events WHERE (ocpp_id, transaction_ref) IN (
    SELECT ocpp_id, transaction_ref FROM sessions WHERE id IN (SELECT value FROM json_each(?1)) AND version = '2.0.1')
"""
OLD_TX_EVENT_SESSIONS = """
SELECT s.ocpp_id, s.transaction_ref FROM sessions AS s
WHERE s.state = 'finished' AND s.ended_at < ?1 AND s.version = '2.0.1'
    AND EXISTS (SELECT 1 FROM tx_events AS t WHERE t.ocpp_id = s.ocpp_id AND t.transaction_ref = s.transaction_ref)
LIMIT ?2
"""
OLD_TX_EVENTS = """
DELETE FROM tx_events WHERE (ocpp_id, transaction_ref) IN (
    SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?1))
"""
EXPIRED_SESSION_SAMPLES = "DELETE FROM meter_samples WHERE session_id IN (SELECT value FROM json_each(?1))"
EXPIRED_SESSION_ROWS = "DELETE FROM sessions WHERE id IN (SELECT value FROM json_each(?1))"


@dataclass(frozen=True)
class Purged:
    samples: int
    status_reports: int
    sessions: int
    more: bool = False  # a chunk was full: there may be more to purge

    def __add__(self, other: Purged) -> Purged:
        return Purged(
            self.samples + other.samples,
            self.status_reports + other.status_reports,
            self.sessions + other.sessions,
            other.more,
        )


async def purge_all(db: Database, samples_before: datetime, sessions_before: datetime) -> Purged:
    """``purge`` chunk by chunk until nothing is left, each chunk its own transaction (the chargers' units go in
    between). Returns the totals."""
    total = Purged(0, 0, 0, more=True)
    while total.more:
        total += await db.write(lambda tx: purge(tx, samples_before, sessions_before))
    return total


def purge(
    tx: Tx, samples_before: datetime, sessions_before: datetime, chunk: int = CHUNK, session_chunk: int = SESSION_CHUNK
) -> Purged:
    """Delete meter samples and status reports older than ``samples_before`` and the 2.0.1 event keys of sessions
    that finished before it, and finished sessions (with their samples and keys) that ended before
    ``sessions_before``: at most a chunk of each."""
    samples = (tx.execute(OLD_SAMPLES, (to_db(samples_before), chunk))).rowcount
    reports = (tx.execute(OLD_STATUS_REPORTS, (to_db(samples_before), chunk))).rowcount
    keyed = tx.fetchall(OLD_TX_EVENT_SESSIONS, (to_db(samples_before), KEY_SESSION_CHUNK))
    tx.execute(OLD_TX_EVENTS, (json.dumps([[row["ocpp_id"], row["transaction_ref"]] for row in keyed]),))
    ids = [row["id"] for row in tx.fetchall(EXPIRED_SESSIONS, (to_db(sessions_before), session_chunk))]
    expired = (json.dumps(ids),)
    tx.execute(EXPIRED_TX_EVENTS, expired)
    session_samples = (tx.execute(EXPIRED_SESSION_SAMPLES, expired)).rowcount
    sessions = (tx.execute(EXPIRED_SESSION_ROWS, expired)).rowcount
    more = samples == chunk or reports == chunk or len(ids) == session_chunk or len(keyed) == KEY_SESSION_CHUNK
    return Purged(samples + session_samples, reports, sessions, more)

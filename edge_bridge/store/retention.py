"""The retention purge (``[retention]``): what a gateway that runs for years must forget, and what it must not.

Kept regardless of age: open sessions and their samples, and finished sessions whose order is still queued for the
province (their order payload is in the outbox, but the session is the record of it). Accepted pushes are purged
by ``Outbox.purge_sent``.

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
    """Delete meter samples and status reports older than ``samples_before``, and finished sessions (with their
    samples and 2.0.1 event keys) that ended before ``sessions_before``: at most a chunk of each."""
    samples = (tx.execute(OLD_SAMPLES, (to_db(samples_before), chunk))).rowcount
    reports = (tx.execute(OLD_STATUS_REPORTS, (to_db(samples_before), chunk))).rowcount
    ids = [row["id"] for row in tx.fetchall(EXPIRED_SESSIONS, (to_db(sessions_before), session_chunk))]
    expired = (json.dumps(ids),)
    tx.execute(EXPIRED_TX_EVENTS, expired)
    session_samples = (tx.execute(EXPIRED_SESSION_SAMPLES, expired)).rowcount
    sessions = (tx.execute(EXPIRED_SESSION_ROWS, expired)).rowcount
    more = samples == chunk or reports == chunk or len(ids) == session_chunk
    return Purged(samples + session_samples, reports, sessions, more)

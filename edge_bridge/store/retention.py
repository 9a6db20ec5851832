"""The retention purge (``[retention]``): what a gateway that runs for years must forget, and what it must not.

Kept regardless of age: open sessions and their samples, and finished sessions whose order is still queued for the
province (their order payload is in the outbox, but the session is the record of it). Accepted pushes are purged
by ``Outbox.purge_sent``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from edge_bridge.store.db import Tx, to_db

OLD_SAMPLES = """
DELETE FROM meter_samples WHERE at < ?1
    AND (session_id IS NULL OR session_id IN (SELECT id FROM sessions WHERE state = 'finished'))
"""
OLD_STATUS_REPORTS = "DELETE FROM status_reports WHERE received_at < ?1"
EXPIRED_SESSIONS = """
SELECT id FROM sessions
WHERE state = 'finished' AND ended_at < ?1 AND (order_state IS NULL OR order_state != 'queued')
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


def purge(tx: Tx, samples_before: datetime, sessions_before: datetime) -> Purged:
    """Delete meter samples and status reports older than ``samples_before``, and finished sessions (with their
    samples and 2.0.1 event keys) that ended before ``sessions_before``."""
    samples = (tx.execute(OLD_SAMPLES, (to_db(samples_before),))).rowcount
    reports = (tx.execute(OLD_STATUS_REPORTS, (to_db(samples_before),))).rowcount
    expired = (json.dumps([row["id"] for row in tx.fetchall(EXPIRED_SESSIONS, (to_db(sessions_before),))]),)
    tx.execute(EXPIRED_TX_EVENTS, expired)
    samples += (tx.execute(EXPIRED_SESSION_SAMPLES, expired)).rowcount
    sessions = (tx.execute(EXPIRED_SESSION_ROWS, expired)).rowcount
    return Purged(samples, reports, sessions)

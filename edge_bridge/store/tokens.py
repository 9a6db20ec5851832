"""Access tokens edge-bridge issues to the province. Only a SHA-256 hex digest of each token is stored."""

from __future__ import annotations

import hashlib
from datetime import datetime

from edge_bridge.store.db import Tx, to_db

SAVE = "INSERT OR REPLACE INTO issued_tokens (token_hash, issued_at, expires_at) VALUES (?, ?, ?)"
VALID = "SELECT 1 FROM issued_tokens WHERE token_hash = ? AND expires_at > ?"
PURGE = "DELETE FROM issued_tokens WHERE expires_at <= ?"


def token_hash(token: str) -> str:
    """The stored form of ``token``. A header's bytes that are not UTF-8 come as surrogates: hashed as those bytes
    (such a token is merely unknown, never an error)."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def save_token(tx: Tx, token: str, issued_at: datetime, expires_at: datetime) -> None:
    """Remember an issued token (by its digest) until ``expires_at``."""
    tx.execute(SAVE, (token_hash(token), to_db(issued_at), to_db(expires_at)))


def token_valid(tx: Tx, token: str, now: datetime) -> bool:
    """True when ``token`` was issued by us and has not expired at ``now``."""
    return tx.fetchone(VALID, (token_hash(token), to_db(now))) is not None


def purge_expired(tx: Tx, now: datetime) -> int:
    """Forget tokens expired at ``now``. Returns the count."""
    cursor = tx.execute(PURGE, (to_db(now),))
    return cursor.rowcount

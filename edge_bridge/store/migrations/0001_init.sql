-- edge-bridge store, version 1. Times are fixed-width UTC text (db.to_db), so they sort as text.

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: ids order each key
    interface       TEXT    NOT NULL,
    key             TEXT    NOT NULL,                   -- ordering key (connector id, station id, ...)
    payload         TEXT    NOT NULL,                   -- JSON text
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT    NOT NULL,
    next_attempt_at TEXT,
    last_error      TEXT,
    sent_at         TEXT,
    response        TEXT,
    updated_at      TEXT                                -- last enqueue / mark / requeue
);

-- head pending row per key: MIN(id) GROUP BY key is answered from this index alone
CREATE INDEX outbox_pending_head ON outbox (key, id) WHERE state = 'pending';
-- requeue of dead letters
CREATE INDEX outbox_dead ON outbox (id) WHERE state = 'dead';
-- purge of old sent rows
CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE state = 'sent';

CREATE TABLE issued_tokens (
    token_hash TEXT PRIMARY KEY,  -- SHA-256 hex of the token; the token itself is never stored
    issued_at  TEXT NOT NULL,
    expires_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE INDEX issued_tokens_expires_at ON issued_tokens (expires_at);

CREATE TABLE accepted_station_info (
    station_id  TEXT PRIMARY KEY,
    payload     TEXT NOT NULL,  -- JSON text of the StationInfo the province accepted
    accepted_at TEXT NOT NULL
) WITHOUT ROWID;

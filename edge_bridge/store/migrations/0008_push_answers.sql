-- Every answer the province gave a push (issue 9: `edge-bridge outbox show ID`), one row per attempt that got an
-- outcome, written in the transaction that marks the outbox row. An attempt that got no protocol answer (a
-- timeout, a refused connection, an HTTP error, an answer that could not be read or trusted) is recorded too, with
-- ret NULL and the reason. Bounded: the first 20 and the last 20 answers of a row are kept (seq shows the gap), and
-- the answers go with their outbox row (ON DELETE CASCADE: the retention purge of sent rows, `outbox purge`).
CREATE TABLE push_answers (
    outbox_id INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,  -- 1, 2, 3, ... per outbox row, across requeues; a gap: answers not kept
    at        TEXT    NOT NULL,  -- when the outcome was known (UTC, db.to_db)
    outcome   TEXT    NOT NULL CHECK (outcome IN ('accepted', 'transient', 'permanent')),
    ret       INTEGER,           -- the province's Ret; NULL: no protocol answer (the reason says why)
    reason    TEXT    NOT NULL,  -- the province's Msg with its Ret, or why the attempt failed; '' when accepted
    data      TEXT,              -- the answer's Data, decrypted, when there was one
    PRIMARY KEY (outbox_id, seq)  -- the lookup by outbox row, and the cascade, use it
) WITHOUT ROWID;

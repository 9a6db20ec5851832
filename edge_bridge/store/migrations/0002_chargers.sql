-- edge-bridge store, version 2: what the chargers told us (ocpp-bridge §2-§5).
-- Times are fixed-width UTC text (db.to_db); Decimals (Wh, W, %, A, V) are exact text; flags are a JSON list.

CREATE TABLE chargers (
    ocpp_id      TEXT    PRIMARY KEY,
    vendor       TEXT    NOT NULL DEFAULT '',   -- BootNotification
    model        TEXT    NOT NULL DEFAULT '',
    serial       TEXT    NOT NULL DEFAULT '',
    firmware     TEXT    NOT NULL DEFAULT '',
    ocpp_version TEXT    NOT NULL DEFAULT '',   -- '1.6' or '2.0.1'; '' until it connects
    connected    INTEGER NOT NULL DEFAULT 0,    -- a websocket is open now
    offline      INTEGER NOT NULL DEFAULT 0,    -- silent for offline_after_s: its connectors are Status 0
    last_seen    TEXT,                          -- last frame or pong (persisted by the sweep)
    booted_at    TEXT                           -- receive time of the last BootNotification
) WITHOUT ROWID;

CREATE TABLE connectors (
    ocpp_id            TEXT    NOT NULL,
    evse               INTEGER NOT NULL,             -- 1.6 connectorId / 2.0.1 evseId; 0 = the whole charger
    connector          INTEGER NOT NULL,             -- 2.0.1 connectorId; 1 for 1.6
    ocpp_status        TEXT    NOT NULL DEFAULT '',  -- the applied status ('' = none yet)
    error_code         TEXT    NOT NULL DEFAULT '',
    info               TEXT    NOT NULL DEFAULT '',
    vendor_error_code  TEXT    NOT NULL DEFAULT '',
    status_at          TEXT,                         -- charger time of the applied status
    status_received_at TEXT,
    provincial_status  INTEGER,                      -- effective provincial Status last decided (NULL: never)
    power_w            TEXT,                         -- live readings, latest by charger time
    soc                TEXT,
    current_a          TEXT,
    voltage_v          TEXT,
    readings_at        TEXT,
    PRIMARY KEY (ocpp_id, evse, connector)
) WITHOUT ROWID;

-- every StatusNotification, applied or not (an older one is kept but changes nothing)
CREATE TABLE status_reports (
    id                INTEGER PRIMARY KEY,
    ocpp_id           TEXT    NOT NULL,
    evse              INTEGER NOT NULL,
    connector         INTEGER NOT NULL,
    ocpp_status       TEXT    NOT NULL,
    error_code        TEXT    NOT NULL,
    info              TEXT    NOT NULL,
    vendor_error_code TEXT    NOT NULL,
    at                TEXT    NOT NULL,
    received_at       TEXT    NOT NULL,
    applied           INTEGER NOT NULL,
    flags             TEXT    NOT NULL DEFAULT '[]'
);

CREATE TABLE sessions (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,  -- the 1.6 transactionId: positive, never reused
    ocpp_id             TEXT    NOT NULL,
    evse                INTEGER NOT NULL,
    connector           INTEGER NOT NULL,
    version             TEXT    NOT NULL CHECK (version IN ('1.6', '2.0.1')),
    transaction_ref     TEXT,                               -- 2.0.1 transactionId, or str(id) for 1.6
    id_tag              TEXT    NOT NULL DEFAULT '',
    started_at          TEXT    NOT NULL,                   -- charger time
    started_received_at TEXT    NOT NULL,
    ended_at            TEXT,
    ended_received_at   TEXT,
    last_received_at    TEXT    NOT NULL,                   -- last report about it (zombie grace)
    meter_start_wh      TEXT,                               -- 1.6 meterStart
    meter_stop_wh       TEXT,                               -- 1.6 meterStop
    first_register_at   TEXT,                               -- register readings, by charger time
    first_register_wh   TEXT,
    first_nonzero_at    TEXT,
    first_nonzero_wh    TEXT,
    last_register_at    TEXT,
    last_register_wh    TEXT,
    last_sample_at      TEXT,
    energy_wh           TEXT,                               -- NULL: unknown (no baseline or no end reading)
    stop_reason         TEXT    NOT NULL DEFAULT '',        -- OCPP text as reported
    state               TEXT    NOT NULL CHECK (state IN ('open', 'finished')),
    end_source          TEXT    NOT NULL DEFAULT '' CHECK (end_source IN ('', 'stop', 'ended', 'zombie')),
    orphan              INTEGER NOT NULL DEFAULT 0,
    flags               TEXT    NOT NULL DEFAULT '[]',
    start_key           TEXT,                               -- 1.6: charger|connector|idTag|timestamp|meterStart
    stop_key            TEXT,                               -- 1.6 orphan: transactionId|timestamp|meterStop
    charging_state      TEXT    NOT NULL DEFAULT '',        -- 2.0.1 chargingState
    charging_state_at   TEXT
);

-- stop / TransactionEvent → session (NULL refs are distinct: a 1.6 row is inserted before its id is known)
CREATE UNIQUE INDEX sessions_ref ON sessions (ocpp_id, version, transaction_ref);
-- the idempotent 1.6 start and the repeated orphan stop
CREATE UNIQUE INDEX sessions_start_key ON sessions (start_key) WHERE start_key IS NOT NULL;
CREATE UNIQUE INDEX sessions_stop_key ON sessions (ocpp_id, stop_key) WHERE stop_key IS NOT NULL;
-- open sessions of a connector, latest start of a connector
CREATE INDEX sessions_connector ON sessions (ocpp_id, evse, connector, started_at);
-- the sweep and the status report: all open sessions
CREATE INDEX sessions_open ON sessions (started_at) WHERE state = 'open';

CREATE TABLE meter_samples (
    id          INTEGER PRIMARY KEY,
    session_id  INTEGER,                          -- sessions.id; NULL: outside any known session
    ocpp_id     TEXT    NOT NULL,
    evse        INTEGER NOT NULL,
    connector   INTEGER NOT NULL,
    at          TEXT    NOT NULL,                 -- charger time
    received_at TEXT    NOT NULL,
    energy_wh   TEXT,                             -- the Energy.Active.Import.Register
    power_w     TEXT,
    soc         TEXT,
    current_a   TEXT,
    voltage_v   TEXT,
    context     TEXT    NOT NULL DEFAULT '',
    raw         TEXT    NOT NULL DEFAULT '[]'     -- JSON list: unparsable values and SignedData, verbatim
);

-- one sample per connector, moment and context: a replayed frame is not stored twice
CREATE UNIQUE INDEX meter_samples_moment ON meter_samples (ocpp_id, evse, connector, at, context);
-- the energy curve of a session
CREATE INDEX meter_samples_session ON meter_samples (session_id, at) WHERE session_id IS NOT NULL;

-- 2.0.1 TransactionEvent keys: a repeated (charger, transactionId, seqNo) is ignored
CREATE TABLE tx_events (
    ocpp_id         TEXT    NOT NULL,
    transaction_ref TEXT    NOT NULL,
    seq_no          INTEGER NOT NULL,
    event_type      TEXT    NOT NULL,
    received_at     TEXT    NOT NULL,
    PRIMARY KEY (ocpp_id, transaction_ref, seq_no)
) WITHOUT ROWID;

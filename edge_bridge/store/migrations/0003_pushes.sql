-- edge-bridge store, version 3: what the bridge reported about the chargers (ocpp-bridge §7, §8; D8, D10).
-- Times are fixed-width UTC text (db.to_db).

-- the order of a finished session (D10): built once, immutable once queued
ALTER TABLE sessions ADD COLUMN order_state TEXT          -- NULL: not decided (open, or not finished yet)
    CHECK (order_state IN ('queued', 'accepted', 'unconfigured', 'unmeasured'));
ALTER TABLE sessions ADD COLUMN start_charge_seq TEXT;    -- D11, set when the order is queued
ALTER TABLE sessions ADD COLUMN order_outbox_id INTEGER;  -- outbox.id of the notification_orderInfo row
ALTER TABLE sessions ADD COLUMN confirm_result INTEGER;   -- the province's ConfirmResult once accepted

-- the accept hook finds the session of an order by its idempotency key
CREATE UNIQUE INDEX sessions_start_charge_seq ON sessions (start_charge_seq) WHERE start_charge_seq IS NOT NULL;
-- the status report: orders by state, and the session of an outbox row
CREATE INDEX sessions_order_state ON sessions (order_state) WHERE order_state IS NOT NULL;
CREATE INDEX sessions_order_outbox ON sessions (order_outbox_id) WHERE order_outbox_id IS NOT NULL;

-- alarms raised and not yet recovered: a restart neither raises them again nor forgets to recover them
CREATE TABLE active_alarms (
    ocpp_id     TEXT    NOT NULL,
    alarm_key   TEXT    NOT NULL,  -- the fault's identity within the charger (domain/alarm_rules.py)
    evse        INTEGER NOT NULL,  -- where it is (0 = the whole charger)
    connector   INTEGER NOT NULL,
    alarm_code  INTEGER NOT NULL,  -- what was raised: the recovery repeats it even if the code table changed
    alarm_type  INTEGER NOT NULL,
    alarm_level INTEGER NOT NULL,
    note        TEXT    NOT NULL DEFAULT '',
    raised_at   TEXT    NOT NULL,  -- AlarmTime of the raise
    PRIMARY KEY (ocpp_id, alarm_key)
) WITHOUT ROWID;

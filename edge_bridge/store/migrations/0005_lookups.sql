-- Lookups found in review: a station's newest notification_stationInfo (dedupe, LastQueryTime) without scanning the
-- outbox, and a connector's open sessions without visiting every session it ever had.
CREATE INDEX outbox_interface_key ON outbox (interface, key, id);
DROP INDEX sessions_open;
CREATE INDEX sessions_open_on ON sessions (ocpp_id, evse, connector, started_at) WHERE state = 'open';

-- What an order reported, kept beside the live columns: news after the order (a real stop after a zombie close,
-- 2.0.1 readings after Ended) may change energy_wh and ended_at, but the stats must stay the sums of the orders.
ALTER TABLE sessions ADD COLUMN ordered_energy_wh TEXT;
ALTER TABLE sessions ADD COLUMN ordered_ended_at TEXT;

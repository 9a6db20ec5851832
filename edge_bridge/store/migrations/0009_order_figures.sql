-- What each order told the province, kept with its session for reconciliation (`edge-bridge orders`): the outbox
-- row that carried it is purged [retention] outbox_days after it was sent, the session only with the session.
-- Copied from the outbox payload in the transaction that queues the order (store/orders.py KEEP_FIGURES: the same
-- statement as below), so the figures are the pushed text itself: times as the province saw them (local
-- `yyyy-MM-dd HH:mm:ss`), kWh and money as the exact JSON number text (`102.40`, never a float).
ALTER TABLE sessions ADD COLUMN order_payload TEXT;        -- the notification_orderInfo Data JSON as last queued
ALTER TABLE sessions ADD COLUMN order_connector_id TEXT;   -- ConnectorID
ALTER TABLE sessions ADD COLUMN order_start_time TEXT;     -- StartTime, local
ALTER TABLE sessions ADD COLUMN order_end_time TEXT;       -- EndTime, local
ALTER TABLE sessions ADD COLUMN order_total_power TEXT;    -- TotalPower, kWh (Decimal text)
ALTER TABLE sessions ADD COLUMN order_elec_money TEXT;     -- TotalElecMoney, yuan (Decimal text)
ALTER TABLE sessions ADD COLUMN order_service_money TEXT;  -- TotalSeviceMoney, yuan (Decimal text)
ALTER TABLE sessions ADD COLUMN order_total_money TEXT;    -- TotalMoney, yuan (Decimal text)
ALTER TABLE sessions ADD COLUMN order_stop_reason INTEGER; -- StopReason

-- Orders queued before this version: from their outbox row while it exists; the others keep NULL figures (the
-- command shows them without money and says so).
UPDATE sessions SET
    order_payload = o.payload,
    order_connector_id = o.payload ->> '$.ConnectorID',
    order_start_time = o.payload ->> '$.StartTime',
    order_end_time = o.payload ->> '$.EndTime',
    order_total_power = o.payload -> '$.TotalPower',
    order_elec_money = o.payload -> '$.TotalElecMoney',
    order_service_money = o.payload -> '$.TotalSeviceMoney',
    order_total_money = o.payload -> '$.TotalMoney',
    order_stop_reason = o.payload ->> '$.StopReason'
FROM outbox AS o
WHERE o.id = sessions.order_outbox_id AND o.interface = 'notification_orderInfo' AND json_valid(o.payload);

-- `orders list|export`: the decided orders of some local days, by their start (StartTime is started_at, local)
CREATE INDEX sessions_ordered_started ON sessions (started_at) WHERE order_state IS NOT NULL;

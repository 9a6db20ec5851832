-- What each order told the province, kept with its session for reconciliation (`edge-bridge orders`): the outbox
-- row that carried it is purged [retention] outbox_days after it was sent, the session only with the session.
-- Copied from the outbox payload in the transaction that queues the order (store/orders.py KEEP_FIGURES), so the
-- figures read from it are the pushed text itself: times as the province saw them (local `yyyy-MM-dd HH:mm:ss`),
-- kWh and money as the exact JSON number text (`102.40`, never a float). Plain SQL (no JSON operators): the SQLite
-- of an older gateway (3.31 on Ubuntu 20.04) runs it too.
ALTER TABLE sessions ADD COLUMN order_payload TEXT;  -- the notification_orderInfo Data JSON as last queued

-- Orders queued before this version: from their outbox row while it exists; the others keep NULL (the command
-- shows them without money and says so).
UPDATE sessions SET order_payload = (
    SELECT o.payload FROM outbox AS o WHERE o.id = sessions.order_outbox_id AND o.interface = 'notification_orderInfo')
WHERE order_outbox_id IS NOT NULL;

-- `orders list|export`: the decided orders of some local days, by their start (StartTime is started_at, local)
CREATE INDEX sessions_ordered_started ON sessions (started_at) WHERE order_state IS NOT NULL;

-- The uploader reads pending rows in id order (after the ones it loaded, or up to them after a requeue) and keeps
-- each key's order in memory, so the per-key head index is replaced by one over pending ids.
DROP INDEX IF EXISTS outbox_pending_head;
CREATE INDEX outbox_pending ON outbox (id) WHERE state = 'pending';

-- The highest energy register sampled in a session (ocpp-bridge §4): a final reading below it (meterStop 0 from
-- firmware without a meter hook, a reset register) is not believed. Sessions open at the upgrade learn it from the
-- samples they already have.
ALTER TABLE sessions ADD COLUMN highest_register_at TEXT;
ALTER TABLE sessions ADD COLUMN highest_register_wh TEXT;
UPDATE sessions SET (highest_register_at, highest_register_wh) = (
    SELECT m.at, m.energy_wh FROM meter_samples AS m
    WHERE m.session_id = sessions.id AND m.energy_wh IS NOT NULL
    ORDER BY CAST(m.energy_wh AS REAL) DESC, m.at
    LIMIT 1)
WHERE state = 'open';

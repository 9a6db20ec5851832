-- Indexes for the daily retention purge ([retention] in the config).
CREATE INDEX meter_samples_at ON meter_samples (at);
CREATE INDEX status_reports_received_at ON status_reports (received_at);
CREATE INDEX sessions_finished_ended_at ON sessions (ended_at) WHERE state = 'finished';

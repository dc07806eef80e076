-- When each row was written: clock_timestamp() is evaluated per row inside ingest's insert, just
-- before the commit, so stored_at - device_time is the delivery latency up to storage (the
-- benchmark's publish→committed) and stored_at - ingest_time the time spent inside ingest.
ALTER TABLE telemetry ADD COLUMN stored_at timestamptz NOT NULL DEFAULT clock_timestamp();

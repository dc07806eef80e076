-- When each row was written: clock_timestamp() is evaluated per row inside ingest's insert, just
-- before the commit, so stored_at - device_time is the delivery latency up to storage (the
-- benchmark's publish→committed) and stored_at - ingest_time the time spent inside ingest.
-- Rows stored before this migration get its time. The column is added with that time as a
-- constant and the volatile default set afterwards: TimescaleDB refuses ADD COLUMN with a
-- volatile default on a hypertable with compression enabled (and a constant adds no rewrite).
DO $$
BEGIN
    EXECUTE format('ALTER TABLE telemetry ADD COLUMN IF NOT EXISTS stored_at timestamptz NOT NULL DEFAULT %L',
                   clock_timestamp());
END $$;
ALTER TABLE telemetry ALTER COLUMN stored_at SET DEFAULT clock_timestamp();

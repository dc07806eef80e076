-- TimescaleDB only (plain PostgreSQL's telemetry_hourly is a view: always the raw data).
--
-- Late data reaches telemetry_hourly. The refresh policy of 0002 covered the last 3 days only, so a
-- reading stored later than that (a device back from days offline, an LPWA backlog) never reached
-- the aggregate. The refresh window now starts at the beginning of the data: start_offset NULL "is
-- equivalent to MIN(timestamp) of the hypertable" (TimescaleDB's add_continuous_aggregate_policy
-- reference; "the range is open-ended", Refresh continuous aggregates). This does not recompute
-- history at every run: a write below the aggregate's invalidation threshold logs the time range
-- its transaction touched (from its oldest to its newest such row), and a refresh recomputes only
-- the logged ranges inside its window: one reading 12 days late costs its own hour. The first run
-- after this migration also materialises any range an older database never did (an aggregate
-- created WITH NO DATA over existing rows); until then real-time aggregation answers from raw rows.
--
-- Fixed schedules (initial_start given): a failed run is retried at the latest at the next slot,
-- instead of after a back-off of up to 5 schedule intervals. On PostgreSQL 15.20 every scheduled
-- run of TimescaleDB 2.28 is logged as failed after its work is done ("cannot drop portal"), and the
-- back-off (retry period × consecutive failures, at most 5 schedule intervals) stretched the
-- 30-minute refresh towards 2.5 hours. GET /health and /metrics still report every failure.
SELECT remove_continuous_aggregate_policy('telemetry_hourly', if_exists => TRUE);
SELECT add_continuous_aggregate_policy('telemetry_hourly',
       start_offset => NULL, end_offset => INTERVAL '1 hour',
       schedule_interval => INTERVAL '30 minutes', initial_start => TIMESTAMPTZ '2000-01-03 00:00:00+00');
SELECT remove_compression_policy('telemetry', if_exists => TRUE);
SELECT add_compression_policy('telemetry', compress_after => INTERVAL '7 days',
       schedule_interval => INTERVAL '12 hours', initial_start => TIMESTAMPTZ '2000-01-03 00:00:00+00');
SELECT remove_retention_policy('telemetry', if_exists => TRUE);
SELECT add_retention_policy('telemetry', drop_after => INTERVAL '730 days',
       schedule_interval => INTERVAL '1 day', initial_start => TIMESTAMPTZ '2000-01-03 00:00:00+00');

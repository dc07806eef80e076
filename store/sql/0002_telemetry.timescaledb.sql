-- TimescaleDB (the mode store.timeseries chose): `telemetry` becomes a hypertable of 1-day chunks on
-- device time, compressed after 7 days (segment by device), dropped after 730 days, and
-- `telemetry_hourly` a continuous aggregate with real-time aggregation on top (what
-- 0002_telemetry.plain.sql computes as a view). Runs right after 0002_telemetry.sql on a database
-- set up with TimescaleDB, or, when a plain database is converted, after all of its migrations:
-- so it drops the plain view first (create_hypertable moves existing rows into chunks).
-- 0011 changes the policies; the definitions here are those of every database created before it.
DROP VIEW IF EXISTS telemetry_hourly;
SELECT create_hypertable('telemetry', by_range('device_time', INTERVAL '1 day'),
                         if_not_exists => TRUE, migrate_data => TRUE);
ALTER TABLE telemetry SET (timescaledb.compress,
                           timescaledb.compress_segmentby = 'device_id',
                           timescaledb.compress_orderby = 'device_time DESC, seq DESC');
SELECT add_compression_policy('telemetry', compress_after => INTERVAL '7 days', if_not_exists => TRUE);
SELECT add_retention_policy('telemetry', drop_after => INTERVAL '730 days', if_not_exists => TRUE);

-- Per device and UTC hour. No FILTER clause: older continuous aggregates refuse it.
CREATE MATERIALIZED VIEW telemetry_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT device_id,
       time_bucket(INTERVAL '1 hour', device_time) AS bucket,
       count(*) AS messages,
       count(CASE WHEN channel = 'telemetry' THEN 1 END) AS readings,
       sum(size_bytes) AS bytes,
       avg(extract(epoch FROM ingest_time - device_time)) AS mean_latency_s,
       max(extract(epoch FROM ingest_time - device_time)) AS max_latency_s,
       min(battery_pct) AS min_battery_pct,
       avg(battery_pct) AS mean_battery_pct,
       avg(power_w) AS mean_power_w,
       max(energy_wh) AS max_energy_wh,
       avg(temperature_c) AS mean_temperature_c,
       avg(humidity_pct) AS mean_humidity_pct,
       avg(pm25_ugm3) AS mean_pm25_ugm3,
       avg(pm10_ugm3) AS mean_pm10_ugm3,
       avg(co2_ppm) AS mean_co2_ppm,
       avg(noise_dba) AS mean_noise_dba
FROM telemetry
GROUP BY device_id, bucket
WITH NO DATA;
SELECT add_continuous_aggregate_policy('telemetry_hourly',
       start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour',
       schedule_interval => INTERVAL '30 minutes', if_not_exists => TRUE);

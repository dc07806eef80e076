-- Plain PostgreSQL (the mode store.timeseries chose): `telemetry_hourly` is an ordinary view with
-- the columns of the continuous aggregate of 0002_telemetry.timescaledb.sql, bucketed by date_bin
-- from time_bucket's own origin (2000-01-03, UTC), so both give the same buckets.
CREATE VIEW telemetry_hourly AS
SELECT device_id,
       date_bin(INTERVAL '1 hour', device_time, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
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
GROUP BY device_id, bucket;

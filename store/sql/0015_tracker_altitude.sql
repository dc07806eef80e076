-- A tracker's altitude (devices.telemetry.LocationTrackerTelemetry.altitude_m), metres as the
-- device reports it (GNSS: above the WGS 84 ellipsoid or mean sea level, by receiver).
-- Nullable with no default: no rewrite, and allowed on a hypertable with compressed chunks.
ALTER TABLE telemetry ADD COLUMN altitude_m double precision;

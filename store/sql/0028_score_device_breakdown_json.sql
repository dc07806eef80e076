-- score_device_breakdown.devices as json, not jsonb (issue 16): nothing queries inside it, and the
-- scorecard reads it whole. For 1,000 devices (1.8 MB of JSON) a jsonb value took ~90 ms to read,
-- most of it PostgreSQL writing jsonb back out as text; json is kept as the text given, ~20 ms
-- (and its floats stay exactly as written). A plain table: the same on PostgreSQL and TimescaleDB.
ALTER TABLE score_device_breakdown DROP CONSTRAINT score_device_breakdown_devices_check;
ALTER TABLE score_device_breakdown ALTER COLUMN devices TYPE json USING devices::json;
ALTER TABLE score_device_breakdown ADD CONSTRAINT score_device_breakdown_devices_check
    CHECK (json_typeof(devices) = 'array');

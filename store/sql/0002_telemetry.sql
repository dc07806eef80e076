-- Every accepted message of contract v1, one row each, whatever its channel.
-- Identity is (device_id, seq, device_time): a redelivered message is byte-identical and adds
-- nothing (INSERT ... ON CONFLICT DO NOTHING), while a device whose counter restarts after a
-- reboot sends new times and so new rows. device_time is in the key because a TimescaleDB
-- hypertable's unique indexes must hold its partitioning column.
CREATE TABLE telemetry (
    device_id      text NOT NULL,
    seq            bigint NOT NULL CHECK (seq BETWEEN 0 AND 4294967295),
    device_time    timestamptz NOT NULL,
    ingest_time    timestamptz NOT NULL,
    channel        text NOT NULL CHECK (channel IN ('telemetry', 'status', 'event')),
    size_bytes     integer NOT NULL,
    -- smart switch
    relay_on       boolean,
    power_w        double precision,
    energy_wh      double precision,
    trigger        text,
    -- location tracker
    lat            double precision,
    lon            double precision,
    accuracy_m     double precision,
    speed_mps      double precision,
    fix_type       text,
    -- environment sensor
    temperature_c  double precision,
    humidity_pct   double precision,
    pm25_ugm3      double precision,
    pm10_ugm3      double precision,
    co2_ppm        double precision,
    noise_dba      double precision,
    -- any kind
    battery_pct    double precision,
    -- status channel
    state          text,
    rssi_dbm       double precision,
    uptime_s       bigint,
    firmware       text,
    -- event channel
    event          text,
    detail         jsonb,
    PRIMARY KEY (device_id, seq, device_time)
);
CREATE INDEX telemetry_device_time_idx ON telemetry (device_id, device_time DESC);

-- Payloads that could not be stored as telemetry, with the reason (pilotlab.errors.RejectReason).
-- A redelivered bad message (same topic, same bytes) is kept once.
CREATE TABLE dead_letter (
    id              bigserial PRIMARY KEY,
    received_at     timestamptz NOT NULL,
    topic           text NOT NULL,
    payload         bytea NOT NULL,
    payload_sha256  bytea NOT NULL,
    reason          text NOT NULL,
    detail          text NOT NULL,
    pilot_id        text,
    device_id       text,
    UNIQUE (topic, payload_sha256)
);
CREATE INDEX dead_letter_received_idx ON dead_letter (received_at DESC);
CREATE INDEX dead_letter_device_idx ON dead_letter (device_id, received_at DESC);

-- What migrate found about the server, read by the queries that differ (store.timeseries).
CREATE TABLE store_capability (
    name     text PRIMARY KEY,
    enabled  boolean NOT NULL
);

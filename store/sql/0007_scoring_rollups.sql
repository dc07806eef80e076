-- Scoring rollups (scoring/daily.py): one row per device, rubric and pilot-local day holding
-- mergeable quantities, so a score reads ~90 k rows instead of ~26 M readings. A plain table
-- maintained by pilotlab, the same on PostgreSQL and TimescaleDB (why not a continuous aggregate:
-- see scoring/daily.py).
CREATE TABLE scoring_day (
    device_id        text NOT NULL REFERENCES device (id) ON DELETE CASCADE,
    rubric_digest    text NOT NULL,          -- SHA-256 of the rubric's parameters (scoring.daily)
    day_start        timestamptz NOT NULL,   -- the local day's start, UTC
    day              date NOT NULL,          -- the local day
    day_end          timestamptz NOT NULL,
    anchor           timestamptz NOT NULL,   -- the device window start slots and QC are anchored at
    interval_s       integer NOT NULL,       -- the declared interval it was computed for
    span_from        timestamptz NOT NULL,   -- readings in [span_from, span_to] were read: a reading
    span_to          timestamptz NOT NULL,   --   stored there later makes the row stale
    complete_to      timestamptz NOT NULL,   -- every reading stored before it was committed when computed
    readings         integer NOT NULL,
    valid            integer NOT NULL,
    suspect          integer NOT NULL,
    fail             integer NOT NULL,
    duplicates       integer NOT NULL,
    future           integer NOT NULL,
    skewed           integer NOT NULL,
    slots_hit        integer NOT NULL,       -- distinct slots hit inside the day
    first_slot       bigint,
    last_slot        bigint,
    first_valid      timestamptz,
    last_valid       timestamptz,
    inner_outages    integer NOT NULL,       -- silences > outage threshold between the day's valid readings
    inner_outage_s   double precision NOT NULL,
    bat_n            double precision NOT NULL,  -- least squares of battery_pct on x = epoch - anchor
    bat_sx           double precision NOT NULL,
    bat_sy           double precision NOT NULL,
    bat_sxy          double precision NOT NULL,
    bat_sxx          double precision NOT NULL,
    fixes            integer,
    hb_intervals     integer,
    hb_regular       integer,
    first_hb         double precision,       -- epoch of the day's first and last valid heartbeat
    last_hb          double precision,
    lat_buckets      integer[],              -- latency histogram of valid readings (scoring.histogram)
    lat_counts       integer[],
    acc_buckets      integer[],              -- accuracy histogram of valid fixes
    acc_counts       integer[],
    cum_days         integer,                -- the running histograms over the anchor's day through this
    cum_lat_buckets  integer[],              --   one (so a score reads one row's histograms per device,
    cum_lat_counts   integer[],              --   not 90 days' worth)
    cum_acc_buckets  integer[],
    cum_acc_counts   integer[],
    lead_time        timestamptz,            -- the reading after the day's last one, if any
    tail_needs_next  boolean NOT NULL,       -- the day's last reading's flag depends on that reading
    PRIMARY KEY (device_id, rubric_digest, day_start)
);

-- Up to which stored_at a device's rollups have been checked for late readings.
CREATE TABLE scoring_check (
    device_id      text NOT NULL REFERENCES device (id) ON DELETE CASCADE,
    rubric_digest  text NOT NULL,
    checked_to     timestamptz NOT NULL,
    PRIMARY KEY (device_id, rubric_digest)
);

-- Finding readings stored since a time without reading the table: telemetry is appended, so
-- stored_at follows the physical order and a BRIN index (a few pages) prunes all but the newest.
CREATE INDEX telemetry_stored_at_brin ON telemetry USING brin (stored_at);

-- LPWA network servers and gateways: DevEUIs, network-server applications, uplink frames and
-- their receptions, joins, gateway messages, and per-device-per-hour uplink loss for scoring.

-- A LoRaWAN device is known to its network server by its DevEUI (16 lower-case hex digits).
ALTER TABLE device ADD COLUMN dev_eui text UNIQUE CHECK (dev_eui ~ '^[0-9a-f]{16}$');

-- Which network-server application belongs to which pilot: an uplink from an application
-- registered to another pilot than its device's is refused (pilot_mismatch).
-- ChirpStack: application_id is the application UUID; The Things Stack: "{application}@{tenant}".
CREATE TABLE network_server_application (
    network_server  text NOT NULL CHECK (network_server IN ('chirpstack', 'tts')),
    application_id  text NOT NULL CHECK (length(application_id) BETWEEN 1 AND 200),
    pilot_id        text NOT NULL REFERENCES pilot (id) ON DELETE RESTRICT,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (network_server, application_id)
);

-- Every uplink frame pilotlab heard of, whether or not its payload decoded: the frame counter
-- record that loss is counted from. fcnt is the full 32-bit counter (16-bit sources unwrapped);
-- uplink_time is the network server's time of the uplink (ChirpStack `time`, TTS
-- `uplink_message.received_at`). Redelivered or multi-gateway copies are one frame.
CREATE TABLE uplink_frame (
    device_id       text NOT NULL REFERENCES device (id) ON DELETE CASCADE,
    fcnt            bigint NOT NULL CHECK (fcnt BETWEEN 0 AND 4294967295),
    uplink_time     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    network_server  text NOT NULL,
    f_port          smallint,
    PRIMARY KEY (device_id, fcnt, uplink_time)
);
CREATE INDEX uplink_frame_time_idx ON uplink_frame (device_id, uplink_time);

-- Link metadata: one row per gateway that received a frame.
CREATE TABLE uplink_reception (
    device_id         text NOT NULL,
    fcnt              bigint NOT NULL,
    uplink_time       timestamptz NOT NULL,
    gateway_id        text NOT NULL,
    rssi_dbm          double precision,
    snr_db            double precision,
    spreading_factor  smallint,
    bandwidth_hz      integer,
    frequency_hz      bigint,
    data_rate         text,
    PRIMARY KEY (device_id, fcnt, uplink_time, gateway_id),
    FOREIGN KEY (device_id, fcnt, uplink_time) REFERENCES uplink_frame ON DELETE CASCADE
);

-- (Re)joins: a join starts a new frame-counter session (the counter restarts at 0).
CREATE TABLE lorawan_join (
    device_id       text NOT NULL REFERENCES device (id) ON DELETE CASCADE,
    joined_at       timestamptz NOT NULL,
    network_server  text NOT NULL,
    dev_addr        text,
    PRIMARY KEY (device_id, joined_at)
);

-- Wi-Fi gateway batches and heartbeats, for gateway health.
CREATE TABLE gateway_message (
    gateway_id      text NOT NULL REFERENCES gateway (id) ON DELETE CASCADE,
    gateway_time    timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('batch', 'status')),
    seq             bigint NOT NULL,
    readings        integer,
    refused         integer,
    state           text,
    uptime_s        bigint,
    firmware        text,
    PRIMARY KEY (gateway_id, kind, seq, gateway_time)
);
CREATE INDEX gateway_message_seen_idx ON gateway_message (gateway_id, received_at DESC);

-- Lost uplinks per device and hour, for scoring. Computed from uplink_frame, so it is exact
-- whatever the arrival order: frames are put in network-server time order; a session ends at a
-- join or where the counter goes back (reboot or rejoin); within a session the frames missing
-- between two heard counters are lost, charged to the hour of the frame after the gap. After a
-- join the counters from 0 up to the first heard frame are lost too; before the first frame
-- ever heard of a device nothing is assumed.
CREATE VIEW uplink_loss_hourly AS
WITH ordered AS (
    SELECT f.device_id, f.fcnt, f.uplink_time,
           lag(f.fcnt) OVER w AS prev_fcnt,
           lag(f.uplink_time) OVER w AS prev_time
    FROM uplink_frame f
    WINDOW w AS (PARTITION BY f.device_id ORDER BY f.uplink_time, f.fcnt)
), marked AS (
    SELECT o.*,
           EXISTS (SELECT 1 FROM lorawan_join j
                   WHERE j.device_id = o.device_id AND j.joined_at <= o.uplink_time
                     AND (o.prev_time IS NULL OR j.joined_at > o.prev_time)) AS joined_before
    FROM ordered o
), counted AS (
    SELECT device_id, uplink_time,
           CASE WHEN joined_before OR (prev_fcnt IS NOT NULL AND fcnt < prev_fcnt) THEN 1 ELSE 0 END AS reset,
           CASE WHEN prev_fcnt IS NOT NULL AND fcnt = prev_fcnt AND NOT joined_before THEN 0 ELSE 1 END AS heard,
           CASE
               WHEN joined_before OR (prev_fcnt IS NOT NULL AND fcnt < prev_fcnt) THEN fcnt
               WHEN prev_fcnt IS NULL THEN 0
               ELSE greatest(fcnt - prev_fcnt - 1, 0)
           END AS lost_before
    FROM marked
)
SELECT device_id,
       date_trunc('hour', uplink_time, 'UTC') AS hour,
       sum(heard)::bigint AS received,
       sum(lost_before)::bigint AS lost,
       (sum(heard) + sum(lost_before))::bigint AS expected,
       sum(reset)::integer AS counter_resets
FROM counted
GROUP BY device_id, date_trunc('hour', uplink_time, 'UTC');

-- Commands to smart switches (issue 18): what was asked of a device, when, until when, and how it
-- ended (store/commands.py). Plain tables only: the same on PostgreSQL and TimescaleDB.

-- The API's own broker account publishes the commands (and ChirpStack / TTS downlinks).
ALTER TABLE broker_account DROP CONSTRAINT broker_account_kind_check;
ALTER TABLE broker_account ADD CONSTRAINT broker_account_kind_check
    CHECK (kind IN ('device', 'gateway', 'ingest', 'simulator', 'network_server', 'api'));

-- id: the correlation id the device echoes. sent_at: taken just before the publish (latency starts
-- there); acked_at: when the platform received the acknowledgement (an ack message, or the first
-- matching report: ack_via). failed_by 'broker': never taken by the broker, not the device's doing.
CREATE TABLE switch_command (
    id                 text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
    device_id          text NOT NULL REFERENCES device (id) ON DELETE CASCADE,
    relay_on           boolean NOT NULL,
    transport          text NOT NULL CHECK (transport IN ('mqtt', 'chirpstack', 'tts')),
    topic              text NOT NULL CHECK (length(topic) <= 300),
    sent_at            timestamptz NOT NULL,
    expires_at         timestamptz NOT NULL CHECK (expires_at > sent_at),
    requested_by       text NOT NULL DEFAULT '' CHECK (length(requested_by) <= 64),
    state              text NOT NULL DEFAULT 'sent' CHECK (state IN ('sent', 'acknowledged', 'failed', 'expired')),
    acked_at           timestamptz,
    ack_via            text CHECK (ack_via IN ('ack', 'report')),
    reported_relay_on  boolean,
    failed_by          text CHECK (failed_by IN ('broker', 'device')),
    detail             text CHECK (length(detail) <= 500),
    CHECK ((acked_at IS NULL) = (ack_via IS NULL)),
    CHECK (state <> 'acknowledged' OR acked_at IS NOT NULL),
    CHECK ((state = 'failed') = (failed_by IS NOT NULL))
);
CREATE INDEX switch_command_device_idx ON switch_command (device_id, sent_at);
CREATE INDEX switch_command_pending_idx ON switch_command (expires_at) WHERE state = 'sent';

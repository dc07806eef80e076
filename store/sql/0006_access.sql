-- Access control (access/): broker accounts of devices, gateways and services, and API keys.
-- Only hashes of secrets are stored; a secret is shown once, when it is issued.

-- One MQTT account per device, gateway or service. Username = the device or gateway id.
-- password_hash is PBKDF2-HMAC-SHA512 in Mosquitto's dynamic-security format
-- ("pbkdf2-sha512$<iterations>$<salt b64>$<hash b64>"), so an account lost by the broker can be
-- written back from here without its secret (access.sync.restore_config).
CREATE TABLE broker_account (
    username        text PRIMARY KEY CHECK (username ~ '^[A-Za-z0-9_.-]{1,64}$'),
    kind            text NOT NULL CHECK (kind IN ('device', 'gateway', 'ingest', 'simulator', 'network_server')),
    device_id       text UNIQUE REFERENCES device (id) ON DELETE CASCADE,
    gateway_id      text UNIQUE REFERENCES gateway (id) ON DELETE CASCADE,
    pilot_id        text REFERENCES pilot (id) ON DELETE CASCADE,  -- a simulator's scope; NULL: every pilot
    password_hash   text NOT NULL CHECK (password_hash LIKE 'pbkdf2-sha512$%'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    rotated_at      timestamptz,
    revoked_at      timestamptz,
    revoke_reason   text,
    CHECK ((kind = 'device') = (device_id IS NOT NULL)),
    CHECK ((kind = 'gateway') = (gateway_id IS NOT NULL)),
    CHECK (device_id IS NULL OR username = device_id),
    CHECK (gateway_id IS NULL OR username = gateway_id),
    CHECK (pilot_id IS NULL OR kind = 'simulator'),
    CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL))
);

-- API keys: "plk_<id>_<secret>"; secret_hash = SHA-256 of the whole key (a 256-bit random key
-- needs no slow hash, and a fast one keeps every request cheap).
CREATE TABLE api_key (
    id              text PRIMARY KEY CHECK (id ~ '^[a-z0-9]{12}$'),
    secret_hash     bytea NOT NULL,
    role            text NOT NULL CHECK (role IN ('admin', 'pilot_manager', 'firm', 'reviewer', 'provisioning')),
    firm_id         text REFERENCES firm (id) ON DELETE CASCADE,
    pilot_ids       text[] NOT NULL DEFAULT '{}',
    name            text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_used_at    timestamptz,
    revoked_at      timestamptz,
    CHECK ((role = 'firm') = (firm_id IS NOT NULL)),
    CHECK ((role = 'pilot_manager') = (cardinality(pilot_ids) > 0))
);

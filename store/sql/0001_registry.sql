-- Registry: firms, pilots, gateways, devices.
CREATE TABLE firm (
    id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    contact     text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE pilot (
    id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    firm_id     text NOT NULL REFERENCES firm (id) ON DELETE RESTRICT,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    site        text NOT NULL CHECK (length(site) BETWEEN 1 AND 200),
    stage       smallint NOT NULL DEFAULT 3 CHECK (stage BETWEEN 1 AND 4),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz,
    status      text NOT NULL DEFAULT 'planned'
                CHECK (status IN ('planned', 'running', 'completed', 'cancelled')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at IS NULL OR ends_at > starts_at)
);
CREATE INDEX pilot_firm_idx ON pilot (firm_id);

CREATE TABLE gateway (
    id                   text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    pilot_id             text NOT NULL REFERENCES pilot (id) ON DELETE RESTRICT,
    protocol             text NOT NULL CHECK (protocol IN ('wifi', 'lorawan', 'cellular')),
    description          text,
    commissioned_at      timestamptz NOT NULL DEFAULT now(),
    decommissioned_at    timestamptz,
    decommission_reason  text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    CHECK ((decommissioned_at IS NULL) = (decommission_reason IS NULL))
);

CREATE TABLE device (
    id                   text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    pilot_id             text NOT NULL REFERENCES pilot (id) ON DELETE RESTRICT,
    kind                 text NOT NULL CHECK (kind IN ('smart_switch', 'location_tracker', 'env_sensor')),
    connectivity         text NOT NULL CHECK (connectivity IN ('wifi', 'lpwa', 'cellular')),
    reporting_interval_s integer NOT NULL CHECK (reporting_interval_s BETWEEN 1 AND 604800),
    gateway_id           text REFERENCES gateway (id) ON DELETE RESTRICT,
    model                text,
    commissioned_at      timestamptz NOT NULL DEFAULT now(),
    decommissioned_at    timestamptz,
    decommission_reason  text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    CHECK ((decommissioned_at IS NULL) = (decommission_reason IS NULL)),
    CHECK (decommissioned_at IS NULL OR decommissioned_at >= commissioned_at)
);
CREATE INDEX device_pilot_idx ON device (pilot_id);
CREATE INDEX device_gateway_idx ON device (gateway_id);

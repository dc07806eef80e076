-- Device profiles (devices.profiles): a device model's codecs and measurement mapping, versioned.
-- A profile belongs to a firm (firm_id), or to nobody (NULL): a public profile, made by an admin,
-- that any firm's devices may use. Its kind is fixed for its life, as a device's is.
CREATE TABLE device_profile (
    id               text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    firm_id          text REFERENCES firm (id) ON DELETE RESTRICT,
    kind             text NOT NULL CHECK (kind IN ('smart_switch', 'location_tracker', 'env_sensor')),
    current_version  integer NOT NULL DEFAULT 1 CHECK (current_version >= 1),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_profile_firm_idx ON device_profile (firm_id);

-- Every version, kept: a stored reading names the version that decoded it (telemetry.profile_version).
CREATE TABLE device_profile_version (
    profile_id  text NOT NULL REFERENCES device_profile (id) ON DELETE CASCADE,
    version     integer NOT NULL CHECK (version >= 1),
    definition  jsonb NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (profile_id, version)
);

-- A version is immutable: a change is a new version.
CREATE FUNCTION device_profile_version_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'device profile % version % is immutable; a change makes a new version',
        OLD.profile_id, OLD.version USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER device_profile_version_immutable BEFORE UPDATE ON device_profile_version
    FOR EACH ROW EXECUTE FUNCTION device_profile_version_immutable();

ALTER TABLE device ADD COLUMN profile_id text REFERENCES device_profile (id) ON DELETE RESTRICT;
CREATE INDEX device_profile_idx ON device (profile_id);

-- The profile version that decoded a reading (NULL: contract v1 payloads, and rows stored before).
-- Nullable with no default: no rewrite, and allowed on a hypertable with compressed chunks.
ALTER TABLE telemetry ADD COLUMN profile_version integer;

-- Demand-supply matching (issue 16): a city department's key role, and the requirements it saves.
-- Plain tables only: the same on PostgreSQL and TimescaleDB.
ALTER TABLE api_key DROP CONSTRAINT api_key_role_check;
ALTER TABLE api_key ADD CONSTRAINT api_key_role_check
    CHECK (role IN ('admin', 'pilot_manager', 'firm', 'reviewer', 'provisioning', 'department'));

-- What a department wants a device kind to have proved in a pilot. A NULL threshold asks nothing.
-- checked_at: when its matches were last shown, so a record issued since is marked new.
CREATE TABLE requirement (
    id                  bigserial PRIMARY KEY,
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind                text NOT NULL,
    min_availability    double precision CHECK (min_availability BETWEEN 0 AND 1),
    min_completeness    double precision CHECK (min_completeness BETWEEN 0 AND 1),
    max_qc_fail_share   double precision CHECK (max_qc_fail_share BETWEEN 0 AND 1),
    min_battery_ratio   double precision CHECK (min_battery_ratio >= 0),
    min_pilot_days      double precision CHECK (min_pilot_days >= 0),
    min_verdict         text NOT NULL CHECK (min_verdict IN ('eligible', 'conditional', 'not_eligible')),
    created_by          text NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL DEFAULT now(),
    checked_at          timestamptz
);

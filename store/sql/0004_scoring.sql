-- Scoring (issue 4): the pilot's time zone, the battery life a firm claims per device, daily score
-- history and issued reference records. Stored times stay UTC; days are the pilot's local days.
ALTER TABLE pilot ADD COLUMN timezone text NOT NULL DEFAULT 'UTC'
    CHECK (timezone ~ '^[A-Za-z0-9_+/-]{1,64}$');
ALTER TABLE device ADD COLUMN claimed_battery_days double precision
    CHECK (claimed_battery_days IS NULL OR claimed_battery_days > 0);

-- One row per pilot, local day and rubric version: the scheduled daily rescoring (and any
-- rescoring of the same day replaces it).
CREATE TABLE score_history (
    pilot_id        text NOT NULL REFERENCES pilot (id) ON DELETE CASCADE,
    scored_on       date NOT NULL,            -- the pilot-local day whose end is the window end
    rubric_version  text NOT NULL,
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL,
    score           double precision NOT NULL,
    verdict         text NOT NULL,
    summary         jsonb NOT NULL,            -- pooled metrics and gates
    scored_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pilot_id, scored_on, rubric_version)
);

-- Signed reference records, kept byte for byte as issued.
CREATE TABLE reference_record (
    id              text PRIMARY KEY,          -- sha256 hex of the signed file
    pilot_id        text NOT NULL REFERENCES pilot (id) ON DELETE CASCADE,
    issued_at       timestamptz NOT NULL,
    rubric_version  text NOT NULL,
    verdict         text NOT NULL,
    score           double precision NOT NULL,
    key_id          text NOT NULL,
    document        bytea NOT NULL
);
CREATE INDEX reference_record_pilot_idx ON reference_record (pilot_id, issued_at DESC);

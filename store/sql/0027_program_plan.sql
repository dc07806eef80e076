-- The program's rolling plan (issue 18): what the city expects its pilots to reach in a year, set
-- by an admin and read beside what pilots achieved (api.program_plan). Plain tables only: the same
-- on PostgreSQL and TimescaleDB. One writer: store/program_plans.py.
CREATE TABLE program_plan (
    year          smallint PRIMARY KEY CHECK (year BETWEEN 2000 AND 2100),
    pilots        integer NOT NULL CHECK (pilots >= 0),        -- pilots run in the year
    devices       integer NOT NULL CHECK (devices >= 0),       -- devices scored in them
    stage4_firms  integer NOT NULL CHECK (stage4_firms >= 0),  -- firms reaching stage 4
    note          text NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    updated_by    text NOT NULL DEFAULT '',
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Target availability per device kind (a share, 0-1); a kind without a row has no target.
CREATE TABLE program_plan_availability (
    year          smallint NOT NULL REFERENCES program_plan (year) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('smart_switch', 'location_tracker', 'env_sensor')),
    availability  double precision NOT NULL CHECK (availability BETWEEN 0 AND 1),
    PRIMARY KEY (year, kind)
);

-- The scorecard's device table (issue 16): every device's breakdown of a stored daily score, as the
-- API and a record's evidence give it (a JSON array in device id order), stored with the score
-- (scoring.stored_breakdowns) so a page reads it instead of recomputing it from the day summaries.
-- scored_at is its score's when stored: a row whose scored_at is no longer its score's (the day was
-- scored again by a writer that keeps none) is not shown. A plain table: the same on PostgreSQL
-- and TimescaleDB.
CREATE TABLE score_device_breakdown (
    pilot_id        text NOT NULL,
    scored_on       date NOT NULL,
    rubric_version  text NOT NULL,
    scored_at       timestamptz NOT NULL,
    devices         jsonb NOT NULL CHECK (jsonb_typeof(devices) = 'array'),
    PRIMARY KEY (pilot_id, scored_on, rubric_version),
    FOREIGN KEY (pilot_id, scored_on, rubric_version)
        REFERENCES score_history (pilot_id, scored_on, rubric_version) ON DELETE CASCADE
);

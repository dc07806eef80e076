-- Delivery apart from data quality (scoring/delivery.py, rubric v2, issue 15): each day summary
-- counts its *delivered* readings (rubric v2: every reading that arrived but a repeat of the
-- previous device time; v1: the valid ones), keeps the QC counts per test, the outages inside the
-- day with their start and end, and the runs of QC-failed readings that quality incidents are made
-- of (scoring/incidents.py). First and last reading and outages are now of delivered readings.
--
-- Every summary from before is deleted, with its late-data checks: none holds the new quantities,
-- and every rubric's digest changed (its parameters gained `delivery` and `quality`), so none
-- would be read again. They are rebuilt at the next scoring. scoring_day is a plain table in both
-- modes (migration 0007): nothing here touches telemetry or its chunks.
DELETE FROM scoring_day;
DELETE FROM scoring_check;
ALTER TABLE scoring_day RENAME COLUMN first_valid TO first_delivered;
ALTER TABLE scoring_day RENAME COLUMN last_valid TO last_delivered;
ALTER TABLE scoring_day DROP COLUMN inner_outages;    -- the day's outages are now listed (outage_list)
ALTER TABLE scoring_day DROP COLUMN inner_outage_s;
ALTER TABLE scoring_day ADD COLUMN delivered integer NOT NULL;
ALTER TABLE scoring_day ADD COLUMN qc_tests jsonb NOT NULL;    -- {test: [suspect, fail, not evaluated]}
ALTER TABLE scoring_day ADD COLUMN tail_spike jsonb;            -- the last reading's spike flags {test: flag}
ALTER TABLE scoring_day ADD COLUMN first_ok timestamptz;        -- the day's first valid reading
ALTER TABLE scoring_day ADD COLUMN outage_list jsonb;           -- [[last before, next] epochs] inside the day
ALTER TABLE scoring_day ADD COLUMN fail_runs jsonb;             -- [[start, end | null, head, [tests]]]

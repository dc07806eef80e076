-- Scoring follows the measurements a device's profile declares (scoring/declared.py, issue 14):
-- each day summary counts its *complete* valid readings (carrying every measurement the reading's
-- profile version declares), the valid readings carrying each measurement (`carried`, a JSON
-- object measurement -> count), and records the declaration it was computed for (`profile_key`:
-- the profile and its current version's measurements; '' for a device without a profile), because
-- QC runs only on declared measurements. A summary is used only for the same key.
--
-- Summaries from before: for a device without a profile every valid reading is complete and QC is
-- unchanged, so those rows stand with complete = valid (their `carried` stays NULL: only a
-- profile's measurements are reported). Those of devices with a profile are deleted and rebuilt at
-- the next scoring (for them QC and completeness both change). scoring_day is a plain table in
-- both modes (migration 0007), so nothing here touches telemetry or its chunks.
DELETE FROM scoring_day s USING device d WHERE d.id = s.device_id AND d.profile_id IS NOT NULL;
ALTER TABLE scoring_day ADD COLUMN complete integer;
UPDATE scoring_day SET complete = valid;
ALTER TABLE scoring_day ALTER COLUMN complete SET NOT NULL;
ALTER TABLE scoring_day ADD COLUMN carried jsonb;
ALTER TABLE scoring_day ADD COLUMN profile_key text NOT NULL DEFAULT '';
ALTER TABLE scoring_day ALTER COLUMN profile_key DROP DEFAULT;

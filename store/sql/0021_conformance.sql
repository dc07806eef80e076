-- Onboarding conformance (issue 17, conformance/): a device's runs against the contract and its
-- profile, their signed reports, the pilot flag that requires a passed report before a device is
-- commissioned, and the QoS-0 deliveries a run reads. Plain tables in both modes: nothing here
-- touches telemetry or its chunks.

ALTER TABLE pilot ADD COLUMN conformance_required boolean NOT NULL DEFAULT false;

-- Contract messages (pilotlab/v1/…: native MQTT devices and Wi-Fi gateways) that reached ingest at
-- QoS 0 although the contract asks for QoS 1, per registered device and UTC day received; kept by
-- ingest in the batch's transaction (ingest/tally.py). A row exists only for a day that had one.
CREATE TABLE qos0_day (
    device_id  text NOT NULL REFERENCES device (id) ON DELETE CASCADE,
    day        date NOT NULL,
    messages   integer NOT NULL CHECK (messages > 0),
    PRIMARY KEY (device_id, day)
);

-- One device observed for [started_at, ends_at) through the ordinary ingest path. `thresholds` is
-- the conformance profile it is judged by (the validated file, so a report made later uses what the
-- run started with); `baseline` holds ingest's counters at the start (qos0_day's sum).
CREATE TABLE conformance_run (
    id                text PRIMARY KEY CHECK (id ~ '^cr_[0-9a-f]{16}$'),
    device_id         text NOT NULL REFERENCES device (id) ON DELETE CASCADE,
    started_at        timestamptz NOT NULL,
    ends_at           timestamptz NOT NULL,
    thresholds        jsonb NOT NULL,
    thresholds_digest text NOT NULL,
    baseline          jsonb NOT NULL,
    finished_at       timestamptz,
    passed            boolean,
    report_id         text,
    CHECK (ends_at > started_at),
    CHECK ((finished_at IS NULL) = (passed IS NULL) AND (finished_at IS NULL) = (report_id IS NULL))
);
CREATE INDEX conformance_run_device_idx ON conformance_run (device_id, started_at DESC);

-- Signed conformance reports, kept byte for byte as issued (id: SHA-256 hex of the file).
CREATE TABLE conformance_report (
    id         text PRIMARY KEY,
    run_id     text NOT NULL UNIQUE REFERENCES conformance_run (id) ON DELETE CASCADE,
    device_id  text NOT NULL REFERENCES device (id) ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL,
    passed     boolean NOT NULL,
    key_id     text NOT NULL,
    document   bytea NOT NULL
);
CREATE INDEX conformance_report_device_idx ON conformance_report (device_id, issued_at DESC);

-- The transparency log (0017) gets a second source of leaves: every stored conformance report is
-- appended exactly as a reference record is, under the same lock, by the same function. Existing
-- leaves keep their index and hash (a column with a constant default rewrites no row and fires no
-- UPDATE trigger), so every tree head and proof issued before stays valid.
ALTER TABLE transparency_leaf ADD COLUMN source text NOT NULL DEFAULT 'reference_record'
    CHECK (source IN ('reference_record', 'conformance_report'));

CREATE FUNCTION transparency_append_leaf() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE transparency_leaf IN SHARE ROW EXCLUSIVE MODE;
    INSERT INTO transparency_leaf (leaf_index, record_id, leaf_hash, source)
    SELECT coalesce(max(leaf_index) + 1, 0), NEW.id, sha256(decode('00', 'hex') || NEW.document), TG_TABLE_NAME
    FROM transparency_leaf;
    RETURN NULL;
END $$;

DROP TRIGGER reference_record_logged ON reference_record;
DROP FUNCTION transparency_append_record();
CREATE TRIGGER reference_record_logged AFTER INSERT ON reference_record
    FOR EACH ROW EXECUTE FUNCTION transparency_append_leaf();
CREATE TRIGGER conformance_report_logged AFTER INSERT ON conformance_report
    FOR EACH ROW EXECUTE FUNCTION transparency_append_leaf();

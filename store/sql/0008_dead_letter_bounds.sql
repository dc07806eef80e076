-- Dead letters that can always be written (issue 12): a device chooses its topic's last level and
-- its payload, so nothing of either may reach a btree unbounded. A 3,000-character topic made the
-- old UNIQUE (topic, payload_sha256) index refuse the row ("index row size exceeds btree version 4
-- maximum"), and ingest stalled on it. The key is now the SHA-256 of the full topic beside that of
-- the full payload (the same bad message redelivered is still kept once); `topic` and `payload`
-- hold bounded prefixes (ingest.writer) and `payload_size` the true size of the payload.
ALTER TABLE dead_letter ADD COLUMN IF NOT EXISTS topic_sha256 bytea;
ALTER TABLE dead_letter ADD COLUMN IF NOT EXISTS payload_size integer;
UPDATE dead_letter SET topic_sha256 = sha256(convert_to(topic, 'UTF8')) WHERE topic_sha256 IS NULL;
UPDATE dead_letter SET payload_size = length(payload) WHERE payload_size IS NULL;
ALTER TABLE dead_letter ALTER COLUMN topic_sha256 SET NOT NULL;
ALTER TABLE dead_letter ALTER COLUMN payload_size SET NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS dead_letter_message_key ON dead_letter (topic_sha256, payload_sha256);
ALTER TABLE dead_letter DROP CONSTRAINT IF EXISTS dead_letter_topic_payload_sha256_key;
-- A row written without them (by hand, by another tool) gets them from what it stores.
CREATE OR REPLACE FUNCTION dead_letter_fill_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.topic_sha256 := coalesce(NEW.topic_sha256, sha256(convert_to(NEW.topic, 'UTF8')));
    NEW.payload_size := coalesce(NEW.payload_size, length(NEW.payload));
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS dead_letter_fill_keys ON dead_letter;
CREATE TRIGGER dead_letter_fill_keys BEFORE INSERT ON dead_letter
    FOR EACH ROW WHEN (NEW.topic_sha256 IS NULL OR NEW.payload_size IS NULL) EXECUTE FUNCTION dead_letter_fill_keys();

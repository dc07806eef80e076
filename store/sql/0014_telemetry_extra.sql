-- What a device profile's mapping did not take from its codec's output (ingest.readings), kept
-- with the reading so it can be mapped later (NULL: nothing left over, contract v1, no profile).
-- Nullable with no default: no rewrite, and allowed on a hypertable with compressed chunks.
ALTER TABLE telemetry ADD COLUMN extra jsonb;

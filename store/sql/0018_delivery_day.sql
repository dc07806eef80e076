-- Deliveries of a registered device that added no reading, per device and UTC day (issue 15),
-- kept by ingest in the transaction that writes each batch (ingest/tally.py):
--   duplicates          messages stored already (same device, seq and device time): a device's
--                       resend, a network server's second copy, a batch the broker redelivered
--                       after an outage; on the UTC date of the message's device time.
--   rejected            messages refused as dead letters that name the device (its contract topic,
--                       a resolved DevEUI, a gateway batch entry) and whose pilot is the device's;
--                       every delivery counts, repeats of the same bytes too (dead_letter keeps
--                       them once); on the UTC date the message was received (a refused message
--                       may have no readable device time).
--   rejected_by_reason  {reason: count} over pilotlab.errors.RejectReason codes; its counts sum
--                       to `rejected`.
-- An ordinary table in both modes: nothing here touches telemetry or its chunks.
CREATE TABLE delivery_day (
    device_id           text NOT NULL REFERENCES device (id) ON DELETE CASCADE,
    day                 date NOT NULL,
    duplicates          integer NOT NULL DEFAULT 0 CHECK (duplicates >= 0),
    rejected            integer NOT NULL DEFAULT 0 CHECK (rejected >= 0),
    rejected_by_reason  jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(rejected_by_reason) = 'object'),
    PRIMARY KEY (device_id, day)
);

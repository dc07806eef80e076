-- LoRaWAN details kept with each frame: the DevAddr it was sent from, its data-rate index, and
-- whether it was MAC-only (FPort 0 or no application payload: counted for loss, no reading);
-- per reception the gateway's EUI and the data-rate index beside SF/BW. Nullable columns without
-- defaults on plain tables, so adding them rewrites nothing.
ALTER TABLE uplink_frame ADD COLUMN IF NOT EXISTS dev_addr text CHECK (dev_addr ~ '^[0-9a-f]{8}$');
ALTER TABLE uplink_frame ADD COLUMN IF NOT EXISTS data_rate_index smallint CHECK (data_rate_index BETWEEN 0 AND 15);
ALTER TABLE uplink_frame ADD COLUMN IF NOT EXISTS mac_only boolean;
ALTER TABLE uplink_reception ADD COLUMN IF NOT EXISTS gateway_eui text CHECK (gateway_eui ~ '^[0-9a-f]{16}$');
ALTER TABLE uplink_reception ADD COLUMN IF NOT EXISTS data_rate_index smallint CHECK (data_rate_index BETWEEN 0 AND 15);

-- DevAddr in one case whatever the network server wrote (The Things Stack: upper case).
UPDATE lorawan_join SET dev_addr = lower(dev_addr) WHERE dev_addr <> lower(dev_addr);

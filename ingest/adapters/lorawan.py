"""The LoRaWAN intake: how every network server's uplink or join event (ingest.adapters.events)
becomes a frame record, receptions and (when its payload reads, ingest.readings) one reading.

An uplink is identified by (device, full frame counter, network-server time). Its frame is
recorded whenever the device is known, even if the payload is refused: the radio frame did
arrive, and loss is counted from frames (`uplink_loss_hourly`). A MAC-only uplink (FPort 0 or
no application payload) is a frame and nothing else: no reading, no dead letter. The reading
takes `seq` = the frame counter and `ts` = the network server's time of the uplink.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from devices.contract import TopicAddress
from devices.kinds import Channel
from ingest.adapters.events import Join, Uplink
from ingest.adapters.frame_counter import CounterWidener, DuplicateWindow
from ingest.adapters.link_directory import LinkDirectory
from ingest.directory import DeviceEntry
from ingest.handoff import Inbound
from ingest.readings import lorawan_reading, reading_row
from ingest.rows import DeviceLookup, Outputs, dead_letter
from pilotlab.errors import MessageRejected, RejectReason


class LorawanIntake:
    """Per worker, for every network server's uplinks and joins (ingest.adapters.events): resolves
    devices, widens 16-bit counters, merges duplicate copies."""

    def __init__(self, directory: LinkDirectory, fcnt_bits: dict[str, int]) -> None:
        self.directory = directory
        self.fcnt_bits = fcnt_bits
        self.duplicates = DuplicateWindow()
        self.widener = CounterWidener(directory.last_fcnt)

    def device(self, network_server: str, application_id: str, dev_eui: str | None, hint: str | None,
               lookup: DeviceLookup) -> tuple[str, DeviceEntry]:
        device_id = self.directory.device_for_eui(dev_eui) if dev_eui else None
        if device_id is None and hint and not dev_eui:
            device_id = hint
        entry = lookup(device_id) if device_id else None
        if device_id is None or entry is None:
            raise MessageRejected(RejectReason.UNKNOWN_DEV_EUI,
                                  f"no registered device has DevEUI {dev_eui}" if dev_eui
                                  else f"no DevEUI and no registered device {hint!r}")
        pilot = self.directory.pilot_of_application(network_server, application_id)
        if pilot is not None and pilot != entry.pilot_id:
            raise MessageRejected(RejectReason.PILOT_MISMATCH,
                                  f"{network_server} application {application_id!r} belongs to pilot {pilot!r}, "
                                  f"device {device_id!r} to {entry.pilot_id!r}")
        return device_id, entry

    def uplink(self, message: Inbound, up: Uplink, lookup: DeviceLookup, out: Outputs,
               latest_allowed: datetime) -> None:
        device_id, entry = self.device(up.network_server, up.application_id, up.dev_eui, up.device_hint, lookup)
        fcnt = up.fcnt
        if self.fcnt_bits.get(up.network_server, 32) == 16:
            fcnt = self.widener.widen(device_id, fcnt)
        at = self.duplicates.canonical_time(device_id, fcnt, up.uplink_time)
        ingest_time = datetime.fromtimestamp(message.received_at, UTC)
        radio = up.radio
        out.link.frames.append((device_id, fcnt, at, ingest_time, up.network_server, up.f_port,
                                up.dev_addr, radio.data_rate_index, up.mac_only))
        if up.receptions:
            sf, bw, freq, dr_index = radio
            data_rate = radio.data_rate
            out.link.receptions.extend([(device_id, fcnt, at, rx.gateway_id, rx.rssi_dbm, rx.snr_db, sf, bw, freq,
                                         data_rate, rx.gateway_eui, dr_index) for rx in up.receptions])
        if up.mac_only:
            return  # heard and counted; there is nothing for a reading, and nothing wrong
        try:
            try:
                data = base64.b64decode(up.data_b64, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise MessageRejected(RejectReason.BAD_BASE64, f"frame payload is not base64: {exc}") from None
            channel, fields = lorawan_reading(entry, up.f_port, data, up.decoded, at)
            fields["ts"], fields["seq"] = at, fcnt
            out.rows.append(reading_row(device_id, entry, channel, fields, ingest_time, len(data), latest_allowed))
            out.sources.append(message)
        except MessageRejected as rejected:
            out.dead.append(dead_letter(message, rejected.reason, rejected.detail,
                                        TopicAddress(entry.pilot_id, device_id, Channel.TELEMETRY)))

    def join(self, message: Inbound, join: Join, lookup: DeviceLookup, out: Outputs) -> None:
        device_id, _ = self.device(join.network_server, join.application_id, join.dev_eui, join.device_hint, lookup)
        self.widener.joined(device_id)
        out.link.joins.append((device_id, join.joined_at, join.network_server, join.dev_addr))


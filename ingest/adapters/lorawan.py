"""What both LoRaWAN network-server adapters share: an uplink or join in one shape, and how it
becomes a frame record, receptions and (when its payload decodes) one reading.

An uplink is identified by (device, full frame counter, network-server time). Its frame is
recorded whenever the device is known, even if the payload is refused: the radio frame did
arrive, and loss is counted from frames (`uplink_loss_hourly`). The reading takes `seq` = the
frame counter and `ts` = the network server's time of the uplink.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any, NamedTuple

from devices.codecs import FPORT_STATUS, UnknownPort, decode_frame
from devices.contract import TopicAddress
from devices.kinds import Channel, DeviceKind
from devices.telemetry import TELEMETRY_MODELS
from ingest.adapters.frame_counter import CounterWidener, DuplicateWindow
from ingest.adapters.link_directory import LinkDirectory
from ingest.adapters.readings import reading_row
from ingest.directory import DeviceEntry
from ingest.handoff import Inbound
from ingest.rows import DeviceLookup, Outputs, dead_letter
from pilotlab.errors import CodecError, MessageRejected, RejectReason

DEV_EUI = re.compile(r"^[0-9a-fA-F]{16}$")


class Reception(NamedTuple):
    gateway_id: str
    rssi_dbm: float | None
    snr_db: float | None


class Radio(NamedTuple):
    spreading_factor: int | None = None
    bandwidth_hz: int | None = None
    frequency_hz: int | None = None

    @property
    def data_rate(self) -> str | None:
        if self.spreading_factor is None or self.bandwidth_hz is None:
            return None
        return f"SF{self.spreading_factor}BW{self.bandwidth_hz // 1000}"


class Uplink(NamedTuple):
    network_server: str
    application_id: str
    dev_eui: str | None  # lower-case hex
    device_hint: str | None  # the network server's own device id (TTS), tried when no DevEUI
    fcnt: int
    f_port: int
    uplink_time: datetime
    data_b64: str
    decoded: dict[str, Any] | None
    receptions: list[Reception]
    radio: Radio


class Join(NamedTuple):
    network_server: str
    application_id: str
    dev_eui: str | None
    device_hint: str | None
    joined_at: datetime
    dev_addr: str | None


class LorawanIntake:
    """Per worker: resolves devices, widens 16-bit counters, merges duplicate copies."""

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
        address = TopicAddress(entry.pilot_id, device_id, Channel.TELEMETRY)
        fcnt = up.fcnt
        if self.fcnt_bits.get(up.network_server, 32) == 16:
            fcnt = self.widener.widen(device_id, fcnt)
        at = self.duplicates.canonical_time(device_id, fcnt, up.uplink_time)
        ingest_time = datetime.fromtimestamp(message.received_at, UTC)
        out.link.frames.append((device_id, fcnt, at, ingest_time, up.network_server, up.f_port))
        radio = up.radio
        for rx in up.receptions:
            out.link.receptions.append((device_id, fcnt, at, rx.gateway_id, rx.rssi_dbm, rx.snr_db,
                                        radio.spreading_factor, radio.bandwidth_hz, radio.frequency_hz, radio.data_rate))
        try:
            try:
                data = base64.b64decode(up.data_b64, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise MessageRejected(RejectReason.BAD_BASE64, f"frame payload is not base64: {exc}") from None
            channel, fields = self._fields(entry.kind, up, data)
            fields["ts"], fields["seq"] = at, fcnt
            out.rows.append(reading_row(device_id, entry, channel, fields, ingest_time, len(data), latest_allowed))
            out.sources.append(message)
        except MessageRejected as rejected:
            out.dead.append(dead_letter(message, rejected.reason, rejected.detail, address))

    def _fields(self, kind: DeviceKind, up: Uplink, data: bytes) -> tuple[Channel, dict[str, Any]]:
        if up.decoded and up.f_port != FPORT_STATUS:
            fields = fields_from_object(kind, up.decoded)
            if fields:
                return Channel.TELEMETRY, fields
        try:
            return decode_frame(kind, up.f_port, data)
        except UnknownPort as exc:
            raise MessageRejected(RejectReason.UNKNOWN_FPORT, str(exc)) from None
        except CodecError as exc:
            raise MessageRejected(RejectReason.CODEC_ERROR, f"fPort {up.f_port}: {exc}") from None

    def join(self, message: Inbound, join: Join, lookup: DeviceLookup, out: Outputs) -> None:
        device_id, _ = self.device(join.network_server, join.application_id, join.dev_eui, join.device_hint, lookup)
        self.widener.joined(device_id)
        out.link.joins.append((device_id, join.joined_at, join.network_server, join.dev_addr))


# Keys network-server payload formatters commonly produce, mapped to pilotlab fields. Cayenne
# LPP formatters name values by type and channel: TTS "temperature_1", ChirpStack
# {"temperatureSensor": {"1": 21.5}}.
_ALIASES = {
    "temperature": "temperature_c", "temp": "temperature_c", "humidity": "humidity_pct",
    "relative_humidity": "humidity_pct", "relativehumidity": "humidity_pct", "humiditysensor": "humidity_pct",
    "temperaturesensor": "temperature_c", "pm25": "pm25_ugm3", "pm2_5": "pm25_ugm3", "pm10": "pm10_ugm3",
    "co2": "co2_ppm", "noise": "noise_dba", "battery": "battery_pct", "percentage": "battery_pct",
    "latitude": "lat", "longitude": "lon", "power": "power_w", "energy": "energy_wh", "relay": "relay_on",
}
_CHANNEL_SUFFIX = re.compile(r"_\d+$")


def fields_from_object(kind: DeviceKind, decoded: dict[str, Any]) -> dict[str, Any]:
    """The fields of `kind`'s telemetry model found in a network server's decoded object (pilotlab
    names, or common aliases); other keys are ignored. Empty if nothing usable."""
    wanted = set(TELEMETRY_MODELS[kind].model_fields) - {"ts", "seq"}
    out: dict[str, Any] = {}
    for key, value in decoded.items():
        if isinstance(value, dict) and value and all(str(k).isdigit() for k in value):
            value = next(iter(value.values()))  # ChirpStack LPP: {"<channel>": value}
        name = key if key in wanted else _ALIASES.get(_CHANNEL_SUFFIX.sub("", key).lower())
        if name in ("gps", None) and isinstance(value, dict) and "latitude" in value:
            name = "lat"
        if name == "lat" and isinstance(value, dict):
            out.setdefault("lat", value.get("latitude"))
            out.setdefault("lon", value.get("longitude"))
            if kind is DeviceKind.LOCATION_TRACKER:
                out.setdefault("fix_type", "3d")
            continue
        if name in wanted and name not in out:
            out[name] = value
    if kind is DeviceKind.LOCATION_TRACKER and "lat" in out and "fix_type" not in out:
        out["fix_type"] = "3d"
    return {k: v for k, v in out.items() if k in wanted}


def parse_time(value: Any, what: str) -> datetime:
    """An RFC 3339 time with an offset (nanoseconds are truncated to microseconds)."""
    if not isinstance(value, str):
        raise MessageRejected(RejectReason.INVALID_PAYLOAD, f"{what}: expected an RFC 3339 time")
    text = value.replace("Z", "+00:00")
    match = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?([+-]\d\d:\d\d)", text)
    if not match:
        raise MessageRejected(RejectReason.INVALID_PAYLOAD, f"{what}: {value!r} is not an RFC 3339 time with offset")
    fraction = (match.group(2) or "")[:7]
    try:
        return datetime.fromisoformat(match.group(1) + fraction + match.group(3))
    except ValueError:
        raise MessageRejected(RejectReason.INVALID_PAYLOAD, f"{what}: {value!r} is not a valid time") from None


def counter(value: Any, what: str, maximum: int) -> int:
    """A non-negative integer field; protobuf JSON omits zeros, so absent means 0."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise MessageRejected(RejectReason.INVALID_PAYLOAD, f"{what}: expected an integer 0 … {maximum}")
    return value


def as_object(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one: optional sub-objects of a network
    server's event may be missing or, in hostile input, of any type."""
    return value if isinstance(value, dict) else {}


def as_int(value: Any) -> int | None:
    """An integer given as a JSON number or a decimal string (TTS writes frequencies as strings)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value and abs(value) < 1e6 else None


def dev_eui_of(value: Any, what: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not DEV_EUI.fullmatch(value):
        raise MessageRejected(RejectReason.INVALID_PAYLOAD, f"{what}: {value!r} is not a 16-hex-digit DevEUI")
    return value.lower()

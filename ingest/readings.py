"""Codecs and mapping: what a payload means as a pilotlab reading, for every format.

The one place both the contract decoder (ingest.decode) and the adapters for network servers and
gateways (ingest.adapters) turn what a device sent into a reading of its kind:

- `contract_reading`: a contract v1 JSON payload, validated by the kind's payload model;
- `lorawan_reading`: a LoRaWAN frame (fPort, bytes) with the network server's decoded object,
  if any. Today the network server's object is used when it has fields pilotlab knows (except on
  the status port), else pilotlab's binary layout chosen by fPort (devices.codecs). Device
  profiles (a codec and a measurement mapping per fPort) take their place here;
- `reading_row`: fields from any of these (with `ts` and `seq`) validated by the same payload
  models and turned into the same telemetry row (ingest.rows).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from devices.codecs import FPORT_STATUS, UnknownPort, decode_frame
from devices.contract import decode_payload, rejection_from
from devices.kinds import Channel, DeviceKind
from devices.telemetry import TELEMETRY_MODELS, Envelope, payload_model
from ingest.directory import DeviceEntry
from ingest.rows import row_of
from pilotlab.errors import CodecError, MessageRejected, RejectReason


def contract_reading(device: DeviceEntry, channel: Channel, payload: bytes) -> Envelope:
    """The reading of a contract v1 payload, or MessageRejected with the reason."""
    return decode_payload(device.kind, channel, payload)


def lorawan_reading(device: DeviceEntry, f_port: int, data: bytes,
                    decoded: dict[str, Any] | None) -> tuple[Channel, dict[str, Any]]:
    """(channel, fields without ts and seq) of one LoRaWAN frame of `device`, from its bytes or the
    network server's decoded object; MessageRejected (unknown_fport, codec_error) if neither reads."""
    if decoded and f_port != FPORT_STATUS:
        fields = fields_from_object(device.kind, decoded)
        if fields:
            return Channel.TELEMETRY, fields
    try:
        return decode_frame(device.kind, f_port, data)
    except UnknownPort as exc:
        raise MessageRejected(RejectReason.UNKNOWN_FPORT, str(exc)) from None
    except CodecError as exc:
        raise MessageRejected(RejectReason.CODEC_ERROR, f"fPort {f_port}: {exc}") from None


def reading_row(device_id: str, device: DeviceEntry, channel: Channel, fields: dict[str, Any],
                ingest_time: datetime, size: int, latest_allowed: datetime) -> tuple[Any, ...]:
    """The telemetry row for `fields` (with `ts` and `seq`), or MessageRejected with the reason."""
    try:
        reading = payload_model(device.kind, channel).model_validate(fields)
    except ValidationError as exc:
        raise rejection_from(exc) from None
    return row_of(reading, device_id, device, channel, ingest_time, size, latest_allowed)


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

"""Codecs and mapping: what a payload means as a pilotlab reading, for every format.

The one place both the contract decoder (ingest.decode) and the adapters for network servers and
gateways (ingest.adapters) turn what a device sent into a reading of its kind:

- `contract_reading`: a contract v1 JSON payload, validated by the kind's payload model;
- `lorawan_reading`: a LoRaWAN frame (fPort, bytes) with the network server's decoded object,
  if any. A device with a profile (devices.profiles) is read by its profile's entry for the
  frame's fPort: the codec (pilotlab layout, Cayenne LPP, the network server's object, or the
  vendor's JavaScript) and then the mapping (path -> measurement, value map, unit conversion);
  what the mapping leaves out is kept as the reading's `extra`; a frame the mapping finds no
  measurement in is the port's `without_measurements` event if it has one. A device without a profile is
  read as before profiles: the network server's object when it has fields pilotlab knows (except
  on the status port), else pilotlab's binary layout chosen by fPort (devices.codecs);
- `reading_row`: fields from any of these (with `ts` and `seq`) validated by the same payload
  models (what a profile read, by devices.profile_readings': a switch frame need not carry the
  relay's state) and turned into the same telemetry row (ingest.rows).

Vendor JavaScript codecs are compiled once per (profile id, version, fPort) into one cache per process
(`configure_js_codecs` sets its limits from the settings; the worker calls it at start).
"""

from __future__ import annotations

import functools
import math
import re
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from devices.codecs import FPORT_STATUS, TELEMETRY_CODECS, UnknownPort, cayenne_lpp, decode_frame, status
from devices.codecs.javascript import JsCodecCache
from devices.contract import decode_payload, rejection_from
from devices.kinds import Channel, DeviceKind
from devices.profile_codecs import js_codec_limits
from devices.profile_readings import profile_payload_model
from devices.profiles import UNIT_CONVERSIONS, CayenneLppCodec, FPortUplink, JavascriptCodec, MeasurementMapping, NetworkServerObjectCodec
from devices.telemetry import TELEMETRY_MODELS, Envelope, payload_model
from ingest.directory import DeviceEntry, DeviceProfile
from ingest.rows import row_of
from pilotlab.errors import CodecError, JsCodecError, JsCodecFailure, MessageRejected, RejectReason
from pilotlab.settings import Settings


class ProfileFields(dict[str, Any]):
    """A reading's fields as a device profile read them, with the profile version that read them
    and the codec's output its mapping did not take (`extra`, None if nothing); `reading_row`
    stores both with the row."""

    def __init__(self, fields: dict[str, Any], profile_version: int, extra: dict[str, Any] | None) -> None:
        super().__init__(fields)
        self.profile_version = profile_version
        self.extra = extra


_js_codecs = JsCodecCache()


def configure_js_codecs(settings: Settings) -> None:
    """The vendor JavaScript codecs' per-call limits and cache size, from the settings."""
    global _js_codecs
    _js_codecs = JsCodecCache(js_codec_limits(settings))


def contract_reading(device: DeviceEntry, channel: Channel, payload: bytes) -> Envelope:
    """The reading of a contract v1 payload, or MessageRejected with the reason."""
    return decode_payload(device.kind, channel, payload)


def native_fields(device: DeviceEntry, channel: Channel, payload: bytes) -> ProfileFields | None:
    """The fields of a native (MQTT) device's own JSON on `channel`, by its profile's `native`
    mapping (which may give `ts` and `seq` too); None if its profile maps no such channel (the
    payload is then contract v1's). MessageRejected if the JSON or a mapped value does not read."""
    profile = device.profile
    if profile is None or profile.definition is None:
        return None
    native = profile.definition.native.get(channel.value)  # type: ignore[call-overload]
    if native is None:
        return None
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise MessageRejected(RejectReason.MALFORMED_JSON, f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise MessageRejected(RejectReason.INVALID_PAYLOAD, f"the payload is JSON {type(body).__name__}, not an object")
    fields, extra = apply_mapping(native.mapping, body, f"{channel.value} (profile {profile.id!r} v{profile.version})",
                                  copy=False)
    return ProfileFields(fields, profile.version, extra)


def lorawan_reading(device: DeviceEntry, f_port: int, data: bytes, decoded: dict[str, Any] | None,
                    recv_time: datetime | None = None) -> tuple[Channel, dict[str, Any]]:
    """(channel, fields without ts and seq) of one LoRaWAN frame of `device`, from its bytes or the
    network server's decoded object (ProfileFields when its profile read them); MessageRejected
    (unknown_fport, codec_error, profile_invalid, a codec_* of a JavaScript codec) if neither reads."""
    if device.profile is not None:
        return _profile_reading(device.kind, device.profile, f_port, data, decoded, recv_time)
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
    by_profile = fields if isinstance(fields, ProfileFields) else None
    model = payload_model(device.kind, channel) if by_profile is None else profile_payload_model(device.kind, channel)
    try:
        reading = model.model_validate(fields)
    except ValidationError as exc:
        raise rejection_from(exc) from None
    if by_profile is not None:
        return row_of(reading, device_id, device, channel, ingest_time, size, latest_allowed,
                      profile_version=by_profile.profile_version, extra=extra_json(by_profile.extra))
    return row_of(reading, device_id, device, channel, ingest_time, size, latest_allowed)


EXTRA_MAX_CHARS = 16_384


def _storable(value: Any) -> Any:
    """`value` as jsonb holds it: no NUL in strings or keys (PostgreSQL refuses \\u0000), no NaN or
    infinity (null instead, as JSON has neither)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k).replace("\x00", ""): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def extra_json(extra: dict[str, Any] | None) -> str | None:
    """The unmapped codec output as JSON text for telemetry.extra; larger than EXTRA_MAX_CHARS, a
    note of its size instead (a codec's output is the vendor's, and may be anything)."""
    if not extra:
        return None
    text = orjson.dumps(_storable(extra)).decode()
    if len(text) > EXTRA_MAX_CHARS:
        return orjson.dumps({"_truncated": True, "_chars": len(text)}).decode()
    return text


# --- through a device profile -------------------------------------------------------------------

_JS_REASONS = {failure: RejectReason(failure.value) for failure in JsCodecFailure}  # same names


def _profile_reading(kind: DeviceKind, profile: DeviceProfile, f_port: int, data: bytes,
                     decoded: dict[str, Any] | None, recv_time: datetime | None) -> tuple[Channel, ProfileFields]:
    definition = profile.definition
    if definition is None:
        raise MessageRejected(RejectReason.PROFILE_INVALID, profile.problem or f"device profile {profile.id!r} is not valid")
    uplink = definition.uplinks.get(str(f_port))
    if uplink is None:
        ports = ", ".join(sorted(definition.uplinks, key=int)) or "none"
        raise MessageRejected(RejectReason.UNKNOWN_FPORT,
                              f"fPort {f_port} is not in device profile {profile.id!r} version {profile.version} (ports: {ports})")
    channel = Channel(uplink.channel)
    where = f"fPort {f_port} (profile {profile.id!r} v{profile.version})"
    output = _codec_output(kind, profile, uplink, f_port, data, decoded, recv_time, where)
    if output is None:  # a pilotlab layout: already the contract's fields
        return channel, ProfileFields(_pilotlab_layout(kind, uplink, data, where), profile.version, None)
    mapping = uplink.mapping or (_cayenne_default_mapping(kind, tuple(output)) if isinstance(uplink.codec, CayenneLppCodec)
                                 else [])
    # the network server's object is the message's; the other codecs' output is made for this frame
    fields, extra = apply_mapping(mapping, output, where, copy=isinstance(uplink.codec, NetworkServerObjectCodec))
    if not fields and uplink.without_measurements is not None:  # device information, not a reading
        return Channel.EVENT, ProfileFields({"event": uplink.without_measurements.event}, profile.version, extra)
    if kind is DeviceKind.LOCATION_TRACKER and channel is Channel.TELEMETRY and "fix_type" not in fields:
        fields["fix_type"] = "3d" if "lat" in fields else "none"
    return channel, ProfileFields(fields, profile.version, extra)


def _pilotlab_layout(kind: DeviceKind, uplink: FPortUplink, data: bytes, where: str) -> dict[str, Any]:
    layout = getattr(uplink.codec, "layout", kind.value)
    try:
        return status.decode(data) if layout == "status" else TELEMETRY_CODECS[kind][1](data)
    except CodecError as exc:
        raise MessageRejected(RejectReason.CODEC_ERROR, f"{where}: {exc}") from None


def _codec_output(kind: DeviceKind, profile: DeviceProfile, uplink: FPortUplink, f_port: int, data: bytes,
                  decoded: dict[str, Any] | None, recv_time: datetime | None, where: str) -> dict[str, Any] | None:
    """The object the mapping reads (None for a pilotlab layout)."""
    codec = uplink.codec
    if isinstance(codec, NetworkServerObjectCodec):
        if not isinstance(decoded, dict) or not decoded:
            raise MessageRejected(RejectReason.CODEC_ERROR, f"{where}: the network server sent no decoded object "
                                                            "(ChirpStack `object`, The Things Stack `decoded_payload`)")
        return decoded
    if isinstance(codec, CayenneLppCodec):
        try:
            return cayenne_object(cayenne_lpp.decode(data))
        except CodecError as exc:
            raise MessageRejected(RejectReason.CODEC_ERROR, f"{where}: {exc}") from None
    if isinstance(codec, JavascriptCodec):
        try:
            # one compiled codec per (profile, version, port): a profile may give each port its own script
            return _js_codecs.decode((profile.id, profile.version, f_port), codec.script, data, f_port, recv_time).data
        except JsCodecError as exc:
            raise MessageRejected(_JS_REASONS[exc.reason],
                                  f"{where}: {exc.detail}") from None
    return None


def cayenne_object(values: list[cayenne_lpp.LppValue]) -> dict[str, Any]:
    """Cayenne LPP values as the object a mapping reads: `{"<type>_<channel>": value}`, a GPS
    value as `{latitude, longitude, altitude}`, a 3-axis one as `{x, y, z}` (as The Things Stack's
    LPP formatter names them; the analog and digital types as `analog_in`, `analog_out`,
    `digital_in`, `digital_out`, as it does too)."""
    out: dict[str, Any] = {}
    for item in values:
        value: Any = item.value
        if item.type == "gps":
            value = {"latitude": value[0], "longitude": value[1], "altitude": value[2]}
        elif isinstance(value, tuple):
            value = dict(zip(("x", "y", "z"), value, strict=True))
        out.setdefault(f"{_LPP_KEY.get(item.type, item.type)}_{item.channel}", value)
    return out


_LPP_KEY = {"analog_input": "analog_in", "analog_output": "analog_out", "digital_input": "digital_in",
            "digital_output": "digital_out"}


_LPP_MEASUREMENT = {"temperature": "temperature_c", "humidity": "humidity_pct", "percentage": "battery_pct",
                    "concentration": "co2_ppm"}


@functools.lru_cache(maxsize=1024)
def _cayenne_default_mapping(kind: DeviceKind, keys: tuple[str, ...]) -> list[MeasurementMapping]:
    """Without a mapping, a Cayenne LPP codec maps its types as devices.codecs.cayenne_lpp does (the
    first of each type; a tracker's GPS altitude too) to the kind's measurements. Cached by the
    output's keys (a device sends the same few shapes); the list is shared: not to be changed."""
    wanted = set(TELEMETRY_MODELS[kind].model_fields)
    mapping: list[MeasurementMapping] = []
    taken: set[str] = set()
    for key in keys:
        lpp_type = key.rsplit("_", 1)[0]
        targets: tuple[tuple[str, str], ...]
        if lpp_type == "gps":
            targets = ((f"{key}.latitude", "lat"), (f"{key}.longitude", "lon"), (f"{key}.altitude", "altitude_m"))
        else:
            targets = ((key, _LPP_MEASUREMENT.get(lpp_type, "")),)
        for path, to in targets:
            if to in wanted and to not in taken:
                taken.add(to)
                mapping.append(MeasurementMapping.model_construct(from_=path, to=to, unit=None, values=None))
    return mapping


# A path: keys joined by '.', list items as [n] (devices.profiles.PATH_PATTERN).
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_MISSING = object()


@functools.lru_cache(maxsize=4096)
def _steps(path: str) -> tuple[str | int, ...]:
    return tuple(key if key else int(index) for key, index in _STEP.findall(path))


def _get(output: Any, steps: tuple[str | int, ...]) -> Any:
    for step in steps:
        if isinstance(step, int):
            if not isinstance(output, list) or step >= len(output):
                return _MISSING
            output = output[step]
        else:
            if not isinstance(output, dict) or step not in output:
                return _MISSING
            output = output[step]
    return output


def _remove(output: Any, steps: tuple[str | int, ...]) -> None:
    """Take the value at `steps` out of `output` (a copy), and containers it leaves empty."""
    if not steps:
        return
    head, rest = steps[0], steps[1:]
    if isinstance(head, int):
        if not isinstance(output, list) or head >= len(output):
            return
        if rest:
            _remove(output[head], rest)
            if output[head] in ({}, [None]):
                output[head] = None
        else:
            output[head] = None  # keep the others' indexes
        return
    if not isinstance(output, dict) or head not in output:
        return
    if rest:
        _remove(output[head], rest)
        if output[head] == {} or (isinstance(output[head], list) and all(v is None for v in output[head])):
            del output[head]
    else:
        del output[head]


def apply_mapping(mapping: list[MeasurementMapping], output: dict[str, Any], where: str = "mapping",
                  *, copy: bool = True) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(measurements, what the mapping did not take) of a codec's output. A path the output lacks
    (or holds null at) is no measurement; a value the value map lacks, or a text where a unit
    conversion needs a number, is a codec_error naming the path. `copy=False`: `output` is the
    caller's to change (a codec's fresh output), and what is left of it is the rest."""
    fields: dict[str, Any] = {}
    taken: list[tuple[str | int, ...]] = []
    for entry in mapping:
        steps = _steps(entry.from_)
        value = _get(output, steps)
        if value is _MISSING or value is None:
            continue
        taken.append(steps)
        if entry.values is not None:
            key = value if isinstance(value, str) else orjson.dumps(value).decode()
            if key not in entry.values:
                raise MessageRejected(RejectReason.CODEC_ERROR,
                                      f"{where}: {entry.from_} = {key[:40]!r} is not in the value map of {entry.to} "
                                      f"({', '.join(list(entry.values)[:8])})")
            value = entry.values[key]
        if entry.unit is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise MessageRejected(RejectReason.CODEC_ERROR,
                                      f"{where}: {entry.from_} is {type(value).__name__}, {entry.unit} needs a number")
            _, scale, offset = UNIT_CONVERSIONS[entry.unit]
            value = round(value * scale + offset, 9)
        fields[entry.to] = value
    rest = orjson.loads(orjson.dumps(output)) if taken and copy else output
    for steps in taken:  # after every read: two entries may read one path
        _remove(rest, steps)
    return fields, rest or None


# --- without a profile --------------------------------------------------------------------------

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
            if "altitude" in value:
                out.setdefault("altitude_m", value["altitude"])
            if kind is DeviceKind.LOCATION_TRACKER:
                out.setdefault("fix_type", "3d")
            continue
        if name in wanted and name not in out:
            out[name] = value
    if kind is DeviceKind.LOCATION_TRACKER and "lat" in out and "fix_type" not in out:
        out["fix_type"] = "3d"
    return {k: v for k, v in out.items() if k in wanted}

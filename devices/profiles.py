"""Device profiles: what a device model is and how its payloads become pilotlab readings.

A profile is what ChirpStack calls a device profile and The Things Stack's device repository an
end-device entry: vendor, model, firmware version, device kind, declared reporting interval and
the measurements the model has, then per LoRaWAN fPort a codec and a measurement mapping, and per
MQTT channel a mapping for a native (Wi-Fi, cellular) device's own JSON shape. The registry keeps
every version of a profile (store.profiles); a reading records the version that decoded it.

Codecs (`codec.type`), and what their output (the object the mapping's `from` paths read) is:

    pilotlab               pilotlab's binary `layout` (devices.codecs): the contract's fields
    cayenne_lpp            Cayenne LPP: `{"<type>_<channel>": value}`, e.g. `temperature_1`, `gps_3.latitude`
    network_server_object  the network server's decoded object (ChirpStack `object`, TTS `decoded_payload`)
    javascript             the vendor's payload codec, unchanged: `decodeUplink(input).data`,
                           or the result of the older `Decoder(bytes, port)` / `Decode(fPort, bytes)`

A mapping entry takes the value at `from` (a path: keys joined by `.`, list items as `[n]`), maps
it through `values` (an enumeration: `{"ON": true, "OFF": false}`; a number is looked up by its
JSON text, `"1"`), converts it by `unit` (one of UNIT_CONVERSIONS) and stores it as the pilotlab
measurement `to`. A pilotlab layout needs no mapping (its output is the contract's fields), nor
does Cayenne LPP (its types map to measurements as devices.codecs.cayenne_lpp says); what a
mapping does not name is kept with the reading, not refused. A port that also carries device
information (a start-up or version report) routes the frames its mapping finds no measurement in
to an event (`without_measurements`). A profile declares its kind's core (a switch relay_on, a
tracker lat and lon, a sensor an environment measurement); what a frame read through it must carry
is devices.profile_readings'. This module only validates definitions; ingest applies them.
"""

from __future__ import annotations

import re
from functools import cache
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError, model_validator

from devices.kinds import Channel, DeviceKind
from devices.telemetry import ENV_MEASUREMENTS, payload_model

FPORT_MIN, FPORT_MAX = 1, 223  # LoRaWAN application ports (0 is MAC-only, 224+ reserved)
SCRIPT_MAX_BYTES = 256 * 1024
MAPPING_MAX = 200

# A path into a codec's output: keys of letters, digits, _ and -, joined by dots; [n] for list items.
_KEY = r"[A-Za-z0-9_-]+(\[[0-9]{1,4}\])*"
PATH_PATTERN = rf"^{_KEY}(\.{_KEY})*$"
_PATH = re.compile(PATH_PATTERN)

# Unit conversions into pilotlab's units: name -> (target unit, scale, offset); value * scale + offset.
# Only true unit changes: a battery voltage is not a charge (mV -> % depends on the cell), so no such entry.
UNIT_CONVERSIONS: dict[str, tuple[str, float, float]] = {
    "kWh->Wh": ("Wh", 1000.0, 0.0),
    "kW->W": ("W", 1000.0, 0.0),
    "mW->W": ("W", 0.001, 0.0),
    "km/h->m/s": ("m/s", 1 / 3.6, 0.0),
    "mph->m/s": ("m/s", 0.44704, 0.0),
    "knots->m/s": ("m/s", 0.514444, 0.0),
    "°F->°C": ("°C", 5 / 9, -160 / 9),
    "K->°C": ("°C", 1.0, -273.15),
    "ratio->%": ("%", 100.0, 0.0),
    "mg/m³->µg/m³": ("µg/m³", 1000.0, 0.0),
    "cm->m": ("m", 0.01, 0.0),
    "ft->m": ("m", 0.3048, 0.0),
    "ms->s": ("s", 0.001, 0.0),
}
# A measurement's unit, read from its name's suffix (temperature_c, power_w, speed_mps, …).
_UNIT_OF_SUFFIX = {"_c": "°C", "_pct": "%", "_w": "W", "_wh": "Wh", "_mps": "m/s", "_ugm3": "µg/m³",
                   "_ppm": "ppm", "_dba": "dBA", "_m": "m", "_dbm": "dBm", "_s": "s"}
# Besides measurements, a native device's mapping may give the contract's envelope fields.
ENVELOPE_FIELDS = ("ts", "seq")

HEX_FRAME = r"^(?:[0-9a-fA-F]{2}){1,222}$"  # a downlink frame: 1-222 bytes as hex (LoRaWAN's largest payload)
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Scalar = bool | int | float | str


def measurement_unit(name: str) -> str | None:
    """The unit of a pilotlab measurement, from its name (None: a state, position or text)."""
    for suffix, unit in sorted(_UNIT_OF_SUFFIX.items(), key=lambda item: -len(item[0])):
        if name.endswith(suffix):
            return unit
    return None


def measurements(kind: DeviceKind, channel: Channel = Channel.TELEMETRY) -> dict[str, Any]:
    """pilotlab's measurements of a device kind on a channel: name -> the model's field."""
    model = payload_model(kind, channel)
    return {name: field for name, field in model.model_fields.items() if name not in ENVELOPE_FIELDS}


def all_measurements(kind: DeviceKind) -> set[str]:
    """Every measurement a profile of `kind` may declare: its telemetry's and status' fields."""
    return set(measurements(kind, Channel.TELEMETRY)) | set(measurements(kind, Channel.STATUS))


@cache
def _value_check(kind: DeviceKind, channel: Channel, name: str) -> TypeAdapter[Any]:
    field = payload_model(kind, channel).model_fields[name]
    annotation: Any = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
    return TypeAdapter(annotation, config=ConfigDict(strict=True))


@cache
def is_enumeration(kind: DeviceKind, channel: Channel, name: str) -> bool:
    """Whether a measurement takes one of a few values (a state, a flag): what a value map is for."""
    annotation = payload_model(kind, channel).model_fields[name].annotation
    members = [a for a in (get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,))
               if a is not type(None)]
    return bool(members) and all(a is bool or get_origin(a) is Literal for a in members)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PilotlabCodec(_Strict):
    type: Literal["pilotlab"]
    layout: Literal["env_sensor", "smart_switch", "location_tracker", "status"] = Field(
        description="pilotlab's binary layout (devices.codecs): the device kind's telemetry, or status")


class CayenneLppCodec(_Strict):
    type: Literal["cayenne_lpp"]


class NetworkServerObjectCodec(_Strict):
    type: Literal["network_server_object"]


class JavascriptCodec(_Strict):
    type: Literal["javascript"]
    script: str = Field(min_length=1, description=f"the vendor's codec source, unchanged (at most "
                                                  f"{SCRIPT_MAX_BYTES // 1024} KiB of UTF-8)")

    @model_validator(mode="after")
    def _size(self) -> JavascriptCodec:
        size = len(self.script.encode("utf-8", "surrogatepass"))
        if size > SCRIPT_MAX_BYTES:
            raise ValueError(f"the script is {size} bytes; at most {SCRIPT_MAX_BYTES} ({SCRIPT_MAX_BYTES // 1024} KiB)")
        return self


Codec = Annotated[PilotlabCodec | CayenneLppCodec | NetworkServerObjectCodec | JavascriptCodec,
                  Field(discriminator="type")]


class MeasurementMapping(_Strict):
    from_: str = Field(alias="from", max_length=200, pattern=PATH_PATTERN,
                       description="path into the codec's output: keys joined by '.', list items as [n]",
                       examples=["data.temperature", "sensors[0].value"])
    to: str = Field(description="the pilotlab measurement it becomes")
    unit: str | None = Field(default=None, description="a unit conversion: " + ", ".join(UNIT_CONVERSIONS))
    values: dict[str, Scalar] | None = Field(default=None, max_length=64,
                                             description="an enumeration's values, e.g. {\"ON\": true, \"OFF\": false}")

    @model_validator(mode="after")
    def _conversion_known(self) -> MeasurementMapping:
        if self.unit is not None and self.unit not in UNIT_CONVERSIONS:
            raise ValueError(f"unit {self.unit!r} is not a known conversion; one of {', '.join(UNIT_CONVERSIONS)}")
        return self


class WithoutMeasurements(_Strict):
    """What a frame on the port becomes when the mapping finds none of its measurements in the
    codec's output (a device-information or start-up report on the port of the readings): an
    event of this name, the output kept in telemetry.extra, not a reading."""

    event: str = Field(description="the event's name, as a contract event's: a-z, 0-9, _ . - (at most 64)",
                       examples=["device_info"])


class FPortUplink(_Strict):
    codec: Codec
    channel: Literal["telemetry", "status"] = Field(default="telemetry", description="what the frames on this port are")
    mapping: list[MeasurementMapping] = Field(default_factory=list, max_length=MAPPING_MAX)
    without_measurements: WithoutMeasurements | None = Field(
        default=None, description="a frame the mapping finds no measurement in is this event, not a reading")


class NativeChannel(_Strict):
    mapping: list[MeasurementMapping] = Field(min_length=1, max_length=MAPPING_MAX)


LoraRegion = Literal["EU868", "US915", "CN779", "EU433", "AU915", "CN470", "AS923", "AS923_2", "AS923_3", "AS923_4",
                     "KR920", "IN865", "RU864", "ISM2400"]


class LorawanSettings(_Strict):
    """As ChirpStack's device profile names them (for the record; pilotlab does not run the MAC)."""

    region: LoraRegion | None = None
    mac_version: Literal["LORAWAN_1_0_0", "LORAWAN_1_0_1", "LORAWAN_1_0_2", "LORAWAN_1_0_3", "LORAWAN_1_0_4",
                         "LORAWAN_1_1_0"] | None = None
    reg_params_revision: Literal["A", "B", "RP002_1_0_0", "RP002_1_0_1", "RP002_1_0_2", "RP002_1_0_3",
                                 "RP002_1_0_4"] | None = None
    supports_otaa: bool | None = None


class SwitchDownlink(_Strict):
    """How a switch model takes a relay command over LoRaWAN (devices.commands): the vendor's frame
    for each state, as hex, on one fPort. A switch without one gets pilotlab's layout (fPort 3,
    devices.codecs.switch_command)."""

    f_port: int = Field(ge=FPORT_MIN, le=FPORT_MAX, description="the downlink's fPort")
    relay_on: str = Field(pattern=HEX_FRAME, description="the frame that closes the relay, hex (e.g. \"080100ff\")")
    relay_off: str = Field(pattern=HEX_FRAME, description="the frame that opens the relay, hex")
    confirmed: bool = Field(default=False, description="send it as a confirmed downlink")


class ProfileDefinition(_Strict):
    """One version of a device profile, as stored (device_profile_version.definition)."""

    vendor: Name
    model: Name
    firmware_version: Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]
    kind: DeviceKind
    reporting_interval_s: int = Field(ge=1, le=604_800, description="declared reporting interval, seconds")
    measurements: list[str] = Field(min_length=1, max_length=64, description="the measurements the model has")
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    lorawan: LorawanSettings | None = None
    uplinks: dict[str, FPortUplink] = Field(default_factory=dict, description="per LoRaWAN fPort (\"1\"-\"223\")")
    native: dict[Literal["telemetry", "status"], NativeChannel] = Field(
        default_factory=dict, description="per MQTT channel: the mapping of a native device's own JSON")
    downlink: SwitchDownlink | None = Field(
        default=None, description="a switch's relay command over LoRaWAN; none: pilotlab's layout on fPort 3")

    @model_validator(mode="after")
    def _consistent(self) -> ProfileDefinition:
        problems = self._problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _problems(self) -> list[str]:
        kind, problems = self.kind, []
        known = all_measurements(kind)
        unknown = [m for m in self.measurements if m not in known]
        if unknown:
            problems.append(f"measurements {unknown} are not {kind.value} measurements; known: {sorted(known)}")
        if len(set(self.measurements)) != len(self.measurements):
            problems.append("measurements lists a name twice")
        declared = set(self.measurements)
        if kind is DeviceKind.SMART_SWITCH and "relay_on" not in declared:
            problems.append("a smart_switch profile must declare relay_on")
        if kind is DeviceKind.LOCATION_TRACKER and not {"lat", "lon"} <= declared:
            problems.append("a location_tracker profile must declare lat and lon")
        if self.downlink is not None and kind is not DeviceKind.SMART_SWITCH:
            problems.append("downlink: only a smart_switch takes commands")
        if kind is DeviceKind.ENV_SENSOR and not declared & set(ENV_MEASUREMENTS):
            problems.append(f"an env_sensor profile must declare one of {list(ENV_MEASUREMENTS)}")
        for port, uplink in self.uplinks.items():
            where = f"uplinks[{port!r}]"
            if not (port.isdigit() and FPORT_MIN <= int(port) <= FPORT_MAX and port == str(int(port))):
                problems.append(f"{where}: an fPort is a number {FPORT_MIN}-{FPORT_MAX}")
                continue
            codec = uplink.codec
            if isinstance(codec, PilotlabCodec) and codec.layout not in (kind.value, "status"):
                problems.append(f"{where}: layout {codec.layout!r} is not a {kind.value}'s (use {kind.value!r} or 'status')")
            if isinstance(codec, PilotlabCodec) and (codec.layout == "status") != (uplink.channel == "status"):
                problems.append(f"{where}: the status layout is on the status channel, the {kind.value} layout on telemetry")
            if isinstance(codec, NetworkServerObjectCodec | JavascriptCodec) and not uplink.mapping:
                problems.append(f"{where}: a {codec.type} codec needs a mapping (its output has the vendor's names)")
            if uplink.without_measurements is not None:
                problems += self._routing_problems(where, uplink)
            problems += self._mapping_problems(where, Channel(uplink.channel), uplink.mapping, envelope=False)
        for channel, native in self.native.items():
            problems += self._mapping_problems(f"native[{channel!r}]", Channel(channel), native.mapping, envelope=True)
        return problems

    def _routing_problems(self, where: str, uplink: FPortUplink) -> list[str]:
        if isinstance(uplink.codec, PilotlabCodec):
            return [f"{where}: without_measurements is for a codec with a mapping; a pilotlab layout gives its fields"]
        event = uplink.without_measurements.event if uplink.without_measurements else ""
        try:
            _value_check(self.kind, Channel.EVENT, "event").validate_python(event)
        except ValidationError as exc:
            return [f"{where}: without_measurements.event {event!r} is no event name ({exc.errors()[0]['msg']})"]
        return []

    def _mapping_problems(self, where: str, channel: Channel, mapping: list[MeasurementMapping],
                          envelope: bool) -> list[str]:
        problems, fields = [], measurements(self.kind, channel)
        targets = [m.to for m in mapping]
        if len(set(targets)) != len(targets):
            problems.append(f"{where}: a measurement is mapped twice")
        for entry in mapping:
            at = f"{where} {entry.from_!r} -> {entry.to!r}"
            if envelope and entry.to in ENVELOPE_FIELDS:
                if entry.unit is not None or entry.values is not None:
                    problems.append(f"{at}: {entry.to} takes no unit conversion or value map")
                continue
            if entry.to not in fields:
                problems.append(f"{at}: {entry.to!r} is not a measurement of a {self.kind.value}'s {channel.value}; "
                                f"known: {sorted(fields)}")
                continue
            if entry.to not in self.measurements:
                problems.append(f"{at}: {entry.to!r} is not among the profile's measurements")
            if entry.unit is not None:
                target, unit = UNIT_CONVERSIONS[entry.unit][0], measurement_unit(entry.to)
                if target != unit:
                    problems.append(f"{at}: {entry.unit} gives {target}, {entry.to} is in {unit or 'no unit'}")
            if entry.values is not None and not is_enumeration(self.kind, channel, entry.to):
                enumerations = [name for name in fields if is_enumeration(self.kind, channel, name)]
                problems.append(f"{at}: a value map is for an enumeration ({', '.join(enumerations) or 'none here'}); "
                                f"{entry.to} is not one")
                continue
            for source, value in (entry.values or {}).items():
                try:
                    _value_check(self.kind, channel, entry.to).validate_python(value)
                except ValidationError as exc:
                    problems.append(f"{at}: values[{source!r}] = {value!r} is no valid {entry.to} "
                                    f"({exc.errors()[0]['msg']})")
        return problems

"""Payload models of MQTT contract v1, one per channel and device kind.

What ingest enforces here protects storage and meaning only, never plausibility (issue 15): every
message a registered device delivers must count in its score, so a well-formed reading with an
impossible value (an env sensor reporting 150 °C, humidity of 140 %) is stored, and quality
control's gross-range test fails it in scoring (the rubric's sensor span per kind and metric).
Per field:

- measurements (every number but the coordinates): any finite JSON number within ±1e12
  (`MEASUREMENT_LIMIT`). Beyond it nothing a sensor could mean is lost, and PostgreSQL, which
  raises on float8 overflow rather than giving infinity, can sum and square any number of them
  in rollups, QC and scores;
- `lat`, `lon`: -90 … 90 and -180 … 180. Coordinates, not measurements: outside them a position
  names no place on Earth, and a position is what maps and geofences read;
- `seq`, `uptime_s`: unsigned 32-bit counters; `seq` is part of a message's identity;
- `ts`: 2000 to a day ahead (ingest.rows), as the clock of the reading;
- enumerations, string lengths and patterns: what the columns and readers expect.

A value beyond these is refused with its message as `out_of_range` (a dead letter counted against
its device: ingest.writer).

Every payload carries `ts` (device time: RFC 3339 with offset, or Unix epoch milliseconds) and
`seq` (per-device counter shared by all of the device's channels, 0 … 2^32-1). Unknown fields are
refused, and types are strict (no `"seq": true`, no `"relay_on": "yes"`, no `"21.5"` for a
number; an integer is fine where a number is expected), so that a firmware bug is found on the
first message, not after a month of pilot.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, GetJsonSchemaHandler, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from pydantic_core import core_schema as cs

from devices.kinds import Channel, DeviceKind

SEQ_MAX = 2**32 - 1

MEASUREMENT_LIMIT = 1e12
Measurement = Annotated[float, Field(ge=-MEASUREMENT_LIMIT, le=MEASUREMENT_LIMIT)]


def plausible(meaning: str, low: float | None = None, high: float | None = None) -> str:
    """A measurement's description: what it is, and the plausible range quality control holds it
    to (rubric v1's sensor span; the ingest stores any value within MEASUREMENT_LIMIT)."""
    if low is None or high is None:
        return f"{meaning}. No QC range: stored as sent"
    return f"{meaning}. Plausible (QC gross range, rubric v1): {low:g} … {high:g}; outside it: stored, fails QC"


BATTERY = plausible("battery charge, %")

# RFC 3339 date-time (section 5.6; T and Z may be lower case): seconds required, any fraction,
# an offset required and written with a colon.
RFC3339 = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
DEVICE_TIME_EXPECTED = "expected an RFC 3339 time with an offset or integer epoch milliseconds"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_MS_2000, EPOCH_MS_END_9999 = 946_684_800_000, 253_402_300_799_999


def _epoch_ms(value: int) -> datetime:
    """Epoch milliseconds outside 2000 … 9999, where pydantic would read the integer as seconds
    or give up; clamped when no datetime can hold it. Either way refused later as out of range."""
    try:
        return _EPOCH + timedelta(milliseconds=value)
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC) if value > 0 else datetime.min.replace(tzinfo=UTC)


class _DeviceTimeSchema:
    """`ts` as written: an RFC 3339 string (checked by pattern, parsed by pydantic) or a JSON integer
    of epoch milliseconds. Never a bool, a float or a numeric string. In Python (readings that an
    adapter built) an aware datetime is taken too. Everything but rare out-of-range integers is
    validated inside pydantic-core, so the contract's hot path stays in Rust."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        text = cs.chain_schema([cs.str_schema(strict=True, pattern=RFC3339),
                                cs.datetime_schema(strict=False, tz_constraint="aware")])
        # pydantic reads integers from 2e10 up as milliseconds: give it only 2000-01-01 … 9999-12-31.
        epoch_ms = cs.chain_schema([cs.int_schema(strict=True, ge=EPOCH_MS_2000, le=EPOCH_MS_END_9999),
                                    cs.datetime_schema(strict=False)])
        other_ms = cs.no_info_after_validator_function(_epoch_ms, cs.int_schema(strict=True))

        def choice(*members: CoreSchema) -> CoreSchema:
            return cs.union_schema(list(members), mode="left_to_right", custom_error_type="device_time",
                                   custom_error_message=DEVICE_TIME_EXPECTED)

        return cs.json_or_python_schema(
            json_schema=choice(text, epoch_ms, other_ms),
            python_schema=choice(cs.datetime_schema(strict=True, tz_constraint="aware"), text, epoch_ms, other_ms),
        )

    def __get_pydantic_json_schema__(self, core: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        """What a device may send (devices.contract_schema): the integers outside 2000 … 9999 that
        the core schema lets through only to refuse them as out of range are left out."""
        return {"anyOf": [{"type": "string", "pattern": RFC3339},
                          {"type": "integer", "minimum": EPOCH_MS_2000, "maximum": EPOCH_MS_END_9999}]}


DeviceTime = Annotated[datetime, _DeviceTimeSchema()]


class Envelope(BaseModel):
    """Fields every contract payload carries. Strict: a value must already have its field's JSON
    type (an integer is taken where a number is expected, nothing else is converted)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)

    ts: DeviceTime = Field(description="device time of the measurement: RFC 3339 with seconds and an offset, or "
                                       "Unix epoch milliseconds; from 2000 to at most a day ahead")
    seq: int = Field(ge=0, le=SEQ_MAX, description="the device's message counter, shared by all its channels, "
                                                   "+1 per message; may restart after a reboot")


# --- telemetry, per kind ---------------------------------------------------------------------

SwitchTrigger = Literal["heartbeat", "button", "app", "schedule", "remote", "overload", "power_on"]


class SmartSwitchTelemetry(Envelope):
    """A smart switch: its relay state (the minimal core), and metering if it has any. `trigger` says
    why this message was sent: `heartbeat` for the periodic report, otherwise what toggled the relay."""

    relay_on: bool = Field(description="relay closed (the load is powered)")
    power_w: Measurement | None = Field(default=None, description=plausible(
        "active power, W (a switch without metering leaves it out)", 0, 3680))
    energy_wh: Measurement | None = Field(default=None, description=plausible(
        "energy meter, Wh (a running counter; a switch without metering leaves it out)"))
    trigger: SwitchTrigger = Field(default="heartbeat", description="why it was sent: heartbeat for the periodic "
                                                                     "report, else what toggled the relay")


FixType = Literal["none", "2d", "3d", "wifi", "cell"]


FIX_NEEDS_POSITION = "a fix other than 'none' needs both lat and lon"
LAT_LON_TOGETHER = "lat and lon come together"


def _is_number(*fields: str) -> dict[str, Any]:
    return {"properties": {f: {"type": "number"} for f in fields}, "required": list(fields)}


class LocationTrackerTelemetry(Envelope):
    """A child / dementia-patient / vehicle tracker: a position or a no-fix report (the minimal core).
    Without a fix, lat/lon are omitted; a tracker without a battery gauge leaves battery_pct out."""

    # The validator's rules, for the JSON Schema (devices.contract_schema).
    model_config = ConfigDict(json_schema_extra={
        "allOf": [{"if": _is_number("lat"), "then": _is_number("lon")},
                  {"if": _is_number("lon"), "then": _is_number("lat")},
                  {"if": {"properties": {"fix_type": {"not": {"const": "none"}}}, "required": ["fix_type"]},
                   "then": _is_number("lat", "lon")}],
        "x-pilotlab-rules": [FIX_NEEDS_POSITION, LAT_LON_TOGETHER]})

    lat: float | None = Field(default=None, ge=-90, le=90, description="latitude, degrees (WGS 84); a coordinate, "
                                                                        "not a measurement: beyond ±90 no place, refused")
    lon: float | None = Field(default=None, ge=-180, le=180, description="longitude, degrees (WGS 84); a coordinate, "
                                                                           "not a measurement: beyond ±180 no place, refused")
    altitude_m: Measurement | None = Field(default=None, description=plausible(
        "altitude, m (as the receiver gives it: above sea level or the ellipsoid)"))
    accuracy_m: Measurement | None = Field(default=None, description=plausible("horizontal accuracy, m", 0, 5000))
    speed_mps: Measurement | None = Field(default=None, description=plausible("ground speed, m/s", 0, 70))
    fix_type: FixType = Field(description="how the position was found; none: no position (leave lat and lon out)")
    battery_pct: Measurement | None = Field(default=None, description=BATTERY)

    @model_validator(mode="after")
    def _position_matches_fix(self) -> LocationTrackerTelemetry:
        has_position = self.lat is not None and self.lon is not None
        if self.fix_type != "none" and not has_position:
            raise ValueError(FIX_NEEDS_POSITION)
        if (self.lat is None) != (self.lon is None):
            raise ValueError(LAT_LON_TOGETHER)
        return self


ENV_MEASUREMENTS = ("temperature_c", "humidity_pct", "pm25_ugm3", "pm10_ugm3", "co2_ppm", "noise_dba")
NEEDS_A_MEASUREMENT = "an environment reading needs at least one measurement"


class EnvSensorTelemetry(Envelope):
    """An indoor or outdoor environment sensor. A model carries only the sensors it has, but at
    least one measurement."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [_is_number(f) for f in ENV_MEASUREMENTS],
                                                 "x-pilotlab-rules": [NEEDS_A_MEASUREMENT]})

    temperature_c: Measurement | None = Field(default=None, description=plausible("air temperature, °C", -40, 85))
    humidity_pct: Measurement | None = Field(default=None, description=plausible("relative humidity, %", 0, 100))
    pm25_ugm3: Measurement | None = Field(default=None, description=plausible("PM2.5, µg/m³", 0, 1000))
    pm10_ugm3: Measurement | None = Field(default=None, description=plausible("PM10, µg/m³", 0, 1000))
    co2_ppm: Measurement | None = Field(default=None, description=plausible("CO₂, ppm", 300, 10000))
    noise_dba: Measurement | None = Field(default=None, description=plausible("sound level, dBA", 20, 130))
    battery_pct: Measurement | None = Field(default=None, description=BATTERY)

    @model_validator(mode="after")
    def _measures_something(self) -> EnvSensorTelemetry:
        # Spelled out: all(getattr(...) for ...) cost 0.6 us per reading on the ingest hot path.
        if (self.temperature_c is None and self.humidity_pct is None and self.pm25_ugm3 is None
                and self.pm10_ugm3 is None and self.co2_ppm is None and self.noise_dba is None):
            raise ValueError(NEEDS_A_MEASUREMENT)
        return self


# --- status and events, any kind -------------------------------------------------------------

DeviceState = Literal["online", "offline", "rebooting", "low_battery", "error"]


class DeviceStatus(Envelope):
    """Status / heartbeat of any device: connectivity and housekeeping."""

    state: DeviceState = Field(description="the device's own state")
    battery_pct: Measurement | None = Field(default=None, description=BATTERY)
    rssi_dbm: Measurement | None = Field(default=None, description=plausible("received signal strength, dBm"))
    uptime_s: int | None = Field(default=None, ge=0, le=SEQ_MAX, description="seconds since boot")
    firmware: str | None = Field(default=None, max_length=64, description="firmware version")


class DeviceEvent(Envelope):
    """A discrete event: button press, geofence exit, fall detected, tamper, …"""

    event: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$", description="what happened")
    detail: dict[str, Any] | None = Field(default=None, description="anything about it, as a JSON object")


TELEMETRY_MODELS: dict[DeviceKind, type[Envelope]] = {
    DeviceKind.SMART_SWITCH: SmartSwitchTelemetry,
    DeviceKind.LOCATION_TRACKER: LocationTrackerTelemetry,
    DeviceKind.ENV_SENSOR: EnvSensorTelemetry,
}


# The model a message on (device kind, channel) must satisfy; a plain lookup for the hot path.
PAYLOAD_MODELS: dict[tuple[DeviceKind, Channel], type[Envelope]] = {
    (kind, channel): TELEMETRY_MODELS[kind] if channel is Channel.TELEMETRY
    else DeviceStatus if channel is Channel.STATUS else DeviceEvent
    for kind in DeviceKind for channel in Channel
}


def payload_model(kind: DeviceKind, channel: Channel) -> type[Envelope]:
    """The model a message on `channel` from a device of `kind` must satisfy."""
    return PAYLOAD_MODELS[kind, channel]

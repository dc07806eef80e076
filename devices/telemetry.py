"""Payload models of MQTT contract v1, one per channel and device kind.

Physical ranges live here: a value outside them cannot be a real measurement (humidity above
100 %, a latitude of 91°), so the message is dead-lettered as `out_of_range`. They are deliberately
wider than any sensor's rated span: a reading that is possible but outside the sensor's span is
stored and flagged later by quality control, not rejected here.

Every payload carries `ts` (device time: RFC 3339 with offset, or Unix epoch milliseconds) and
`seq` (per-device counter shared by all of the device's channels, 0 … 2^32-1). Unknown fields are
refused, and types are strict (no `"seq": true`, no `"relay_on": "yes"`, no `"21.5"` for a
number; an integer is fine where a number is expected), so that a firmware bug is found on the
first message, not after a month of pilot.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, model_validator
from pydantic_core import CoreSchema
from pydantic_core import core_schema as cs

from devices.kinds import Channel, DeviceKind

SEQ_MAX = 2**32 - 1

Percent = Annotated[float, Field(ge=0, le=100)]

# RFC 3339 date-time (section 5.6; T and Z may be lower case): seconds required, any fraction,
# an offset required and written with a colon.
RFC3339 = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
DEVICE_TIME_EXPECTED = "expected an RFC 3339 time with an offset or integer epoch milliseconds"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
        epoch_ms = cs.chain_schema([cs.int_schema(strict=True, ge=946_684_800_000, le=253_402_300_799_999),
                                    cs.datetime_schema(strict=False)])
        other_ms = cs.no_info_after_validator_function(_epoch_ms, cs.int_schema(strict=True))

        def choice(*members: CoreSchema) -> CoreSchema:
            return cs.union_schema(list(members), mode="left_to_right", custom_error_type="device_time",
                                   custom_error_message=DEVICE_TIME_EXPECTED)

        return cs.json_or_python_schema(
            json_schema=choice(text, epoch_ms, other_ms),
            python_schema=choice(cs.datetime_schema(strict=True, tz_constraint="aware"), text, epoch_ms, other_ms),
        )


DeviceTime = Annotated[datetime, _DeviceTimeSchema()]


class Envelope(BaseModel):
    """Fields every contract payload carries. Strict: a value must already have its field's JSON
    type (an integer is taken where a number is expected, nothing else is converted)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)

    ts: DeviceTime
    seq: int = Field(ge=0, le=SEQ_MAX)


# --- telemetry, per kind ---------------------------------------------------------------------

SwitchTrigger = Literal["heartbeat", "button", "app", "schedule", "remote", "overload", "power_on"]


class SmartSwitchTelemetry(Envelope):
    """A Wi-Fi smart switch: relay state and metering. `trigger` says why this message was sent:
    `heartbeat` for the periodic report, otherwise what toggled the relay."""

    relay_on: bool
    power_w: float = Field(ge=0, le=100_000)
    energy_wh: float = Field(ge=0, le=1e12)
    trigger: SwitchTrigger = "heartbeat"


FixType = Literal["none", "2d", "3d", "wifi", "cell"]


class LocationTrackerTelemetry(Envelope):
    """A child / dementia-patient / vehicle tracker. Without a fix, lat/lon may be omitted."""

    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)
    speed_mps: float | None = Field(default=None, ge=0, le=350)
    fix_type: FixType
    battery_pct: Percent

    @model_validator(mode="after")
    def _position_matches_fix(self) -> LocationTrackerTelemetry:
        has_position = self.lat is not None and self.lon is not None
        if self.fix_type != "none" and not has_position:
            raise ValueError("a fix other than 'none' needs both lat and lon")
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon come together")
        return self


class EnvSensorTelemetry(Envelope):
    """An indoor or outdoor environment sensor. A model carries only the sensors it has, but at
    least one measurement."""

    temperature_c: float | None = Field(default=None, ge=-90, le=100)
    humidity_pct: Percent | None = None
    pm25_ugm3: float | None = Field(default=None, ge=0, le=5_000)
    pm10_ugm3: float | None = Field(default=None, ge=0, le=5_000)
    co2_ppm: float | None = Field(default=None, ge=0, le=100_000)
    noise_dba: float | None = Field(default=None, ge=0, le=200)
    battery_pct: Percent | None = None

    @model_validator(mode="after")
    def _measures_something(self) -> EnvSensorTelemetry:
        # Spelled out: all(getattr(...) for ...) cost 0.6 us per reading on the ingest hot path.
        if (self.temperature_c is None and self.humidity_pct is None and self.pm25_ugm3 is None
                and self.pm10_ugm3 is None and self.co2_ppm is None and self.noise_dba is None):
            raise ValueError("an environment reading needs at least one measurement")
        return self


# --- status and events, any kind -------------------------------------------------------------

DeviceState = Literal["online", "offline", "rebooting", "low_battery", "error"]


class DeviceStatus(Envelope):
    """Status / heartbeat of any device: connectivity and housekeeping."""

    state: DeviceState
    battery_pct: Percent | None = None
    rssi_dbm: float | None = Field(default=None, ge=-200, le=20)
    uptime_s: int | None = Field(default=None, ge=0, le=SEQ_MAX)
    firmware: str | None = Field(default=None, max_length=64)


class DeviceEvent(Envelope):
    """A discrete event: button press, geofence exit, fall detected, tamper, …"""

    event: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")
    detail: dict[str, Any] | None = None


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

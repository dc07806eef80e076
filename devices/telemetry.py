"""Payload models of MQTT contract v1, one per channel and device kind.

Physical ranges live here: a value outside them cannot be a real measurement (humidity above
100 %, a latitude of 91°), so the message is dead-lettered as `out_of_range`. They are deliberately
wider than any sensor's rated span: a reading that is possible but outside the sensor's span is
stored and flagged later by quality control, not rejected here.

Every payload carries `ts` (device time: RFC 3339 with offset, or Unix epoch milliseconds) and
`seq` (per-device counter shared by all of the device's channels, 0 … 2^32-1). Unknown fields are
refused so that a typo in firmware is found on the first message, not after a month of pilot.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from devices.kinds import Channel, DeviceKind

SEQ_MAX = 2**32 - 1

Percent = Annotated[float, Field(ge=0, le=100)]


class Envelope(BaseModel):
    """Fields every contract payload carries."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=False)

    ts: AwareDatetime
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
        if all(
            getattr(self, name) is None
            for name in ("temperature_c", "humidity_pct", "pm25_ugm3", "pm10_ugm3", "co2_ppm", "noise_dba")
        ):
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


def payload_model(kind: DeviceKind, channel: Channel) -> type[Envelope]:
    """The model a message on `channel` from a device of `kind` must satisfy."""
    if channel is Channel.TELEMETRY:
        return TELEMETRY_MODELS[kind]
    if channel is Channel.STATUS:
        return DeviceStatus
    return DeviceEvent

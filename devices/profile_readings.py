"""What a frame read through a device profile must carry to be a reading (issue 14).

Contract v1 payloads keep their models (devices.telemetry), as published. Through a profile the
kind's minimal core is a property of the device model: its profile must declare it
(devices.profiles: a smart_switch relay_on, a location_tracker lat and lon, an env_sensor an
environment measurement). A frame read through the profile is a reading when it carries one of its
kind's measurements, since real devices report them in frames of their own:

- smart switch: relay_on, power_w or energy_wh (a metering report without the relay's state is a
  reading with relay_on null);
- location tracker: a position, or else a no-fix report (ingest sets fix_type 'none' for a frame
  without a position, as contract v1 requires it then);
- environment sensor: one environment measurement (a battery charge alone is none), as in v1.

A frame with none is an invalid_payload dead letter, unless its fPort's profile entry routes frames
without measurements to an event (devices.profiles.WithoutMeasurements).

Values are held to contract v1's limits, which protect storage and meaning only (devices.telemetry):
a frame whose codec and mapping give an impossible measurement (a unit conversion gone wrong, a
sensor reporting 150 °C) is stored and fails quality control in scoring, as a v1 payload would.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from devices.kinds import Channel, DeviceKind
from devices.telemetry import PAYLOAD_MODELS, Envelope, SmartSwitchTelemetry

SWITCH_MEASUREMENTS = ("relay_on", "power_w", "energy_wh")
NEEDS_A_SWITCH_MEASUREMENT = "a smart switch reading needs relay_on, power_w or energy_wh"


class ProfileSmartSwitchTelemetry(SmartSwitchTelemetry):
    """A smart switch's frame as its profile read it: the relay's state, its metering, or both."""

    # pydantic lets a subclass widen a field; mypy sees a frozen model's attribute change type.
    relay_on: bool | None = Field(default=None, description="relay closed (the load is powered); null: "  # type: ignore[assignment]
                                                            "a frame without the relay's state")

    @model_validator(mode="after")
    def _measures_something(self) -> ProfileSmartSwitchTelemetry:
        if self.relay_on is None and self.power_w is None and self.energy_wh is None:
            raise ValueError(NEEDS_A_SWITCH_MEASUREMENT)
        return self


# The model a frame read through a profile must satisfy, on (device kind, channel).
PROFILE_PAYLOAD_MODELS: dict[tuple[DeviceKind, Channel], type[Envelope]] = PAYLOAD_MODELS | {
    (DeviceKind.SMART_SWITCH, Channel.TELEMETRY): ProfileSmartSwitchTelemetry,
}


def profile_payload_model(kind: DeviceKind, channel: Channel) -> type[Envelope]:
    """The model a frame of a device of `kind` read through its profile on `channel` must satisfy."""
    return PROFILE_PAYLOAD_MODELS[kind, channel]

"""The registry's closed vocabularies: device kinds, connectivity, message channels."""

from __future__ import annotations

from enum import StrEnum


class DeviceKind(StrEnum):
    SMART_SWITCH = "smart_switch"
    LOCATION_TRACKER = "location_tracker"
    ENV_SENSOR = "env_sensor"


class Connectivity(StrEnum):
    WIFI = "wifi"
    LPWA = "lpwa"
    CELLULAR = "cellular"


class Channel(StrEnum):
    """The last level of a contract topic; each has its own payload model."""

    TELEMETRY = "telemetry"
    STATUS = "status"
    EVENT = "event"

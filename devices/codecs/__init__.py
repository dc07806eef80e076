"""Binary payloads for LPWA-sized frames (≤ 51 bytes, most under 12), one module per layout.

Every pilotlab layout starts with a version byte (now 1), so a firmware can change its layout
without breaking older devices. Which layout a frame uses is said by its LoRaWAN fPort:

    fPort 1    telemetry of the device's kind (env_sensor, smart_switch, location_tracker)
    fPort 2    status / heartbeat (any kind)
    fPort 10   Cayenne LPP (off-the-shelf sensors)

`decode_frame` returns the channel and the fields of the contract's payload model, without `ts`
and `seq` (the network server's time and the frame counter supply those). The simulators encode
with the same modules, so what they send and what ingest reads cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from devices.codecs import cayenne_lpp, env_sensor, location_tracker, smart_switch, status
from devices.kinds import Channel, DeviceKind
from pilotlab.errors import CodecError

FPORT_TELEMETRY = 1
FPORT_STATUS = 2
FPORT_CAYENNE_LPP = 10

TELEMETRY_CODECS: dict[DeviceKind, tuple[Callable[[dict[str, Any]], bytes], Callable[[bytes], dict[str, Any]]]] = {
    DeviceKind.ENV_SENSOR: (env_sensor.encode, env_sensor.decode),
    DeviceKind.SMART_SWITCH: (smart_switch.encode, smart_switch.decode),
    DeviceKind.LOCATION_TRACKER: (location_tracker.encode, location_tracker.decode),
}


class UnknownPort(CodecError):
    """No pilotlab layout is defined for this fPort."""


def decode_frame(kind: DeviceKind, f_port: int, data: bytes) -> tuple[Channel, dict[str, Any]]:
    """(channel, fields) of one frame; CodecError if the bytes break the layout, UnknownPort if
    the port has none."""
    if f_port == FPORT_TELEMETRY:
        return Channel.TELEMETRY, TELEMETRY_CODECS[kind][1](data)
    if f_port == FPORT_STATUS:
        return Channel.STATUS, status.decode(data)
    if f_port == FPORT_CAYENNE_LPP:
        return Channel.TELEMETRY, cayenne_lpp.to_fields(cayenne_lpp.decode(data))
    raise UnknownPort(f"fPort {f_port} has no pilotlab layout (1 telemetry, 2 status, 10 Cayenne LPP)")


def encode_frame(kind: DeviceKind, channel: Channel, fields: dict[str, Any]) -> tuple[int, bytes]:
    """(fPort, bytes) for a telemetry or status payload's fields (ts and seq are ignored)."""
    if channel is Channel.TELEMETRY:
        return FPORT_TELEMETRY, TELEMETRY_CODECS[kind][0](fields)
    if channel is Channel.STATUS:
        return FPORT_STATUS, status.encode(fields)
    raise CodecError(f"no binary layout for the {channel.value} channel")

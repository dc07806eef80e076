"""Status / heartbeat of any kind, binary layout v1 (fPort 2), 7 bytes.

    byte 0      version = 0x01
    byte 1      state (index into STATES)
    byte 2      battery_pct  uint8 × 1 %, 0xFF = not reported
    bytes 3-6   uptime_s     uint32
"""

from __future__ import annotations

import struct
from typing import Any

from devices.codecs.byte_reader import ByteReader, scaled
from pilotlab.errors import CodecError

VERSION = 1
STATES = ("online", "offline", "rebooting", "low_battery", "error")
NO_BATTERY = 0xFF


def encode(fields: dict[str, Any]) -> bytes:
    state = fields.get("state", "online")
    if state not in STATES:
        raise CodecError(f"state {state!r} has no code")
    battery = fields.get("battery_pct")
    raw_battery = NO_BATTERY if battery is None else scaled(battery, 1, 0, 254, "battery_pct")
    return struct.pack(">BBBI", VERSION, STATES.index(state), raw_battery,
                       scaled(fields.get("uptime_s", 0), 1, 0, 2**32 - 1, "uptime_s"))


def decode(data: bytes) -> dict[str, Any]:
    reader = ByteReader(data, "status v1")
    reader.version(VERSION)
    state = reader.read("u8")
    if state >= len(STATES):
        raise CodecError(f"status v1: state code {state} is not defined")
    battery = reader.read("u8")
    uptime = reader.read("u32")
    reader.finish()
    out: dict[str, Any] = {"state": STATES[state], "uptime_s": uptime}
    if battery != NO_BATTERY:
        out["battery_pct"] = float(battery)
    return out

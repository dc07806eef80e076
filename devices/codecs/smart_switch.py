"""Smart switch telemetry, binary layout v1 (fPort 1), 10 bytes.

    byte 0      version = 0x01
    byte 1      bit 0 relay_on; bits 1-3 trigger (index into TRIGGERS)
    bytes 2-5   power_w     uint32  × 0.1 W
    bytes 6-9   energy_wh   uint32  × 0.1 Wh
"""

from __future__ import annotations

import struct
from typing import Any

from devices.codecs.byte_reader import ByteReader, scaled
from pilotlab.errors import CodecError

VERSION = 1
TRIGGERS = ("heartbeat", "button", "app", "schedule", "remote", "overload", "power_on")
_U32 = 2**32 - 1


def encode(fields: dict[str, Any]) -> bytes:
    trigger = fields.get("trigger", "heartbeat")
    if trigger not in TRIGGERS:
        raise CodecError(f"trigger {trigger!r} has no code")
    flags = (1 if fields["relay_on"] else 0) | (TRIGGERS.index(trigger) << 1)
    return struct.pack(">BBII", VERSION, flags, scaled(fields["power_w"], 0.1, 0, _U32, "power_w"),
                       scaled(fields["energy_wh"], 0.1, 0, _U32, "energy_wh"))


def decode(data: bytes) -> dict[str, Any]:
    reader = ByteReader(data, "smart_switch v1")
    reader.version(VERSION)
    flags = reader.read("u8")
    trigger = flags >> 1
    if trigger >= len(TRIGGERS):
        raise CodecError(f"smart_switch v1: trigger code {trigger} is not defined")
    power, energy = reader.read("u32"), reader.read("u32")
    reader.finish()
    return {"relay_on": bool(flags & 1), "trigger": TRIGGERS[trigger],
            "power_w": round(power * 0.1, 1), "energy_wh": round(energy * 0.1, 1)}

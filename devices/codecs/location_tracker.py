"""Location tracker telemetry, binary layout v1 (fPort 1): 4 bytes without a fix, 15 with all.

    byte 0      version = 0x01
    byte 1      bits 0-2 fix type (index into FIX_TYPES); bit 3 position present;
                bit 4 accuracy present; bit 5 speed present
    byte 2      battery_pct  uint8   × 1 %
    then, if flagged (big-endian):
      lat, lon        int32 × 1e-7 °  (8 bytes)
      accuracy_m      uint16 × 0.1 m  (65535 = 6553.5 m or worse)
      speed_mps       uint16 × 0.01 m/s
"""

from __future__ import annotations

import struct
from typing import Any

from devices.codecs.byte_reader import ByteReader, scaled
from pilotlab.errors import CodecError

VERSION = 1
FIX_TYPES = ("none", "2d", "3d", "wifi", "cell")
_I32 = 2**31 - 1


def encode(fields: dict[str, Any]) -> bytes:
    fix = fields.get("fix_type", "none")
    if fix not in FIX_TYPES:
        raise CodecError(f"fix_type {fix!r} has no code")
    flags = FIX_TYPES.index(fix)
    body = b""
    if fields.get("lat") is not None and fields.get("lon") is not None:
        flags |= 1 << 3
        body += struct.pack(">ii", scaled(fields["lat"], 1e-7, -_I32, _I32, "lat"),
                            scaled(fields["lon"], 1e-7, -_I32, _I32, "lon"))
    if fields.get("accuracy_m") is not None:
        flags |= 1 << 4
        body += struct.pack(">H", min(65535, scaled(fields["accuracy_m"], 0.1, 0, 2**31, "accuracy_m")))
    if fields.get("speed_mps") is not None:
        flags |= 1 << 5
        body += struct.pack(">H", scaled(fields["speed_mps"], 0.01, 0, 65535, "speed_mps"))
    return struct.pack(">BBB", VERSION, flags, scaled(fields["battery_pct"], 1, 0, 255, "battery_pct")) + body


def decode(data: bytes) -> dict[str, Any]:
    reader = ByteReader(data, "location_tracker v1")
    reader.version(VERSION)
    flags = reader.read("u8")
    if flags >> 6 or (flags & 7) >= len(FIX_TYPES):
        raise CodecError(f"location_tracker v1: undefined flag bits 0x{flags:02x}")
    out: dict[str, Any] = {"fix_type": FIX_TYPES[flags & 7], "battery_pct": float(reader.read("u8"))}
    if flags & (1 << 3):
        out["lat"] = round(reader.read("i32") * 1e-7, 7)
        out["lon"] = round(reader.read("i32") * 1e-7, 7)
    if flags & (1 << 4):
        out["accuracy_m"] = round(reader.read("u16") * 0.1, 1)
    if flags & (1 << 5):
        out["speed_mps"] = round(reader.read("u16") * 0.01, 2)
    reader.finish()
    return out

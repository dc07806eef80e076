"""Environment sensor telemetry, binary layout v1 (fPort 1).

    byte 0      version = 0x01
    byte 1      presence bits: 0 temperature, 1 humidity, 2 pm2.5, 3 pm10, 4 CO2, 5 noise, 6 battery
    then, in bit order, only the fields present (big-endian):
      temperature_c   int16   × 0.01 °C
      humidity_pct    uint8   × 0.5 %
      pm25_ugm3       uint16  × 0.1 µg/m³
      pm10_ugm3       uint16  × 0.1 µg/m³
      co2_ppm         uint16  × 1 ppm
      noise_dba       uint16  × 0.1 dBA
      battery_pct     uint8   × 1 %

All seven fields: 14 bytes; temperature + humidity + battery: 6 bytes.
"""

from __future__ import annotations

import struct
from typing import Any

from devices.codecs.byte_reader import ByteReader, scaled
from pilotlab.errors import CodecError

VERSION = 1
# (field, struct type, scale, raw min, raw max)
FIELDS: tuple[tuple[str, str, float, int, int], ...] = (
    ("temperature_c", "i16", 0.01, -32768, 32767),
    ("humidity_pct", "u8", 0.5, 0, 255),
    ("pm25_ugm3", "u16", 0.1, 0, 65535),
    ("pm10_ugm3", "u16", 0.1, 0, 65535),
    ("co2_ppm", "u16", 1.0, 0, 65535),
    ("noise_dba", "u16", 0.1, 0, 65535),
    ("battery_pct", "u8", 1.0, 0, 255),
)
_PACK = {"u8": ">B", "i16": ">h", "u16": ">H"}


def encode(fields: dict[str, Any]) -> bytes:
    bits = 0
    body = b""
    for bit, (name, kind, scale, lo, hi) in enumerate(FIELDS):
        value = fields.get(name)
        if value is None:
            continue
        bits |= 1 << bit
        body += struct.pack(_PACK[kind], scaled(value, scale, lo, hi, name))
    if not bits:
        raise CodecError("an environment reading needs at least one field")
    return bytes((VERSION, bits)) + body


def decode(data: bytes) -> dict[str, Any]:
    reader = ByteReader(data, "env_sensor v1")
    reader.version(VERSION)
    bits = reader.read("u8")
    if bits >> len(FIELDS):
        raise CodecError(f"env_sensor v1: unknown presence bits 0x{bits:02x}")
    out: dict[str, Any] = {}
    for bit, (name, kind, scale, _, _) in enumerate(FIELDS):
        if bits & (1 << bit):
            out[name] = round(reader.read(kind) * scale, 2)
    reader.finish()
    return out

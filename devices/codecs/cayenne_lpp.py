"""Cayenne Low Power Payload (LPP), as many off-the-shelf LPWA sensors speak it (fPort 10).

A payload is a sequence of [channel: u8][type: u8][value: size by type], big-endian. Decoding
returns every (channel, type name, value); `to_fields` maps the types pilotlab has columns for:

    type 103 temperature  int16  × 0.1 °C            → temperature_c
    type 104 humidity     uint8  × 0.5 %             → humidity_pct
    type 120 percentage   uint8  × 1 %               → battery_pct
    type 125 concentration uint16 × 1 ppm            → co2_ppm
    type 136 GPS          int24 lat, lon × 0.0001 °, int24 alt × 0.01 m → lat, lon, altitude_m (fix "3d")

Other known types are decoded and ignored; an unknown type cannot be skipped (its size is
unknown), so the payload is refused.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from devices.codecs.byte_reader import ByteReader, scaled
from pilotlab.errors import CodecError

# type id → (name, size in bytes, signed, scale); GPS (136) and 3-axis types are special-cased.
TYPES: dict[int, tuple[str, int, bool, float]] = {
    0: ("digital_input", 1, False, 1),
    1: ("digital_output", 1, False, 1),
    2: ("analog_input", 2, True, 0.01),
    3: ("analog_output", 2, True, 0.01),
    101: ("illuminance", 2, False, 1),
    102: ("presence", 1, False, 1),
    103: ("temperature", 2, True, 0.1),
    104: ("humidity", 1, False, 0.5),
    113: ("accelerometer", 6, True, 0.001),
    115: ("barometer", 2, False, 0.1),
    120: ("percentage", 1, False, 1),
    125: ("concentration", 2, False, 1),
    134: ("gyrometer", 6, True, 0.01),
    136: ("gps", 9, True, 0),
}
_TYPE_IDS = {name: type_id for type_id, (name, *_rest) in TYPES.items()}
_FIELD_OF = {"temperature": "temperature_c", "humidity": "humidity_pct", "percentage": "battery_pct",
             "concentration": "co2_ppm"}


class LppValue(NamedTuple):
    channel: int
    type: str
    value: Any  # a number, or a tuple for gps / 3-axis types


def decode(data: bytes) -> list[LppValue]:
    if not data:
        raise CodecError("cayenne lpp: empty payload")
    reader = ByteReader(data, "cayenne lpp")
    values = []
    while reader.offset < len(data):
        channel, type_id = reader.read("u8"), reader.read("u8")
        spec = TYPES.get(type_id)
        if spec is None:
            raise CodecError(f"cayenne lpp: unknown type {type_id} on channel {channel} at byte {reader.offset - 1}")
        name, size, signed, scale = spec
        if name == "gps":
            lat, lon, alt = reader.read_i24(), reader.read_i24(), reader.read_i24()
            values.append(LppValue(channel, name, (round(lat * 1e-4, 4), round(lon * 1e-4, 4), round(alt * 0.01, 2))))
        elif size == 6:
            axes = tuple(round(reader.read("i16") * scale, 3) for _ in range(3))
            values.append(LppValue(channel, name, axes))
        else:
            raw = reader.read(("i16" if signed else "u16") if size == 2 else "u8")
            values.append(LppValue(channel, name, round(raw * scale, 2)))
    return values


def to_fields(values: list[LppValue]) -> dict[str, Any]:
    """The pilotlab fields these values carry (the first of each type wins)."""
    out: dict[str, Any] = {}
    for item in values:
        if item.type == "gps" and "lat" not in out:
            out["lat"], out["lon"], out["altitude_m"] = item.value
            out["fix_type"] = "3d"
        else:
            field = _FIELD_OF.get(item.type)
            if field and field not in out:
                out[field] = float(item.value)
    return out


def encode(values: list[LppValue]) -> bytes:
    out = b""
    for item in values:
        type_id = _TYPE_IDS[item.type]
        _, size, signed, scale = TYPES[type_id]
        out += bytes((item.channel, type_id))
        if item.type == "gps":
            lat, lon, alt = item.value
            out += b"".join(v.to_bytes(3, "big", signed=True) for v in
                            (scaled(lat, 1e-4, -2**23, 2**23 - 1, "lat"), scaled(lon, 1e-4, -2**23, 2**23 - 1, "lon"),
                             scaled(alt, 0.01, -2**23, 2**23 - 1, "alt")))
        elif size == 6:
            out += struct.pack(">hhh", *(scaled(v, scale, -32768, 32767, item.type) for v in item.value))
        else:
            lo, hi = (-(2 ** (8 * size - 1)), 2 ** (8 * size - 1) - 1) if signed else (0, 2 ** (8 * size) - 1)
            raw = scaled(item.value, scale, lo, hi, item.type)
            out += raw.to_bytes(size, "big", signed=signed)
    return out

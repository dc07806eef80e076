"""Bounds-checked big-endian reads over one binary payload, shared by every codec."""

from __future__ import annotations

import struct

from pilotlab.errors import CodecError

_FORMATS = {kind: struct.Struct(fmt) for kind, fmt in
            {"u8": ">B", "i16": ">h", "u16": ">H", "i32": ">i", "u32": ">I"}.items()}


class ByteReader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.what = what
        self.offset = 0

    def read(self, kind: str) -> int:
        layout = _FORMATS[kind]
        offset = self.offset
        if offset + layout.size > len(self.data):
            raise CodecError(f"{self.what}: payload ends at byte {len(self.data)}, "
                             f"{kind} needed at byte {offset}")
        self.offset = offset + layout.size
        return int(layout.unpack_from(self.data, offset)[0])

    def read_i24(self) -> int:
        if self.offset + 3 > len(self.data):
            raise CodecError(f"{self.what}: payload ends at byte {len(self.data)}, 3 bytes needed at {self.offset}")
        value = int.from_bytes(self.data[self.offset:self.offset + 3], "big", signed=True)
        self.offset += 3
        return value

    def version(self, expected: int) -> None:
        found = self.read("u8")
        if found != expected:
            raise CodecError(f"{self.what}: layout version {found}, this decoder reads version {expected}")

    def finish(self) -> None:
        if self.offset != len(self.data):
            raise CodecError(f"{self.what}: {len(self.data) - self.offset} unexpected trailing byte(s)")


def scaled(value: float, scale: float, lo: int, hi: int, name: str) -> int:
    """`value / scale` rounded to an integer that fits [lo, hi], or CodecError."""
    raw = round(value / scale)
    if not lo <= raw <= hi:
        raise CodecError(f"{name}={value} does not fit the layout ({lo * scale} … {hi * scale})")
    return raw

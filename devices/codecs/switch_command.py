"""Smart switch command, binary layout v1 (LoRaWAN downlink on fPort 3), 3 bytes.

    byte 0      version = 0x01
    byte 1      command = 0x01 (set the relay)
    byte 2      0x00 relay off, 0x01 relay on

pilotlab's own layout, for a switch whose device profile declares no downlink of its own
(devices.profiles.SwitchDownlink): `01 01 01` (base64 `AQEB`) switches the relay on.
"""

from __future__ import annotations

from devices.codecs.byte_reader import ByteReader
from pilotlab.errors import CodecError

VERSION = 1
F_PORT = 3
SET_RELAY = 0x01


def encode(relay_on: bool) -> bytes:
    return bytes((VERSION, SET_RELAY, 1 if relay_on else 0))


def decode(data: bytes) -> bool:
    """The relay state a command frame asks for (what a switch's firmware reads)."""
    reader = ByteReader(data, "switch command v1")
    reader.version(VERSION)
    command, state = reader.read("u8"), reader.read("u8")
    reader.finish()
    if command != SET_RELAY or state > 1:
        raise CodecError(f"switch command v1: command {command} with value {state} is not defined")
    return state == 1

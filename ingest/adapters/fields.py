"""Readers for the fields of network servers' JSON events (protobuf JSON mapping): each returns
the value in pilotlab's shape or raises MessageRejected naming the field."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pilotlab.errors import MessageRejected, RejectReason

DEV_EUI = re.compile(r"^[0-9a-fA-F]{16}$")
DEV_ADDR = re.compile(r"^[0-9a-fA-F]{8}$")
_RFC3339 = re.compile(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?([+-]\d\d:\d\d)")


def parse_time(value: Any, what: str) -> datetime:
    """An RFC 3339 time with an offset (nanoseconds are truncated to microseconds)."""
    if not isinstance(value, str):
        raise MessageRejected(RejectReason.INVALID_PAYLOAD, f"{what}: expected an RFC 3339 time")
    text = value.replace("Z", "+00:00")
    match = _RFC3339.fullmatch(text)
    if not match:
        raise MessageRejected(RejectReason.INVALID_PAYLOAD, f"{what}: {value!r} is not an RFC 3339 time with offset")
    whole, fraction, offset = match.groups()
    if fraction is not None and len(fraction) > 7:
        text = whole + fraction[:7] + offset
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise MessageRejected(RejectReason.INVALID_PAYLOAD, f"{what}: {value!r} is not a valid time") from None


def counter(value: Any, what: str, maximum: int) -> int:
    """A non-negative integer field; protobuf JSON omits zeros, so absent means 0."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise MessageRejected(RejectReason.INVALID_PAYLOAD, f"{what}: expected an integer 0 … {maximum}")
    return value


def as_object(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one: optional sub-objects of a network
    server's event may be missing or, in hostile input, of any type."""
    return value if isinstance(value, dict) else {}


def as_int(value: Any) -> int | None:
    """An integer given as a JSON number or a decimal string (TTS writes frequencies as strings)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value and abs(value) < 1e6 else None


def dev_eui_of(value: Any, what: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not DEV_EUI.fullmatch(value):
        raise MessageRejected(RejectReason.INVALID_PAYLOAD, f"{what}: {value!r} is not a 16-hex-digit DevEUI")
    return value.lower()


def dev_addr_of(value: Any) -> str | None:
    """A DevAddr as 8 lower-case hex digits (ChirpStack writes lower case, The Things Stack upper
    case); anything else is None: link metadata never refuses an uplink."""
    return value.lower() if isinstance(value, str) and DEV_ADDR.fullmatch(value) else None


def gateway_eui_of(value: Any) -> str | None:
    """A gateway EUI as 16 lower-case hex digits, or None."""
    return value.lower() if isinstance(value, str) and DEV_EUI.fullmatch(value) else None


def index_of(value: Any, maximum: int) -> int | None:
    """A small non-negative integer (a data-rate index), or None if absent or not one."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= maximum else None

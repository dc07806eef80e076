"""RFC 8785 canonical JSON, by json's C writer where it writes the same bytes.

The `rfc8785` package (the reference kept for everything else) writes in pure Python: ~3 µs a
value, 0.85 s of a 1,000-device score's evidence digest (~300 k values). json.dumps with sorted
keys and no spaces writes RFC 8785's bytes when every string is printable ASCII (the same escapes
and the same key order as UTF-16 code units) and every number is printed as ECMAScript prints it:
integers below 2^53, and floats whose Python repr is ECMAScript's (both the shortest round-trip
digits): integral ones below 2^53 written as integers, the others with 1e-4 <= |x| < 1e16, where
repr uses no exponent. Anything else (an exponent, a non-ASCII key, NaN) goes to `rfc8785`.
tests/scoring/test_canonical.py holds the two equal on generated documents.
"""

from __future__ import annotations

import json
import re
from typing import Any

import rfc8785

_PLAIN = re.compile(r"^[\x20-\x7e]*$")
_MAX_INT = 2**53


class _NotPlain(Exception):
    pass


def _plain(value: Any) -> Any:
    """The value with integral floats as ints; _NotPlain if json would not write RFC 8785's bytes."""
    if value is None or value is True or value is False:
        return value
    if isinstance(value, int):
        if -_MAX_INT < value < _MAX_INT:
            return value
        raise _NotPlain
    if isinstance(value, float):
        if value.is_integer():  # from 2^53 ECMAScript pads the shortest digits with zeros
            if abs(value) < _MAX_INT:
                return int(value)
            raise _NotPlain
        if 1e-4 <= abs(value) < 1e16:
            return value
        raise _NotPlain
    if isinstance(value, str):
        if _PLAIN.match(value):
            return value
        raise _NotPlain
    if isinstance(value, dict):
        return {_plain_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    raise _NotPlain


def _plain_key(key: Any) -> str:
    if isinstance(key, str) and _PLAIN.match(key):
        return key
    raise _NotPlain


def dumps(value: Any) -> bytes:
    """RFC 8785 bytes of a JSON value."""
    try:
        plain = _plain(value)
    except _NotPlain:
        return rfc8785.dumps(value)
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()

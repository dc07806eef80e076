"""Hypothesis strategies for hostile input: arbitrary bytes, and JSON that is well formed but
carries the values firmware gets wrong (NaN, infinities, huge numbers, deep nesting, long
strings, NUL characters, wrong types, times far in the past or future)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from devices.kinds import Channel, DeviceKind
from devices.telemetry import DeviceEvent, DeviceStatus, payload_model

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([0, -0.0, 1e308, -1e308, 5e-324, 2**32 - 1, 2**32, 2**63, -1, 100.0000001]),
)
TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from("a\x00\ud7ff\ufffe😀/+#"), max_size=20),
    st.builds(lambda n: "x" * n, st.integers(min_value=60, max_value=20_000)),
)
TIMES = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63),  # epoch ms, any
    st.sampled_from(["0001-01-01T00:00:00Z", "1999-12-31T23:59:59Z", "9999-12-31T23:59:59+14:00",
                     "2026-11-25T09:30:00", "2026-11-25T09:30:00+23:59", "2026-02-30T00:00:00Z", "now", ""]),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": [value]}
    return value


JSON_VALUES = st.one_of(
    st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                 max_leaves=12),
    st.integers(min_value=50, max_value=300).map(_nested),
)

_FIELDS: set[str] = set()
for kind in DeviceKind:
    _FIELDS.update(payload_model(kind, Channel.TELEMETRY).model_fields)
_FIELDS.update(DeviceStatus.model_fields, DeviceEvent.model_fields)
FIELD_NAMES = st.sampled_from(sorted(_FIELDS))


@st.composite
def hostile_payload(draw: st.DrawFn) -> bytes:
    """A JSON object with contract field names (and the odd stranger) and hostile values."""
    body: dict[str, Any] = {"ts": draw(TIMES), "seq": draw(st.one_of(NUMBERS, SCALARS))}
    for name in draw(st.lists(FIELD_NAMES, max_size=8, unique=True)):
        body[name] = draw(JSON_VALUES)
    if draw(st.booleans()):
        body[draw(TEXT)] = draw(JSON_VALUES)
    try:
        text = json.dumps(body, allow_nan=True)  # NaN / Infinity literals on purpose
    except (ValueError, RecursionError):
        text = "{}"
    return text.encode("utf-8", "surrogatepass")


DEEP = st.builds(lambda n, open_, close: b'{"ts": 1764000000000, "seq": 1, "detail": ' + open_ * n + close * n + b"}",
                 st.integers(min_value=100, max_value=8000), st.just(b"["), st.just(b"]"))
PAYLOADS = st.one_of(st.binary(max_size=400), hostile_payload(), DEEP)

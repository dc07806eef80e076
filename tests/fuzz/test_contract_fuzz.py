"""Every decoder and validator of MQTT contract v1, fed arbitrary and hostile input: each message
becomes a valid reading or a rejection with a reason, and nothing else is ever raised.

An oracle written from the contract's rules (README, "MQTT contract v1"), not from the models,
says what each payload must become: strict JSON types (true/false only for booleans, JSON
integers only for integers, JSON numbers for numbers, exact enumerations, `ts` an RFC 3339 string
with an offset or integer epoch milliseconds), storable ranges (a measurement within ±1e12, lat and
lon on the globe; an implausible measurement is accepted, for QC to fail), no unknown or repeated
keys."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic_core
from hypothesis import given
from hypothesis import strategies as st

from devices.contract import TOPIC_ROOT, TopicAddress, decode_payload, parse_topic, topic_for
from devices.kinds import Channel, DeviceKind
from devices.telemetry import Envelope
from ingest.decode import EARLIEST_DEVICE_TIME, Decoder
from ingest.directory import DeviceEntry
from ingest.handoff import Inbound
from pilotlab.errors import MessageRejected, RejectReason
from tests.fuzz.conftest import FUZZ
from tests.fuzz.hostile import NUMBERS, PAYLOADS, TEXT
from tests.ingest import payloads

KINDS = st.sampled_from(list(DeviceKind))
CHANNELS = st.sampled_from(list(Channel))
IDS = st.sampled_from(["dev-1", "dev-2", "dev-3", "gone", "stranger", "a" * 65, "", "dev 1"])
TOPICS = st.one_of(
    TEXT,
    st.builds(lambda p, d, c: f"{TOPIC_ROOT}/{p}/{d}/{c}", st.sampled_from(["pilot", "other", "", "+"]), IDS,
              st.sampled_from(["telemetry", "status", "event", "cmd", "Telemetry", ""])),
)
DIRECTORY = {
    "dev-1": DeviceEntry("pilot", DeviceKind.SMART_SWITCH, None),
    "dev-2": DeviceEntry("pilot", DeviceKind.LOCATION_TRACKER, None),
    "dev-3": DeviceEntry("pilot", DeviceKind.ENV_SENSOR, None),
    "gone": DeviceEntry("pilot", DeviceKind.ENV_SENSOR, datetime(2001, 1, 1, tzinfo=UTC)),
}
FUTURE_TOLERANCE = timedelta(days=1)


# --- the oracle: the contract's rules, written out ---------------------------------------------

INT, NUMBER, BOOL, STRING, OBJECT, TIME = "integer", "number", "boolean", "string", "object", "time"
SEQ_RANGE = (0, 2**32 - 1)
STORABLE = (-1e12, 1e12)


class Field:
    def __init__(self, kind: str, bounds: tuple[float, float] | None = None, *, required: bool = False,
                 nullable: bool = True, choices: tuple[str, ...] = (), check: Callable[[str], bool] | None = None):
        self.kind, self.bounds, self.required, self.nullable = kind, bounds, required, nullable
        self.choices, self.check = choices, check


def _required(kind: str, bounds: tuple[float, float] | None = None, **extra: Any) -> Field:
    return Field(kind, bounds, required=True, nullable=False, **extra)


ENVELOPE = {"ts": _required(TIME), "seq": _required(INT, SEQ_RANGE)}
TRIGGERS = ("heartbeat", "button", "app", "schedule", "remote", "overload", "power_on")
MEASURES = ("temperature_c", "humidity_pct", "pm25_ugm3", "pm10_ugm3", "co2_ppm", "noise_dba")
RULES: dict[DeviceKind | Channel, dict[str, Field]] = {
    DeviceKind.SMART_SWITCH: {
        "relay_on": _required(BOOL), "power_w": Field(NUMBER, STORABLE),
        "energy_wh": Field(NUMBER, STORABLE), "trigger": Field(STRING, nullable=False, choices=TRIGGERS)},
    DeviceKind.LOCATION_TRACKER: {
        "lat": Field(NUMBER, (-90, 90)), "lon": Field(NUMBER, (-180, 180)), "altitude_m": Field(NUMBER, STORABLE),
        "accuracy_m": Field(NUMBER, STORABLE),
        "speed_mps": Field(NUMBER, STORABLE), "fix_type": _required(STRING, choices=("none", "2d", "3d", "wifi", "cell")),
        "battery_pct": Field(NUMBER, STORABLE)},
    DeviceKind.ENV_SENSOR: {
        "temperature_c": Field(NUMBER, STORABLE), "humidity_pct": Field(NUMBER, STORABLE),
        "pm25_ugm3": Field(NUMBER, STORABLE), "pm10_ugm3": Field(NUMBER, STORABLE),
        "co2_ppm": Field(NUMBER, STORABLE), "noise_dba": Field(NUMBER, STORABLE),
        "battery_pct": Field(NUMBER, STORABLE)},
    Channel.STATUS: {
        "state": _required(STRING, choices=("online", "offline", "rebooting", "low_battery", "error")),
        "battery_pct": Field(NUMBER, STORABLE), "rssi_dbm": Field(NUMBER, STORABLE), "uptime_s": Field(INT, SEQ_RANGE),
        "firmware": Field(STRING, check=lambda s: len(s) <= 64)},
    Channel.EVENT: {
        "event": _required(STRING, check=lambda s: re.fullmatch(r"[a-z0-9_.-]{1,64}", s) is not None),
        "detail": Field(OBJECT)},
}
RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})")


def device_time(value: Any) -> datetime | None:
    """`ts` as the contract reads it, or None if it is not a time."""
    if type(value) is int:
        try:
            return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=value)
        except OverflowError:
            return datetime.max.replace(tzinfo=UTC) if value > 0 else datetime.min.replace(tzinfo=UTC)
    if type(value) is not str or not RFC3339.fullmatch(value):
        return None
    text = value.upper()
    head, dot, rest = text.partition(".")
    if dot:  # Python reads at most microseconds; more digits are cut, as pydantic does
        digits = re.match(r"[0-9]+", rest).group()  # type: ignore[union-attr]
        text = f"{head}.{digits[:6]}{rest[len(digits):]}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _fault(rule: Field, value: Any) -> str | None:
    """"type" or "range" if `value` breaks `rule`, else None."""
    if value is None:
        return None if rule.nullable else "type"
    if rule.kind == TIME:
        return None if device_time(value) is not None else "type"
    if rule.kind == BOOL:
        return None if type(value) is bool else "type"
    if rule.kind == OBJECT:
        return None if type(value) is dict else "type"
    if rule.kind == STRING:
        if type(value) is not str or (rule.choices and value not in rule.choices) or (rule.check and not rule.check(value)):
            return "type"
        return None
    if rule.kind == INT and type(value) is not int:
        return "type"
    if rule.kind == NUMBER and (type(value) not in (int, float) or not math.isfinite(value)):
        return "type"
    assert rule.bounds is not None
    return None if rule.bounds[0] <= value <= rule.bounds[1] else "range"


def parse_as_written(payload: bytes) -> tuple[Any, bool] | None:
    """(value with the last of repeated keys, whether any key was repeated), or None if the
    payload is not JSON. Syntax is pydantic's parser's (NaN and Infinity allowed, 200 levels)."""
    try:
        pydantic_core.from_json(payload)
    except ValueError:
        return None
    repeated = False

    def members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal repeated
        repeated = repeated or len({k for k, _ in pairs}) < len(pairs)
        return dict(pairs)

    return json.loads(payload, object_pairs_hook=members), repeated


def contract_verdict(kind: DeviceKind, channel: Channel, payload: bytes) -> RejectReason | None:
    """What decode_payload must do with `payload`: None to accept it, else the reason."""
    parsed = parse_as_written(payload)
    if parsed is None:
        return RejectReason.MALFORMED_JSON
    body, repeated = parsed
    if type(body) is not dict:
        return RejectReason.INVALID_PAYLOAD
    rules = {**ENVELOPE, **RULES[kind if channel is Channel.TELEMETRY else channel]}
    faults = {"type" for name in body if name not in rules}
    faults |= {"type" for name, rule in rules.items() if rule.required and name not in body}
    faults |= {_fault(rules[name], value) for name, value in body.items() if name in rules} - {None}
    if faults:
        return RejectReason.OUT_OF_RANGE if faults == {"range"} else RejectReason.INVALID_PAYLOAD
    if channel is Channel.TELEMETRY and kind is DeviceKind.LOCATION_TRACKER:
        lat, lon = body.get("lat"), body.get("lon")
        if (lat is None) != (lon is None) or (body["fix_type"] != "none" and lat is None):
            return RejectReason.INVALID_PAYLOAD
    if channel is Channel.TELEMETRY and kind is DeviceKind.ENV_SENSOR and all(body.get(m) is None for m in MEASURES):
        return RejectReason.INVALID_PAYLOAD
    return RejectReason.INVALID_PAYLOAD if repeated else None


def _storable(value: Any) -> bool:
    """An event detail PostgreSQL's jsonb takes as written: finite, 64-bit integers, no NUL."""
    if type(value) is float:
        return math.isfinite(value)
    if type(value) is int:
        return -(2**63) <= value < 2**64
    if type(value) is str:
        return "\x00" not in value
    if type(value) is list:
        return all(_storable(v) for v in value)
    if type(value) is dict:
        return all(_storable(k) and _storable(v) for k, v in value.items())
    return True


def ingest_verdict(topic: str, payload: bytes, now: datetime) -> RejectReason | None | str:
    """What the ingest decoder must make of one message: None for a row, else the reason;
    "either" on the rare ts within a minute of the future limit (the decoder's clock differs)."""
    try:
        address = parse_topic(topic)
    except MessageRejected:
        return RejectReason.TOPIC_INVALID
    if len(payload) > 16_384:
        return RejectReason.PAYLOAD_TOO_LARGE
    device = DIRECTORY.get(address.device_id)
    if device is None:
        return RejectReason.UNKNOWN_DEVICE
    if device.pilot_id != address.pilot_id:
        return RejectReason.PILOT_MISMATCH
    verdict = contract_verdict(device.kind, address.channel, payload)
    if verdict is not None:
        return verdict
    body = json.loads(payload)
    ts = device_time(body["ts"])
    assert ts is not None
    latest = now + FUTURE_TOLERANCE
    if abs(ts - latest) < timedelta(minutes=1):
        return "either"
    if ts < EARLIEST_DEVICE_TIME or ts > latest:
        return RejectReason.TIMESTAMP_OUT_OF_RANGE
    if device.decommissioned_at is not None and ts > device.decommissioned_at:
        return RejectReason.DEVICE_DECOMMISSIONED
    if not _storable(body.get("detail")) or "\x00" in (body.get("firmware") or ""):
        return RejectReason.INVALID_PAYLOAD
    return None


# --- payloads near the contract: valid ones with one or two values swapped, keys repeated ----

_LOOKALIKES = st.sampled_from([
    True, False, None, 0, 1, -1, 1.0, 1.5, -0.0, "1", "21.5", "true", "yes", "", "Button", "HEARTBEAT", "3d",
    "online", "ONLINE", "fall", 2**32 - 1, 2**32, 1e308, float("nan"), float("inf"), [], {}, {"a": 1}, [1],
    1764000000000, 1764000000000.0, 1764000000, "1764000000000", "2026-11-25T09:30:00Z",
    "2026-11-25T09:30:00+0900", "2026-11-25 09:30:00Z", "2026-11-25t09:30:00.5z",
    "2026-11-25T09:30:00.123456789-03:30", "2026-11-25T09:30:00", "2026-02-30T00:00:00Z",
    "2026-11-25T24:00:00Z", "2026-11-25T09:30:60Z", "+002026-11-25T09:30:00Z", "٢٠٢٦-11-25T09:30:00Z",
])
CONFUSABLE = st.one_of(_LOOKALIKES, _LOOKALIKES, NUMBERS, TEXT)  # mostly the values firmware gets wrong
BASES: dict[tuple[DeviceKind, Channel], Callable[[int], dict[str, Any]]] = {
    (DeviceKind.SMART_SWITCH, Channel.TELEMETRY): payloads.switch,
    (DeviceKind.LOCATION_TRACKER, Channel.TELEMETRY): payloads.tracker,
    (DeviceKind.ENV_SENSOR, Channel.TELEMETRY): payloads.environment,
}
for _kind in DeviceKind:
    BASES[(_kind, Channel.STATUS)] = payloads.status
    BASES[(_kind, Channel.EVENT)] = payloads.event
COLONS = st.sampled_from([":", ": ", " : ", "\n:\t", "\r\n :"])


@st.composite
def near_valid(draw: st.DrawFn, kind: DeviceKind, channel: Channel) -> bytes:
    """A valid payload of (kind, channel), then: values swapped for confusable ones, keys
    dropped or repeated (with either value last), nested repeats in an event detail, any
    whitespace around the colons."""
    members = list(BASES[(kind, channel)](draw(st.integers(0, 2**32 - 1))).items())
    for _ in range(draw(st.integers(0, 2))):
        index = draw(st.integers(0, len(members) - 1))
        action = draw(st.sampled_from(["swap", "swap", "drop", "repeat", "stranger"]))
        key, value = members[index]
        if action == "swap":
            members[index] = (key, draw(CONFUSABLE))
        elif action == "drop" and len(members) > 1:
            del members[index]
        elif action == "repeat":
            members.insert(draw(st.integers(0, len(members))), (key, draw(st.one_of(st.just(value), CONFUSABLE))))
        else:
            members.append((draw(st.sampled_from(["relay", "Seq", "ts ", "battery"])), draw(CONFUSABLE)))
    colon = draw(COLONS)

    def text(value: Any) -> str:
        if isinstance(value, dict) and value and draw(st.booleans()):  # a key repeated inside
            first = next(iter(value))
            pairs = [*value.items(), (first, draw(CONFUSABLE))]
            return "{" + ",".join(f"{json.dumps(k)}{colon}{text(v)}" for k, v in pairs) + "}"
        return json.dumps(value, allow_nan=True)

    return ("{" + ", ".join(f"{json.dumps(k)}{colon}{text(v)}" for k, v in members) + "}").encode()


KIND_AND_CHANNEL = st.tuples(KINDS, CHANNELS)
NEAR_VALID_MESSAGES = st.tuples(st.sampled_from(sorted(DIRECTORY)), CHANNELS).flatmap(
    lambda dc: st.tuples(st.just(topic_for("pilot", dc[0], dc[1])), near_valid(DIRECTORY[dc[0]].kind, dc[1])))
CONTRACT_CASES = KIND_AND_CHANNEL.flatmap(
    lambda kc: st.tuples(st.just(kc[0]), st.just(kc[1]), st.one_of(near_valid(*kc), PAYLOADS)))


def _assert_finite(reading: Envelope) -> None:
    for name, value in reading.__dict__.items():
        if isinstance(value, float):
            assert math.isfinite(value), f"{name} = {value}"


def _assert_as_written(reading: Envelope, payload: bytes) -> None:
    """An accepted reading holds the payload's values unchanged (ints widened to floats only)."""
    body = json.loads(payload)
    assert reading.ts == device_time(body["ts"])
    for name, value in body.items():
        if name == "ts":
            continue
        held = getattr(reading, name)
        assert type(held) is type(value) or (type(held) is float and type(value) is int), (name, value, held)
        assert held == value or (value != value and held != held), (name, value, held)


@FUZZ
@given(TOPICS)
def test_parse_topic_gives_an_address_or_a_topic_rejection(topic: str) -> None:
    try:
        address = parse_topic(topic)
    except MessageRejected as rejected:
        assert rejected.reason is RejectReason.TOPIC_INVALID and rejected.detail
        return
    assert isinstance(address, TopicAddress) and topic.startswith(TOPIC_ROOT + "/")


@FUZZ
@given(CONTRACT_CASES)
def test_decode_payload_accepts_exactly_what_the_contract_allows_and_names_the_reason_otherwise(
    case: tuple[DeviceKind, Channel, bytes],
) -> None:
    kind, channel, payload = case
    expected = contract_verdict(kind, channel, payload)
    try:
        reading = decode_payload(kind, channel, payload)
    except MessageRejected as rejected:
        assert rejected.reason is expected, (payload, rejected.detail)
        assert rejected.detail
        return
    assert expected is None, (payload, expected)
    _assert_finite(reading)
    _assert_as_written(reading, payload)


@FUZZ
@given(st.lists(st.one_of(st.tuples(TOPICS, PAYLOADS), NEAR_VALID_MESSAGES, NEAR_VALID_MESSAGES), min_size=1, max_size=20))
def test_the_ingest_decoder_turns_each_message_into_the_row_or_the_dead_letter_the_contract_says(
    messages: list[tuple[str, bytes]],
) -> None:
    now = time.time()
    batch = [Inbound(topic, payload, mid, 1, now, 1) for mid, (topic, payload) in enumerate(messages, start=1)]
    decoded = Decoder(16_384, FUTURE_TOLERANCE.total_seconds()).decode(batch, DIRECTORY.get)

    assert len(decoded.rows) + len(decoded.dead_letters) == len(batch)
    assert len(decoded.sources) == len(decoded.rows)
    outcome: dict[int, RejectReason | None] = {source.mid: None for source in decoded.sources}
    for dead in decoded.dead_letters:
        assert isinstance(dead.reason, RejectReason) and dead.detail
        assert "\x00" not in dead.detail and "\x00" not in dead.topic
    dead_by_position = iter(decoded.dead_letters)
    for message in batch:
        if message.mid not in outcome:
            outcome[message.mid] = next(dead_by_position).reason
    clock = datetime.fromtimestamp(now, UTC)
    for message in batch:
        expected = ingest_verdict(message.topic, message.payload, clock)
        if expected != "either":
            assert outcome[message.mid] is expected, (message.topic, message.payload)
    latest = datetime.now(UTC) + FUTURE_TOLERANCE + timedelta(minutes=1)
    for row in decoded.rows:
        device_id, seq, device_time_ = row[0], row[1], row[2]
        assert device_id in DIRECTORY and 0 <= seq <= 2**32 - 1
        assert EARLIEST_DEVICE_TIME <= device_time_ <= latest
        for value in row:
            if isinstance(value, float):
                assert math.isfinite(value)
            if isinstance(value, str):
                assert "\x00" not in value and "\\u0000" not in value

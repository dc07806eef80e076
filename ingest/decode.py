"""Turn a batch of `Inbound` messages into telemetry rows and dead letters.

Every message ends as exactly one of the two: a row to store, or a dead letter with a reason
from `pilotlab.errors.RejectReason`. Nothing raised here escapes for bad input.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from devices.contract import TopicAddress, decode_payload, parse_topic
from devices.kinds import Channel
from devices.telemetry import Envelope
from ingest.directory import DeviceEntry
from ingest.handoff import Inbound
from pilotlab.errors import MessageRejected, RejectReason

if TYPE_CHECKING:
    from ingest.adapters import AdapterSet
    from ingest.adapters.records import LinkRecords

EARLIEST_DEVICE_TIME = datetime(2000, 1, 1, tzinfo=UTC)

# Every row tuple, in order, as (telemetry column, staging type for binary COPY). The event
# detail travels as JSON text and is cast to jsonb on the way into `telemetry` (ingest.writer).
KEY_COLUMNS = (
    ("device_id", "text"), ("seq", "bigint"), ("device_time", "timestamptz"),
    ("ingest_time", "timestamptz"), ("channel", "text"), ("size_bytes", "integer"),
)
METRIC_COLUMNS = (
    ("relay_on", "boolean"), ("power_w", "float8"), ("energy_wh", "float8"), ("trigger", "text"),
    ("lat", "float8"), ("lon", "float8"), ("accuracy_m", "float8"), ("speed_mps", "float8"),
    ("fix_type", "text"),
    ("temperature_c", "float8"), ("humidity_pct", "float8"), ("pm25_ugm3", "float8"),
    ("pm10_ugm3", "float8"), ("co2_ppm", "float8"), ("noise_dba", "float8"),
    ("battery_pct", "float8"),
    ("state", "text"), ("rssi_dbm", "float8"), ("uptime_s", "bigint"), ("firmware", "text"),
    ("event", "text"), ("detail", "text"),
)
COLUMNS = tuple(name for name, _ in KEY_COLUMNS + METRIC_COLUMNS)
STAGE_TYPES = tuple(pg_type for _, pg_type in KEY_COLUMNS + METRIC_COLUMNS)
_METRIC_NAMES = tuple(name for name, _ in METRIC_COLUMNS)
# Hot-path constants: an enum's .value is a property (~0.15 us), a member looked up on its class ~0.06 us.
_CHANNEL_TEXT = {channel: channel.value for channel in Channel}
_EVENT, _STATUS = Channel.EVENT, Channel.STATUS


class DeadLetter(NamedTuple):
    received_at: datetime
    topic: str
    payload: bytes
    reason: RejectReason
    detail: str
    pilot_id: str | None
    device_id: str | None


class DecodedBatch(NamedTuple):
    rows: list[tuple[Any, ...]]
    sources: list[Inbound]  # sources[i] is the message rows[i] came from
    dead_letters: list[DeadLetter]
    link: LinkRecords | None = None  # frames, receptions, joins, gateway messages (ingest.adapters)


DeviceLookup = Callable[[str], DeviceEntry | None]
_CACHED_TOPIC_CHARS = 256  # contract topics are at most 151 characters, network servers' about 100


class _TopicRefused(NamedTuple):
    reason: RejectReason
    detail: str


class Decoder:
    def __init__(self, max_payload_bytes: int, future_tolerance_s: float, adapters: AdapterSet | None = None) -> None:
        self._max_payload_bytes = max_payload_bytes
        self._future_tolerance = timedelta(seconds=future_tolerance_s)
        # topic -> its address, or why it is refused (kept as data: a cached exception raised again
        # grows its traceback by the frames of every raise, and they hold their batches alive)
        self._topics: dict[str, TopicAddress | _TopicRefused] = {}
        self.adapters = adapters  # for topics that are not contract v1's (network servers, gateways)

    def decode(self, batch: list[Inbound], lookup: DeviceLookup) -> DecodedBatch:
        rows: list[tuple[Any, ...]] = []
        sources: list[Inbound] = []
        dead: list[DeadLetter] = []
        latest_allowed = datetime.now(UTC) + self._future_tolerance
        adapted = None
        for message in batch:
            address: TopicAddress | None = None
            try:
                address = self._address(message.topic)
                rows.append(self._row(message, address, lookup, latest_allowed))
                sources.append(message)
            except MessageRejected as rejected:
                # Not a contract topic: an adapter's, if one claims it (never reached on the contract path).
                if address is None and self.adapters is not None and self.adapters.claims(message.topic):
                    if adapted is None:
                        from ingest.adapters.records import LinkRecords, Outputs
                        adapted = Outputs(rows, sources, dead, LinkRecords())
                    self.adapters.decode(message, lookup, adapted, latest_allowed)
                    continue
                dead.append(dead_letter(message, rejected.reason, rejected.detail, address))
        return DecodedBatch(rows, sources, dead, adapted.link if adapted is not None else None)

    def _address(self, topic: str) -> TopicAddress:
        cached = self._topics.get(topic)
        if cached is None:
            try:
                cached = parse_topic(topic)
            except MessageRejected as rejected:
                cached = _TopicRefused(rejected.reason, rejected.detail)
            if len(topic) <= _CACHED_TOPIC_CHARS:  # every real topic; a device's 64 KiB one is not kept
                if len(self._topics) > 100_000:
                    self._topics.clear()
                self._topics[topic] = cached
        if isinstance(cached, _TopicRefused):
            raise MessageRejected(cached.reason, cached.detail)
        return cached

    def _row(
        self, message: Inbound, address: TopicAddress, lookup: DeviceLookup, latest_allowed: datetime
    ) -> tuple[Any, ...]:
        size = len(message.payload)
        if size > self._max_payload_bytes:
            raise MessageRejected(RejectReason.PAYLOAD_TOO_LARGE,
                                  f"{size} bytes, the limit is {self._max_payload_bytes}")
        device = lookup(address.device_id)
        if device is None:
            raise MessageRejected(RejectReason.UNKNOWN_DEVICE,
                                  f"device {address.device_id!r} is not registered")
        if device.pilot_id != address.pilot_id:
            raise MessageRejected(RejectReason.PILOT_MISMATCH,
                                  f"device {address.device_id!r} belongs to pilot {device.pilot_id!r}")
        reading = decode_payload(device.kind, address.channel, message.payload)
        return row_of(reading, address.device_id, device, address.channel,
                      datetime.fromtimestamp(message.received_at, UTC), size, latest_allowed)


def row_of(reading: Envelope, device_id: str, device: DeviceEntry, channel: Channel, ingest_time: datetime,
           size: int, latest_allowed: datetime) -> tuple[Any, ...]:
    """The telemetry row of a validated reading, after the checks that need the registry and the
    clock; shared by the contract path and the adapters (ingest.adapters.readings)."""
    ts = reading.ts
    if ts < EARLIEST_DEVICE_TIME or ts > latest_allowed:
        raise MessageRejected(RejectReason.TIMESTAMP_OUT_OF_RANGE,
                              f"ts {ts.isoformat()} is before 2000 or too far in the future")
    if device.decommissioned_at is not None and ts > device.decommissioned_at:
        raise MessageRejected(RejectReason.DEVICE_DECOMMISSIONED,
                              f"device {device_id!r} was decommissioned at {device.decommissioned_at.isoformat()}")
    values = reading.__dict__
    metrics: list[Any] = [None] * len(_METRIC_NAMES)
    for name, position in _metric_positions(type(reading)):
        metrics[position] = values[name]
    if channel is _EVENT:
        metrics[-1] = _detail_json(values.get("detail"))
    if channel is _STATUS and "\x00" in (values.get("firmware") or ""):
        raise MessageRejected(RejectReason.INVALID_PAYLOAD, "firmware: NUL characters are not allowed")
    return (device_id, reading.seq, ts, ingest_time, _CHANNEL_TEXT[channel], size, *metrics)


@functools.cache
def _metric_positions(model: type[Envelope]) -> tuple[tuple[str, int], ...]:
    """(field, position among the metric columns) for each field of `model` that is a column."""
    return tuple((name, _METRIC_NAMES.index(name)) for name in model.model_fields if name in _METRIC_NAMES)


def _all_finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_all_finite(item) for item in value.values())
    if isinstance(value, list):
        return all(_all_finite(item) for item in value)
    return True


def _detail_json(detail: dict[str, Any] | None) -> str | None:
    """The event detail as JSON text PostgreSQL's jsonb accepts, or a rejection."""
    if detail is None:
        return None
    if not _all_finite(detail):  # orjson would quietly write them as null
        raise MessageRejected(RejectReason.INVALID_PAYLOAD, "detail: NaN and infinities are not allowed")
    try:
        text = orjson.dumps(detail).decode()
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise MessageRejected(RejectReason.INVALID_PAYLOAD, f"detail: {exc}") from None
    if "\\u0000" in text:
        raise MessageRejected(RejectReason.INVALID_PAYLOAD, "detail: NUL characters are not allowed")
    return text


MAX_DETAIL_CHARS = 500


def dead_letter(message: Inbound, reason: RejectReason, detail: str,
                address: TopicAddress | None = None) -> DeadLetter:
    # The detail may quote field names from the payload: keep it printable text PostgreSQL accepts.
    detail = detail.replace("\x00", "\\0")[:MAX_DETAIL_CHARS]
    return DeadLetter(
        datetime.fromtimestamp(message.received_at, UTC), message.topic.replace("\x00", ""),
        message.payload, reason, detail,
        address.pilot_id if address else None, address.device_id if address else None,
    )

"""What decoding yields, for every format: telemetry rows, link records and dead letters.

The ground floor of ingest's decoding: the contract decoder (ingest.decode) and the adapters
for other formats (ingest.adapters) build their output with this module, and the writer stores
it (ingest.writer); nothing here imports from them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from devices.contract import TopicAddress, parse_topic
from devices.kinds import Channel
from devices.telemetry import Envelope
from ingest.directory import DeviceEntry
from ingest.handoff import Inbound
from pilotlab.errors import MessageRejected, RejectReason

EARLIEST_DEVICE_TIME = datetime(2000, 1, 1, tzinfo=UTC)

# Every row tuple, in order, as (telemetry column, staging type for binary COPY). The event
# detail travels as JSON text and is cast to jsonb on the way into `telemetry` (ingest.writer).
KEY_COLUMNS = (
    ("device_id", "text"), ("seq", "bigint"), ("device_time", "timestamptz"),
    ("ingest_time", "timestamptz"), ("channel", "text"), ("size_bytes", "integer"),
)
METRIC_COLUMNS = (
    ("relay_on", "boolean"), ("power_w", "float8"), ("energy_wh", "float8"), ("trigger", "text"),
    ("lat", "float8"), ("lon", "float8"), ("altitude_m", "float8"), ("accuracy_m", "float8"), ("speed_mps", "float8"),
    ("fix_type", "text"),
    ("temperature_c", "float8"), ("humidity_pct", "float8"), ("pm25_ugm3", "float8"),
    ("pm10_ugm3", "float8"), ("co2_ppm", "float8"), ("noise_dba", "float8"),
    ("battery_pct", "float8"),
    ("state", "text"), ("rssi_dbm", "float8"), ("uptime_s", "bigint"), ("firmware", "text"),
    ("event", "text"), ("detail", "text"),
)
# How it was read: the device profile version that decoded it (NULL: contract v1, no profile), and
# what the profile's mapping did not take (JSON text, cast to jsonb like the event detail).
READ_BY_COLUMNS = (("profile_version", "integer"), ("extra", "text"))
JSON_COLUMNS = frozenset({"detail", "extra"})
COLUMNS = tuple(name for name, _ in KEY_COLUMNS + METRIC_COLUMNS + READ_BY_COLUMNS)
STAGE_TYPES = tuple(pg_type for _, pg_type in KEY_COLUMNS + METRIC_COLUMNS + READ_BY_COLUMNS)
_METRIC_NAMES = tuple(name for name, _ in METRIC_COLUMNS)
# Hot-path constants: an enum's .value is a property (~0.15 us), a member looked up on its class ~0.06 us.
_CHANNEL_TEXT = {channel: channel.value for channel in Channel}
_EVENT, _STATUS = Channel.EVENT, Channel.STATUS
MAX_DETAIL_CHARS = 500

DeviceLookup = Callable[[str], DeviceEntry | None]


def registered(lookup: DeviceLookup, pilot_id: str, device_id: str) -> DeviceEntry:
    """The registered device a message names, which must be of the pilot it names; else rejected."""
    device = lookup(device_id)
    if device is None:
        raise MessageRejected(RejectReason.UNKNOWN_DEVICE, f"device {device_id!r} is not registered")
    if device.pilot_id != pilot_id:
        raise MessageRejected(RejectReason.PILOT_MISMATCH, f"device {device_id!r} belongs to pilot {device.pilot_id!r}")
    return device


class DeadLetter(NamedTuple):
    received_at: datetime
    topic: str
    payload: bytes
    reason: RejectReason
    detail: str
    pilot_id: str | None
    device_id: str | None


class Sender(NamedTuple):
    """Whom a refused message names, as far as ingest could tell: a device, and the pilot its topic
    names (None: not checked; the message was already matched to the device's registration). The
    writer charges a registered device of that pilot with it (ingest.tally)."""

    pilot_id: str | None
    device_id: str


@dataclass
class LinkRecords:
    """Rows for uplink_frame, uplink_reception, lorawan_join and gateway_message (column order of
    ingest.adapters.records), and switch commands' acknowledgements (store.commands.AckRow,
    ingest.commands). Frames come before their receptions, which reference them."""

    frames: list[tuple[Any, ...]] = field(default_factory=list)
    receptions: list[tuple[Any, ...]] = field(default_factory=list)
    joins: list[tuple[Any, ...]] = field(default_factory=list)
    gateway_messages: list[tuple[Any, ...]] = field(default_factory=list)
    command_acks: list[tuple[Any, ...]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.frames or self.receptions or self.joins or self.gateway_messages or self.command_acks)


class DecodedBatch(NamedTuple):
    rows: list[tuple[Any, ...]]
    sources: list[Inbound]  # sources[i] is the message rows[i] came from
    dead_letters: list[DeadLetter]
    link: LinkRecords | None = None  # frames, receptions, joins, gateway messages (ingest.adapters)


class Outputs(NamedTuple):
    """Where adapters put what one batch yields (lists shared with ingest.decode.Decoder)."""

    rows: list[tuple[Any, ...]]
    sources: list[Inbound]
    dead: list[DeadLetter]
    link: LinkRecords


def row_of(reading: Envelope, device_id: str, device: DeviceEntry, channel: Channel, ingest_time: datetime,
           size: int, latest_allowed: datetime, profile_version: int | None = None,
           extra: str | None = None) -> tuple[Any, ...]:
    """The telemetry row of a validated reading, after the checks that need the registry and the
    clock; shared by the contract path and the adapters (ingest.readings)."""
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
    return (device_id, reading.seq, ts, ingest_time, _CHANNEL_TEXT[channel], size, *metrics, profile_version, extra)


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


def dead_letter(message: Inbound, reason: RejectReason, detail: str,
                address: TopicAddress | Sender | None = None) -> DeadLetter:
    """The dead letter of `message`, from the device `address` names; without one, from the device
    its topic names if it is a contract topic (so that a refusal found where only the message is at
    hand, such as a row the database refused at commit, is still the device's)."""
    # The detail may quote field names from the payload: keep it printable text PostgreSQL accepts.
    detail = detail.replace("\x00", "\\0")[:MAX_DETAIL_CHARS]
    if address is None:
        address = contract_sender(message.topic)
    return DeadLetter(
        datetime.fromtimestamp(message.received_at, UTC), message.topic.replace("\x00", ""),
        message.payload, reason, detail,
        address.pilot_id if address else None, address.device_id if address else None,
    )


def contract_sender(topic: str) -> Sender | None:
    """The pilot and device of a contract v1 topic (`pilotlab/v1/<pilot>/<device>/<channel>`), or None."""
    try:
        address = parse_topic(topic)
    except MessageRejected:
        return None
    return Sender(address.pilot_id, address.device_id)

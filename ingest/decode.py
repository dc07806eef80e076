"""Turn a batch of `Inbound` messages into telemetry rows and dead letters.

Every message ends as exactly one of the two: a row to store, or a dead letter with a reason
from `pilotlab.errors.RejectReason`. Nothing raised here escapes for bad input.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from devices.contract import ID_PATTERN, TOPIC_ROOT, TopicAddress, parse_topic
from ingest.adapters import AdapterSet
from ingest.commands import CommandTraffic
from ingest.handoff import Inbound
from ingest.readings import contract_reading, native_fields, reading_row
from ingest.rows import (
    EARLIEST_DEVICE_TIME,
    DeadLetter,
    DecodedBatch,
    DeviceLookup,
    LinkRecords,
    Outputs,
    Sender,
    dead_letter,
    registered,
    row_of,
)
from pilotlab.errors import MessageRejected, RejectReason

__all__ = ["EARLIEST_DEVICE_TIME", "DecodedBatch", "Decoder"]  # the earliest device time: also ingest.rows'

_CACHED_TOPIC_CHARS = 256  # contract topics are at most 151 characters, network servers' about 100
_ID = re.compile(ID_PATTERN)


class _TopicRefused(NamedTuple):
    reason: RejectReason
    detail: str
    sender: Sender | None  # the device a refused topic still names (`…/<pilot>/<device>/<unknown channel>`)


def _named_device(topic: str) -> Sender | None:
    """The pilot and device levels of a topic shaped like the contract's but for its channel: a
    device may publish under any last level of its own (its ACL is `…/<device>/+`), so a message
    on a channel that does not exist is still that device's."""
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT or not (_ID.fullmatch(parts[2]) and _ID.fullmatch(parts[3])):
        return None
    return Sender(parts[2], parts[3])


class Decoder:
    def __init__(self, max_payload_bytes: int, future_tolerance_s: float, adapters: AdapterSet | None = None,
                 commands: CommandTraffic | None = None) -> None:
        self._max_payload_bytes = max_payload_bytes
        self._future_tolerance = timedelta(seconds=future_tolerance_s)
        # topic -> its address, or why it is refused (kept as data: a cached exception raised again
        # grows its traceback by the frames of every raise, and they hold their batches alive)
        self._topics: dict[str, TopicAddress | _TopicRefused] = {}
        self.adapters = adapters  # for topics that are not contract v1's (network servers, gateways)
        self.commands = commands  # the command round trip's …/ack and …/cmd (ingest.commands)

    def decode(self, batch: list[Inbound], lookup: DeviceLookup) -> DecodedBatch:
        rows: list[tuple[Any, ...]] = []
        sources: list[Inbound] = []
        dead: list[DeadLetter] = []
        latest_allowed = datetime.now(UTC) + self._future_tolerance
        adapted = None
        for message in batch:
            address = self._address(message.topic)
            if isinstance(address, _TopicRefused):
                # Not a contract topic: an adapter's, if one claims it (never reached on the contract path).
                if self.adapters is not None and self.adapters.claims(message.topic):
                    if adapted is None:
                        adapted = Outputs(rows, sources, dead, LinkRecords())
                    self.adapters.decode(message, lookup, adapted, latest_allowed)
                elif self.commands is not None and self.commands.claims(message.topic):
                    if adapted is None:
                        adapted = Outputs(rows, sources, dead, LinkRecords())
                    self.commands.decode(message, lookup, adapted)
                else:
                    dead.append(dead_letter(message, address.reason, address.detail, address.sender))
                continue
            try:
                rows.append(self._row(message, address, lookup, latest_allowed))
                sources.append(message)
            except MessageRejected as rejected:
                dead.append(dead_letter(message, rejected.reason, rejected.detail, address))
        return DecodedBatch(rows, sources, dead, adapted.link if adapted is not None else None)

    def _address(self, topic: str) -> TopicAddress | _TopicRefused:
        """The topic's contract address, or why it is none (returned, not raised: every
        network-server message takes this way)."""
        cached = self._topics.get(topic)
        if cached is None:
            try:
                cached = parse_topic(topic)
            except MessageRejected as rejected:
                cached = _TopicRefused(rejected.reason, rejected.detail, _named_device(topic))
            if len(topic) <= _CACHED_TOPIC_CHARS:  # every real topic; a device's 64 KiB one is not kept
                if len(self._topics) > 100_000:
                    self._topics.clear()
                self._topics[topic] = cached
        return cached

    def _row(
        self, message: Inbound, address: TopicAddress, lookup: DeviceLookup, latest_allowed: datetime
    ) -> tuple[Any, ...]:
        size = len(message.payload)
        if size > self._max_payload_bytes:
            raise MessageRejected(RejectReason.PAYLOAD_TOO_LARGE,
                                  f"{size} bytes, the limit is {self._max_payload_bytes}")
        device = registered(lookup, address.pilot_id, address.device_id)
        ingest_time = datetime.fromtimestamp(message.received_at, UTC)
        if device.profile is not None:  # a native device's own JSON, if its profile maps this channel
            native = native_fields(device, address.channel, message.payload)
            if native is not None:
                return reading_row(address.device_id, device, address.channel, native, ingest_time, size, latest_allowed)
        reading = contract_reading(device, address.channel, message.payload)
        return row_of(reading, address.device_id, device, address.channel, ingest_time, size, latest_allowed)


"""Every decoder and validator of MQTT contract v1, fed arbitrary and hostile input: each message
becomes a valid reading or a rejection with a reason, and nothing else is ever raised."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from devices.contract import TOPIC_ROOT, TopicAddress, decode_payload, parse_topic
from devices.kinds import Channel, DeviceKind
from devices.telemetry import Envelope
from ingest.decode import EARLIEST_DEVICE_TIME, Decoder
from ingest.directory import DeviceEntry
from ingest.handoff import Inbound
from pilotlab.errors import MessageRejected, RejectReason
from tests.fuzz.conftest import FUZZ
from tests.fuzz.hostile import PAYLOADS, TEXT

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


def _assert_finite(reading: Envelope) -> None:
    for name, value in reading.__dict__.items():
        if isinstance(value, float):
            assert math.isfinite(value), f"{name} = {value}"


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
@given(KINDS, CHANNELS, PAYLOADS)
def test_decode_payload_gives_a_finite_reading_or_a_rejection_with_a_reason(
    kind: DeviceKind, channel: Channel, payload: bytes,
) -> None:
    try:
        reading = decode_payload(kind, channel, payload)
    except MessageRejected as rejected:
        assert rejected.reason in {RejectReason.MALFORMED_JSON, RejectReason.INVALID_PAYLOAD, RejectReason.OUT_OF_RANGE}
        assert rejected.detail
        return
    _assert_finite(reading)
    assert reading.ts.tzinfo is not None and 0 <= reading.seq <= 2**32 - 1


@FUZZ
@given(st.lists(st.tuples(TOPICS, PAYLOADS), min_size=1, max_size=20))
def test_the_ingest_decoder_turns_each_message_into_exactly_one_row_or_one_dead_letter(
    messages: list[tuple[str, bytes]],
) -> None:
    now = time.time()
    batch = [Inbound(topic, payload, mid, 1, now, 1) for mid, (topic, payload) in enumerate(messages, start=1)]
    decoded = Decoder(16_384, 86_400).decode(batch, DIRECTORY.get)

    assert len(decoded.rows) + len(decoded.dead_letters) == len(batch)
    assert len(decoded.sources) == len(decoded.rows)
    latest = datetime.now(UTC) + timedelta(days=1, minutes=1)
    for row in decoded.rows:
        device_id, seq, device_time = row[0], row[1], row[2]
        assert device_id in DIRECTORY and 0 <= seq <= 2**32 - 1
        assert EARLIEST_DEVICE_TIME <= device_time <= latest
        for value in row:
            if isinstance(value, float):
                assert math.isfinite(value)
            if isinstance(value, str):
                assert "\x00" not in value and "\\u0000" not in value
    for dead in decoded.dead_letters:
        assert isinstance(dead.reason, RejectReason) and dead.detail
        assert "\x00" not in dead.detail and "\x00" not in dead.topic

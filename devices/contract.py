"""MQTT contract v1: topic scheme and message decoding.

    pilotlab/v1/{pilot_id}/{device_id}/{channel}      channel ∈ telemetry | status | event
    pilotlab/v1/{pilot_id}/{device_id}/cmd            downlink, the device subscribes

MQTT v5, QoS 1, JSON payloads (see devices.telemetry and the README).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from pydantic import ValidationError

from devices.kinds import Channel, DeviceKind
from devices.telemetry import Envelope, payload_model
from pilotlab.errors import MessageRejected, RejectReason

TOPIC_ROOT = "pilotlab/v1"
ID_PATTERN = r"[A-Za-z0-9_.-]{1,64}"
_ID = re.compile(ID_PATTERN)
_CHANNELS = {c.value: c for c in Channel}


class TopicAddress(NamedTuple):
    pilot_id: str
    device_id: str
    channel: Channel


def topic_for(pilot_id: str, device_id: str, channel: Channel | str) -> str:
    return f"{TOPIC_ROOT}/{pilot_id}/{device_id}/{Channel(channel).value}"


def command_topic(pilot_id: str, device_id: str) -> str:
    return f"{TOPIC_ROOT}/{pilot_id}/{device_id}/cmd"


def subscription_filter(root: str = TOPIC_ROOT) -> str:
    """Every uplink topic of the contract (three levels under the root)."""
    return f"{root}/+/+/+"


def parse_topic(topic: str) -> TopicAddress:
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT:
        raise MessageRejected(RejectReason.TOPIC_INVALID, f"expected {TOPIC_ROOT}/<pilot>/<device>/<channel>")
    pilot_id, device_id, channel = parts[2], parts[3], parts[4]
    if not _ID.fullmatch(pilot_id) or not _ID.fullmatch(device_id):
        raise MessageRejected(RejectReason.TOPIC_INVALID, "pilot and device ids are 1-64 of [A-Za-z0-9_.-]")
    found = _CHANNELS.get(channel)
    if found is None:
        raise MessageRejected(RejectReason.TOPIC_INVALID, f"unknown channel {channel!r}")
    return TopicAddress(pilot_id, device_id, found)


_RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


def decode_payload(kind: DeviceKind, channel: Channel, payload: bytes) -> Envelope:
    """Parse and validate one JSON payload; raise MessageRejected with the reason on failure."""
    try:
        return payload_model(kind, channel).model_validate_json(payload)
    except ValidationError as exc:
        raise rejection_from(exc) from None


def rejection_from(exc: ValidationError) -> MessageRejected:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "payload"
    detail = f"{where}: {first['msg']}"
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more)"
    kinds = {e["type"] for e in errors}
    if "json_invalid" in kinds or "json_type" in kinds:
        return MessageRejected(RejectReason.MALFORMED_JSON, detail)
    if kinds <= _RANGE_ERRORS:
        return MessageRejected(RejectReason.OUT_OF_RANGE, detail)
    return MessageRejected(RejectReason.INVALID_PAYLOAD, detail)

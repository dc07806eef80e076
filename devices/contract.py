"""MQTT contract v1: topic scheme and message decoding.

    pilotlab/v1/{pilot_id}/{device_id}/{channel}      channel ∈ telemetry | status | event
    pilotlab/v1/{pilot_id}/{device_id}/cmd            commands, the device subscribes (devices.commands)
    pilotlab/v1/{pilot_id}/{device_id}/ack            the device's acknowledgement of a command

MQTT v5, QoS 1, JSON payloads (see devices.telemetry and the README).
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from devices.json_payload import key_count, refuse_repeated_keys
from devices.kinds import Channel, DeviceKind
from devices.telemetry import PAYLOAD_MODELS, Envelope
from pilotlab.errors import MessageRejected, RejectReason

TOPIC_ROOT = "pilotlab/v1"
ID_PATTERN = r"[A-Za-z0-9_.-]{1,64}"
_ID = re.compile(ID_PATTERN)
_CHANNELS = {c.value: c for c in Channel}
_EVENT = Channel.EVENT
# The last levels of the command round trip: not channels (no reading is made of them), so
# parse_topic refuses them and ingest.commands takes them off that refused path.
COMMAND_LEVEL, ACK_LEVEL = "cmd", "ack"


class TopicAddress(NamedTuple):
    pilot_id: str
    device_id: str
    channel: Channel


def topic_for(pilot_id: str, device_id: str, channel: Channel | str) -> str:
    return f"{TOPIC_ROOT}/{pilot_id}/{device_id}/{Channel(channel).value}"


def command_topic(pilot_id: str, device_id: str) -> str:
    return f"{TOPIC_ROOT}/{pilot_id}/{device_id}/{COMMAND_LEVEL}"


def ack_topic(pilot_id: str, device_id: str) -> str:
    return f"{TOPIC_ROOT}/{pilot_id}/{device_id}/{ACK_LEVEL}"


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

# What a strict field expected, by pydantic error type, in the words of the contract (README).
_EXPECTED = {
    "int_type": "expected an integer", "int_parsing": "expected an integer", "int_from_float": "expected an integer",
    "float_type": "expected a number", "float_parsing": "expected a number",
    "bool_type": "expected true or false", "bool_parsing": "expected true or false",
    "string_type": "expected a string", "dict_type": "expected an object", "list_type": "expected an array",
    "model_type": "expected a JSON object", "model_attributes_type": "expected a JSON object",
}


def decode_payload(kind: DeviceKind, channel: Channel, payload: bytes) -> Envelope:
    """Parse and validate one JSON payload; raise MessageRejected with the reason on failure."""
    try:
        # The validator itself, not model_validate_json: one Python frame less on the hot path.
        reading: Envelope = PAYLOAD_MODELS[kind, channel].__pydantic_validator__.validate_json(payload)
    except ValidationError as exc:
        raise rejection_from(exc) from None
    # Models forbid unknown fields, so each top-level key is one field set; only an event's
    # detail holds objects of its own.
    keys = len(reading.__pydantic_fields_set__)
    if channel is _EVENT:  # a module constant: an enum member looked up on its class costs ~0.06 us
        keys += key_count(reading.__dict__["detail"])
    refuse_repeated_keys(payload, keys)
    return reading


def rejection_from(exc: ValidationError) -> MessageRejected:
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "payload"
    detail = f"{where}: {_problem(first)}"
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more)"
    kinds = {e["type"] for e in errors}
    if "json_invalid" in kinds or "json_type" in kinds:
        return MessageRejected(RejectReason.MALFORMED_JSON, detail)
    if kinds <= _RANGE_ERRORS:
        return MessageRejected(RejectReason.OUT_OF_RANGE, detail)
    return MessageRejected(RejectReason.INVALID_PAYLOAD, detail)


def _problem(error: ErrorDetails) -> str:
    """One error as the contract says it: "expected an integer, got true"."""
    kind = error["type"]
    if kind == "literal_error":
        choices = ", ".join(f'"{c}"' for c in re.findall(r"'([^']*)'", error["ctx"]["expected"]))
        return f"expected one of {choices}, got {_shown(error['input'])}"
    expected = _EXPECTED.get(kind) or (error["msg"] if kind == "device_time" else None)
    if expected is None:
        return error["msg"]
    return f"{expected}, got {_shown(error['input'])}"


def _shown(value: Any) -> str:
    """A refused value as JSON text, cut short."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."

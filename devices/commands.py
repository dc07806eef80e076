"""Commands to smart switches: what the platform sends and what a device answers.

    pilotlab/v1/{pilot}/{device}/cmd   platform → device   a command, QoS 1, retain false
    pilotlab/v1/{pilot}/{device}/ack   device → platform   its acknowledgement, QoS 1

A command (MQTT v5: Message Expiry Interval, Correlation Data = the id, Response Topic = the ack
topic; a 3.1.1 device reads the same in the payload):

    {"correlation_id": "<uuid>", "command": "switch", "relay_on": true,
     "sent_at": "2026-11-25T09:30:00.120Z", "expires_at": "2026-11-25T09:31:00.120Z"}

An acknowledgement: `{"correlation_id": "<uuid>", "relay_on": true}` with the relay's state after
the command, optionally `ts` (device time, as in the contract) and `detail` (why, at most 200
characters). A device that cannot act reports the state it kept (`relay_on` other than asked).

LoRaWAN switches get the command as a downlink through their network server's documented
downlink topic (ChirpStack v4's MQTT integration, The Things Stack v3's MQTT server), carrying
the model's frame (devices.profiles.SwitchDownlink) or pilotlab's (devices.codecs.switch_command).
Nothing here does I/O.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import NamedTuple

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from devices.codecs import switch_command
from devices.contract import rejection_from
from devices.json_payload import refuse_repeated_keys
from devices.profiles import SwitchDownlink
from devices.telemetry import DeviceTime

DEFAULT_EXPIRY_S = 60
MAX_EXPIRY_S = 86_400
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
DETAIL_MAX_CHARS = 200


def new_command_id() -> str:
    return str(uuid.uuid4())


def _rfc3339(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def command_payload(command_id: str, relay_on: bool, sent_at: datetime, expires_at: datetime) -> bytes:
    """The JSON a switch receives on its command topic (times in UTC)."""
    return orjson.dumps({"correlation_id": command_id, "command": "switch", "relay_on": relay_on,
                         "sent_at": _rfc3339(sent_at), "expires_at": _rfc3339(expires_at)})


class CommandAck(BaseModel):
    """A device's acknowledgement, strict as every contract payload (unknown fields refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    correlation_id: str = Field(pattern=UUID_PATTERN, description="the command's correlation id, as sent")
    relay_on: bool = Field(description="the relay's state after the command")
    ts: DeviceTime | None = Field(default=None, description="device time of the acknowledgement (not used for latency)")
    detail: str | None = Field(default=None, max_length=DETAIL_MAX_CHARS, description="why, in the device's words")


def parse_ack(payload: bytes) -> CommandAck:
    """The acknowledgement in `payload`; MessageRejected (malformed_json, invalid_payload) otherwise."""
    try:
        ack = CommandAck.__pydantic_validator__.validate_json(payload)
    except ValidationError as exc:
        raise rejection_from(exc) from None
    refuse_repeated_keys(payload, len(ack.__pydantic_fields_set__))
    return ack


class DownlinkFrame(NamedTuple):
    f_port: int
    data: bytes
    confirmed: bool


def downlink_frame(model: SwitchDownlink | None, relay_on: bool) -> DownlinkFrame:
    """The frame that sets the relay: the model's own (its profile), else pilotlab's layout."""
    if model is None:
        return DownlinkFrame(switch_command.F_PORT, switch_command.encode(relay_on), False)
    return DownlinkFrame(model.f_port, bytes.fromhex(model.relay_on if relay_on else model.relay_off), model.confirmed)


def chirpstack_downlink(application_id: str, dev_eui: str, command_id: str, frame: DownlinkFrame) -> tuple[str, bytes]:
    """(topic, JSON) of ChirpStack v4's MQTT integration downlink command. `id` becomes the
    queue item's id, which ChirpStack's `ack` event reports as `queueItemId`."""
    body = {"id": command_id, "devEui": dev_eui, "confirmed": frame.confirmed, "fPort": frame.f_port,
            "data": base64.b64encode(frame.data).decode()}
    return f"application/{application_id}/device/{dev_eui}/command/down", orjson.dumps(body)


def tts_downlink(application_id: str, device_id: str, command_id: str, frame: DownlinkFrame) -> tuple[str, bytes]:
    """(topic, JSON) of The Things Stack v3's MQTT downlink push; `application_id` is
    `{application}@{tenant}` (just `{application}` on The Things Stack Open Source)."""
    body = {"downlinks": [{"f_port": frame.f_port, "frm_payload": base64.b64encode(frame.data).decode(),
                           "priority": "HIGH", "confirmed": frame.confirmed,
                           "correlation_ids": [f"pilotlab:command:{command_id}"]}]}
    return f"v3/{application_id}/devices/{device_id}/down/push", orjson.dumps(body)

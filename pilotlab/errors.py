"""The error hierarchy shared by every pilotlab package.

This module imports nothing of ours, so any package may depend on it. Errors raised at the edges
(CLI, HTTP) turn into one clear line or a 4xx body; a traceback means a bug.
"""

from __future__ import annotations

from enum import StrEnum


class PilotlabError(Exception):
    """Base of every error pilotlab raises on purpose."""


class ConfigError(PilotlabError):
    """A setting, argument or file the operator gave cannot be used."""


class ServiceUnavailable(PilotlabError):
    """The database or the MQTT broker cannot be reached."""


class RubricError(ConfigError):
    """A scoring rubric that does not parse or validate; the message names the field."""


class InvalidWindow(ConfigError):
    """A scoring window that cannot be scored: it ends in the future, before the pilot starts, or
    spans more than the longest window scored at once; the message says which."""


class RecordInvalid(PilotlabError):
    """A reference record that fails verification; the message says why."""


class NotFound(PilotlabError):
    """A registry object named by the caller does not exist."""


class Conflict(PilotlabError):
    """A registry change contradicts what is already stored."""


class RejectReason(StrEnum):
    """Why a message went to the dead-letter table. A fixed, documented set (README)."""

    TOPIC_INVALID = "topic_invalid"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    MALFORMED_JSON = "malformed_json"
    INVALID_PAYLOAD = "invalid_payload"
    OUT_OF_RANGE = "out_of_range"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    UNKNOWN_DEVICE = "unknown_device"
    PILOT_MISMATCH = "pilot_mismatch"
    DEVICE_DECOMMISSIONED = "device_decommissioned"
    STORE_REJECTED = "store_rejected"
    # LPWA network servers and gateways (ingest.adapters)
    BAD_BASE64 = "bad_base64"
    CODEC_ERROR = "codec_error"
    UNKNOWN_DEV_EUI = "unknown_dev_eui"
    UNKNOWN_FPORT = "unknown_fport"
    UNKNOWN_GATEWAY = "unknown_gateway"
    GATEWAY_NOT_ATTACHED = "gateway_not_attached"


class CodecError(PilotlabError):
    """A binary payload that does not follow its documented byte layout (devices.codecs)."""


class MessageRejected(PilotlabError):
    """A message that cannot be stored as a reading; it is kept as a dead letter instead."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail

"""The error hierarchy shared by every pilotlab package, and how the edges answer each class.

This module imports nothing of ours, so any package may depend on it. Errors raised at the edges
(CLI, HTTP) turn into one clear line and the answer `ANSWERS` gives their class (an HTTP status,
a CLI exit code); a traceback means a bug.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PilotlabError(Exception):
    """Base of every error pilotlab raises on purpose."""


class ConfigError(PilotlabError):
    """A setting, argument or file the operator gave cannot be used. `setting` names the variable
    to fix when there is one: a server answers with it alone and keeps the message (which may
    name its files) for its log."""

    setting: str | None = None

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        if setting is not None:
            self.setting = setting


class ServiceUnavailable(PilotlabError):
    """The database or the MQTT broker cannot be reached."""


class InvalidRequest(PilotlabError):
    """What the caller asked for cannot be done as asked (a field naming nothing, a value breaking
    a rule, an unknown time zone); the message says what to change."""


class RubricError(ConfigError):
    """A scoring rubric that does not parse or validate; the message names the field."""

    setting = "PILOTLAB_RUBRIC"


class InvalidWindow(InvalidRequest):
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
    # Device profiles (ingest.readings): the profile itself, and a vendor JavaScript codec's failure
    # (the same names as JsCodecFailure)
    PROFILE_INVALID = "profile_invalid"
    CODEC_THREW = "codec_threw"
    CODEC_TIMEOUT = "codec_timeout"
    CODEC_MEMORY = "codec_memory"
    CODEC_ERRORS = "codec_errors"
    CODEC_BAD_RESULT = "codec_bad_result"
    CODEC_MISSING_ENTRY_POINT = "codec_missing_entry_point"
    CODEC_THROTTLED = "codec_throttled"


class CodecError(PilotlabError):
    """A binary payload that does not follow its documented byte layout (devices.codecs)."""


class JsCodecFailure(StrEnum):
    """Why a vendor JavaScript codec gave no reading (devices.codecs.javascript). A fixed set (README)."""

    THREW = "codec_threw"                       # an exception, or a syntax error when loading
    TIMEOUT = "codec_timeout"                   # ran past its time limit
    MEMORY = "codec_memory"                     # past its heap or stack limit
    ERRORS = "codec_errors"                     # decodeUplink returned a non-empty `errors`
    BAD_RESULT = "codec_bad_result"             # not an object, or no `data` object
    MISSING_ENTRY_POINT = "codec_missing_entry_point"  # no decodeUplink, Decoder or Decode
    THROTTLED = "codec_throttled"               # past its CPU budget per second (refused, or stopped)


class JsCodecError(CodecError):
    """A vendor JavaScript codec failed; `reason` says how, `detail` carries the codec's message."""

    def __init__(self, reason: JsCodecFailure, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class MessageRejected(PilotlabError):
    """A message that cannot be stored as a reading; it is kept as a dead letter instead."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Answer:
    """How the edges answer an error: the HTTP status of its Problem and the CLI's exit code."""

    http_status: int
    exit_code: int


# The one table from error class to answer (api/errors.py and the CLI read it); an error answers
# as its nearest class listed here. A misconfigured server is the operator's to fix, not the
# caller's: 503, never a 4xx. The CLI's errors are all the operator's and exit 2, but for a
# record found invalid (1: "checked, and it is not").
ANSWERS: dict[type[PilotlabError], Answer] = {
    ConfigError: Answer(503, 2),         # misconfiguration
    ServiceUnavailable: Answer(503, 2),  # database or broker unreachable, or too busy
    InvalidRequest: Answer(422, 2),      # the request cannot be done as asked
    NotFound: Answer(404, 2),
    Conflict: Answer(409, 2),            # contradicts what is stored
    RecordInvalid: Answer(422, 1),
    PilotlabError: Answer(500, 2),       # a class not listed yet: a bug to fix here
}


def answer_for(error: BaseException) -> Answer:
    """The answer of the nearest class of `error` in ANSWERS (500 and exit 2 for any other)."""
    for cls in type(error).__mro__:
        found = ANSWERS.get(cls)
        if found is not None:
            return found
    return ANSWERS[PilotlabError]

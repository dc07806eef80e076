"""The command round trip as ingest sees it: devices' acknowledgements, and the platform's own
commands coming back.

The contract's subscription (`pilotlab/v1/+/+/+`) also brings the worker every
`…/{device}/ack` a device publishes and every `…/{device}/cmd` the API publishes. Neither is a
contract channel, so `ingest.decode.Decoder` meets them only on its refused-topic path (the
contract's hot path does no extra work for them) and hands them here:

- an acknowledgement becomes an `AckRow` in the batch's link records, applied to its command in
  the batch's transaction (store.commands.record_acks), so the MQTT ack goes out only after the
  commit, as for readings; a malformed one is a dead letter of its device (`malformed_json`,
  `invalid_payload`, …), counted against it like any refused message;
- a command is the platform's own message: nothing to store, no dead letter.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from devices.commands import parse_ack
from devices.contract import ACK_LEVEL, COMMAND_LEVEL, ID_PATTERN, TOPIC_ROOT
from ingest.handoff import Inbound
from ingest.rows import DeviceLookup, Outputs, Sender, dead_letter, registered
from pilotlab.errors import MessageRejected, RejectReason
from store.commands import AckRow

_PREFIX = f"{TOPIC_ROOT}/"
_ID = re.compile(ID_PATTERN)


def _levels(topic: str) -> list[str] | None:
    """[pilot, device, last level] of a contract-shaped topic ending in cmd or ack, else None."""
    if not topic.startswith(_PREFIX):
        return None
    levels = topic[len(_PREFIX):].split("/")
    if len(levels) != 3 or levels[2] not in (ACK_LEVEL, COMMAND_LEVEL):
        return None
    return levels


class CommandTraffic:
    """Claims `…/ack` and `…/cmd` topics of the contract's shape and decodes them into `Outputs`."""

    def __init__(self, max_payload_bytes: int) -> None:
        self._max_payload_bytes = max_payload_bytes

    def claims(self, topic: str) -> bool:
        levels = _levels(topic)
        return levels is not None and bool(_ID.fullmatch(levels[0]) and _ID.fullmatch(levels[1]))

    def decode(self, message: Inbound, lookup: DeviceLookup, out: Outputs) -> None:
        """Adds the acknowledgement in `message` to `out`, or its dead letter; never raises for input."""
        levels = _levels(message.topic)
        if levels is None or levels[2] == COMMAND_LEVEL:
            return  # the platform's own command, seen by its own subscription
        pilot_id, device_id = levels[0], levels[1]
        try:
            size = len(message.payload)
            if size > self._max_payload_bytes:
                raise MessageRejected(RejectReason.PAYLOAD_TOO_LARGE, f"{size} bytes, the limit is {self._max_payload_bytes}")
            registered(lookup, pilot_id, device_id)
            ack = parse_ack(message.payload)
        except MessageRejected as rejected:
            out.dead.append(dead_letter(message, rejected.reason, rejected.detail, Sender(pilot_id, device_id)))
            return
        out.link.command_acks.append(AckRow(ack.correlation_id, device_id,
                                            datetime.fromtimestamp(message.received_at, UTC), ack.relay_on, ack.detail))

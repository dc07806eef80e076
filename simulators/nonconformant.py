"""Non-conformant firmware, on purpose: what a simulated device gets wrong so that each conformance
check (conformance.checks) can be seen failing over the real broker and ingest.

    wrong-topic          telemetry on `…/<device>/telemetry2` instead of `…/telemetry`
    drifting-clock       the device clock gains DRIFT_S_PER_MESSAGE seconds with every message
    wrong-interval       reports at half the declared rate (every 2 × the interval)
    bad-payload          every BAD_EVERY-th message carries a number as a string (fails validation)
    missing-measurement  messages without one measurement (`omit`, default: the kind's OMITTED one)
    counter-reset        seq restarts at 0 after RESET_AFTER messages, as after a reboot that lost it
    qos0                 publishes with QoS 0

A `Nonconformance` rewrites what a behaviour (simulators.firmware) sends, message by message, and
is pure: the same messages in give the same messages out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from devices.kinds import Channel, DeviceKind

DRIFT_S_PER_MESSAGE = 20.0
BAD_EVERY = 3
RESET_AFTER = 4
INTERVAL_FACTOR = 2.0
OMITTED = {DeviceKind.ENV_SENSOR: "humidity_pct", DeviceKind.SMART_SWITCH: "energy_wh",
           DeviceKind.LOCATION_TRACKER: "speed_mps"}


class Misbehaviour(StrEnum):
    WRONG_TOPIC = "wrong-topic"
    DRIFTING_CLOCK = "drifting-clock"
    WRONG_INTERVAL = "wrong-interval"
    BAD_PAYLOAD = "bad-payload"
    MISSING_MEASUREMENT = "missing-measurement"
    COUNTER_RESET = "counter-reset"
    QOS0 = "qos0"


@dataclass
class Nonconformance:
    """One misbehaviour of one device; `apply` is called for each message it sends, in order."""

    mode: Misbehaviour
    omit: str | None = None   # missing-measurement: the measurement left out (None: OMITTED[kind])
    sent: int = field(default=0, init=False)

    @property
    def interval_factor(self) -> float:
        """How much longer than declared the device waits between reports."""
        return INTERVAL_FACTOR if self.mode is Misbehaviour.WRONG_INTERVAL else 1.0

    @property
    def qos(self) -> int:
        return 0 if self.mode is Misbehaviour.QOS0 else 1

    def apply(self, kind: DeviceKind, topic: str, channel: Channel, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The (topic, payload) the misbehaving device sends instead of the conformant one."""
        n, self.sent = self.sent, self.sent + 1
        out = dict(payload)
        mode = self.mode
        if mode is Misbehaviour.WRONG_TOPIC and channel is Channel.TELEMETRY:
            return f"{topic}2", out
        if mode is Misbehaviour.DRIFTING_CLOCK:
            ts = datetime.fromisoformat(out["ts"]) + timedelta(seconds=DRIFT_S_PER_MESSAGE * n)
            out["ts"] = ts.isoformat(timespec="milliseconds")
        elif mode is Misbehaviour.BAD_PAYLOAD and n % BAD_EVERY == BAD_EVERY - 1:
            name = next((k for k, v in out.items() if k not in ("ts", "seq") and isinstance(v, int | float)
                         and not isinstance(v, bool)), "seq")
            out[name] = str(out[name])
        elif mode is Misbehaviour.MISSING_MEASUREMENT:
            out.pop(self.omit or OMITTED[kind], None)
        elif mode is Misbehaviour.COUNTER_RESET and n >= RESET_AFTER:
            out["seq"] = n - RESET_AFTER
        return topic, out

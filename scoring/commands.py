"""Commands to smart switches as a scored metric: round-trip success rate and latency, per switch
and for the fleet (store.commands keeps the commands and applies the acknowledgement rule).

Counted, per switch: the commands sent in its scored window [start, end) that expired by the
window's end, so each has its final outcome, leaving out those the broker never took (the
platform's failure, not the device's). Over them, and pooled over the fleet's switches:

    success rate   acknowledged / counted (acknowledged by the expiry: an ack with the state asked
                   for, or the first report with it; failed and expired commands are not)
    latency        p50 and p95 of acked_at - sent_at over the acknowledged commands, exact: from the
                   stored times, linear interpolation between ranks (numpy.percentile's default)

Component (rubric v3 `weights.switch_commands`): the fleet's success rate, evaluated when at least
`switch_commands.min_commands` commands are counted (else none: its weight goes to the others).
Timeliness is the expiry's: each command's sender says how long an answer may take (a LoRaWAN
class A switch hears a downlink only after its next uplink), and latency is reported beside it, not
weighed. A record's evidence digest covers every counted command (`evidence_rows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from devices.kinds import DeviceKind
from scoring.fleet import percentile
from scoring.records import plain
from scoring.window import DeviceWindow
from store import commands
from store.commands import Command


@dataclass(frozen=True)
class CommandFigures:
    sent: int
    acknowledged: int
    failed: int
    expired: int
    latencies_s: tuple[float, ...]  # of the acknowledged, in sending order

    @property
    def success_rate(self) -> float | None:
        return self.acknowledged / self.sent if self.sent else None

    def breakdown(self) -> dict[str, Any]:
        latencies = list(self.latencies_s)
        return {"sent": self.sent, "acknowledged": self.acknowledged, "failed": self.failed, "expired": self.expired,
                "success_rate": self.success_rate, "latency_p50_s": percentile(latencies, 0.5),
                "latency_p95_s": percentile(latencies, 0.95), "method": "exact"}


def figures(found: Sequence[Command]) -> CommandFigures:
    acked = [c for c in found if c.state == "acknowledged"]
    return CommandFigures(len(found), len(acked), sum(c.state == "failed" for c in found),
                          sum(c.state == "expired" for c in found),
                          tuple(c.latency_s for c in acked if c.latency_s is not None))


@dataclass(frozen=True)
class SwitchCommands:
    per_switch: dict[str, CommandFigures]  # every scored switch, with or without commands
    fleet: CommandFigures
    counted: tuple[Command, ...]

    def component(self, min_commands: int) -> float | None:
        return self.fleet.success_rate if self.fleet.sent >= min_commands else None

    def evidence_rows(self) -> list[list[Any]]:
        """[device, command id, sent_at, expires_at, state, acked_at] of every counted command."""
        return [plain([c.device_id, c.id, c.sent_at, c.expires_at, c.state, c.acked_at]) for c in self.counted]


def switch_commands(conn: psycopg.Connection, windows: Sequence[DeviceWindow]) -> SwitchCommands | None:
    """The figures of the scored switches among `windows` (None: no switch), after settling their
    commands (store.commands.settle)."""
    switches = [w for w in windows if w.device.kind == DeviceKind.SMART_SWITCH.value]
    if not switches:
        return None
    commands.settle(conn, [w.device.id for w in switches])
    counted = commands.in_windows(conn, [(w.device.id, w.start, w.end) for w in switches])
    by_switch: dict[str, list[Command]] = {w.device.id: [] for w in switches}
    for command in counted:
        by_switch[command.device_id].append(command)
    per_switch = {device_id: figures(found) for device_id, found in by_switch.items()}
    return SwitchCommands(per_switch, figures(counted), tuple(counted))

"""The acknowledgement rule, by construction: commands and reports written straight into the
tables with chosen times, so the outcome of each command and the scored figures are known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from devices.commands import new_command_id
from scoring.commands import figures
from store import commands
from store.commands import AckRow
from tests.commands.conftest import SwitchPilot

T = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def at(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def command(db: psycopg.Connection, device_id: str, expires_s: float, relay_on: bool = True) -> str:
    command_id = new_command_id()
    commands.create(db, command_id=command_id, device_id=device_id, relay_on=relay_on, transport="mqtt", topic="t",
                    sent_at=T, expires_at=at(expires_s), requested_by="")
    return command_id


def report(db: psycopg.Connection, device_id: str, seq: int, device_s: float, ingest_s: float, relay_on: bool) -> None:
    db.execute("INSERT INTO telemetry (device_id, seq, device_time, ingest_time, channel, size_bytes, relay_on) "
               "VALUES (%s, %s, %s, %s, 'telemetry', 40, %s)", (device_id, seq, at(device_s), at(ingest_s), relay_on))


def outcome(db: psycopg.Connection, command_id: str) -> tuple[str, str | None, float | None]:
    found = commands.get(db, command_id)
    return found.state, found.ack_via, found.latency_s


def test_the_first_report_by_arrival_after_sending_and_by_expiry_with_the_state_asked_acknowledges(
        db: psycopg.Connection, switches: SwitchPilot) -> None:
    first, late, ahead = (command(db, switches.obeying, 60), command(db, switches.ignoring, 10),
                          command(db, switches.reporting, 10))
    report(db, switches.obeying, 1, device_s=-1, ingest_s=1, relay_on=True)   # measured before the command
    report(db, switches.obeying, 2, device_s=2, ingest_s=3, relay_on=False)   # the other state
    report(db, switches.obeying, 3, device_s=6, ingest_s=5, relay_on=True)    # the first to arrive that counts
    report(db, switches.obeying, 4, device_s=4, ingest_s=5.5, relay_on=True)  # measured earlier, arrived later
    report(db, switches.ignoring, 1, device_s=5, ingest_s=11, relay_on=True)  # arrived after the expiry
    report(db, switches.reporting, 1, device_s=12, ingest_s=9, relay_on=True)  # device time past the expiry
    commands.settle(db, [switches.obeying, switches.ignoring, switches.reporting])
    assert outcome(db, first) == ("acknowledged", "report", 5.0)
    assert outcome(db, late) == ("expired", None, None)
    assert outcome(db, ahead) == ("expired", None, None)


def test_the_earliest_acknowledgement_wins_and_one_after_the_expiry_or_of_another_device_changes_nothing(
        db: psycopg.Connection, switches: SwitchPilot) -> None:
    both, tardy, other = (command(db, switches.obeying, 10), command(db, switches.ignoring, 10),
                          command(db, switches.silent, 10))
    assert commands.record_acks(db, [AckRow(both, switches.obeying, at(3), True, None),
                                     AckRow(tardy, switches.ignoring, at(11), True, None),
                                     AckRow(other, switches.obeying, at(1), True, "not mine")]) == 1
    report(db, switches.obeying, 1, device_s=1.5, ingest_s=2, relay_on=True)  # earlier than the ack
    commands.settle(db, [switches.obeying, switches.ignoring, switches.silent])
    assert outcome(db, both) == ("acknowledged", "report", 2.0)
    assert outcome(db, tardy) == ("expired", None, None)
    assert outcome(db, other) == ("expired", None, None)


def test_a_report_received_in_time_but_committed_after_the_command_expired_still_acknowledges_it(
        db: psycopg.Connection, switches: SwitchPilot) -> None:
    slow = command(db, switches.obeying, 10, relay_on=False)
    commands.settle(db, [switches.obeying])
    assert outcome(db, slow) == ("expired", None, None)
    report(db, switches.obeying, 1, device_s=7, ingest_s=8, relay_on=False)  # its batch committed only now
    commands.settle(db, [switches.obeying])
    assert outcome(db, slow) == ("acknowledged", "report", 8.0)


def test_success_rate_and_exact_latency_percentiles_of_known_round_trips(
        db: psycopg.Connection, switches: SwitchPilot) -> None:
    latencies = [0.4, 1.25, 2.0, 7.5, 30.0]
    acked = [command(db, switches.obeying, 60) for _ in latencies]
    commands.record_acks(db, [AckRow(c, switches.obeying, at(s), True, None) for c, s in zip(acked, latencies, strict=True)])
    refused = command(db, switches.obeying, 60)
    commands.record_acks(db, [AckRow(refused, switches.obeying, at(1), False, "overload lock")])
    unanswered = [command(db, switches.obeying, 60) for _ in range(2)]
    commands.settle(db, [switches.obeying])
    found = figures(commands.in_windows(db, [(switches.obeying, T, at(60))]))
    p50, p95 = np.percentile(latencies, [50, 95])  # linear interpolation: 2.0 and 25.5
    assert found.breakdown() == {"sent": 8, "acknowledged": 5, "failed": 1, "expired": 2, "success_rate": 5 / 8,
                                 "latency_p50_s": pytest.approx(p50), "latency_p95_s": pytest.approx(p95),
                                 "method": "exact"}
    assert (p50, p95) == (2.0, pytest.approx(25.5))
    # a window ending before the commands expire counts none of them: their outcome is not final yet
    assert figures(commands.in_windows(db, [(switches.obeying, T, at(59))])).sent == 0
    assert [outcome(db, c)[0] for c in unanswered] == ["expired", "expired"]

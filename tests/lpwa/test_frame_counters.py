"""Loss accounting from frame counters is exact on crafted sequences: gaps, 16-bit rollover,
resets after a rejoin or reboot, out-of-order and duplicate arrival (view uplink_loss_hourly)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ingest.adapters.frame_counter import CounterWidener, DuplicateWindow, widen_16
from tests.support import register_pilot

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_widening_follows_16_bit_rollover_and_late_frames() -> None:
    assert widen_16(None, 7) == 7
    assert widen_16(65534, 1) == 65537          # rolled over, 2 frames lost in between
    assert widen_16(65537, 65535) == 65535      # a late frame from before the rollover
    assert widen_16(131071, 0) == 131072
    widener = CounterWidener(seed=lambda device: 65530)
    assert [widener.widen("d", raw) for raw in (65533, 2, 1, 4)] == [65533, 65538, 65537, 65540]
    widener.joined("d")
    assert widener.widen("d", 0) == 0           # a join restarts the counter


def test_copies_of_one_uplink_share_the_first_time_within_the_window() -> None:
    window = DuplicateWindow()
    assert window.canonical_time("d", 5, T0) == T0
    assert window.canonical_time("d", 5, T0 + timedelta(seconds=3)) == T0
    later = T0 + timedelta(hours=3)  # same counter hours later: a new session's frame
    assert window.canonical_time("d", 5, later) == later


@pytest.fixture
def device(database_url: str, unique_id: Callable[[str], str]) -> str:
    return register_pilot(database_url, unique_id("fc")).env_id


def _store(database_url: str, device_id: str, frames: list[tuple[int, datetime]],
           joins: list[datetime] = ()) -> dict[datetime, tuple[int, int, int, int]]:
    with psycopg.connect(database_url) as conn:
        for fcnt, at in frames:
            conn.execute("INSERT INTO uplink_frame (device_id, fcnt, uplink_time, received_at, network_server) "
                         "VALUES (%s, %s, %s, now(), 'chirpstack') ON CONFLICT DO NOTHING", (device_id, fcnt, at))
        for at in joins:
            conn.execute("INSERT INTO lorawan_join VALUES (%s, %s, 'chirpstack', NULL)", (device_id, at))
        rows = conn.execute("SELECT hour, received, lost, expected, counter_resets FROM uplink_loss_hourly "
                            "WHERE device_id = %s ORDER BY hour", (device_id,)).fetchall()
    return {hour: (received, lost, expected, resets) for hour, received, lost, expected, resets in rows}


def _minutes(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def test_gaps_are_lost_uplinks_charged_to_the_hour_they_end_in(database_url: str, device: str) -> None:
    # one uplink a minute, counter = minute; 3-5 and 58-61 lost (frame 62 ends the second gap, in hour 11)
    sent = [n for n in range(0, 70) if n not in (3, 4, 5, 58, 59, 60, 61)]
    loss = _store(database_url, device, [(n, _minutes(n)) for n in sent])
    assert loss == {T0: (55, 3, 58, 0), T0 + timedelta(hours=1): (8, 4, 12, 0)}


def test_out_of_order_and_duplicate_arrival_change_nothing(database_url: str, device: str,
                                                           unique_id: Callable[[str], str]) -> None:
    frames = [(n, _minutes(n)) for n in range(0, 40) if n % 7 != 3]
    in_order = _store(database_url, device, frames)
    other = register_pilot(database_url, unique_id("fc2")).env_id
    shuffled = frames + frames[:10] + [(5, _minutes(5) + timedelta(seconds=2))]  # redelivered; a late copy
    random.Random(4).shuffle(shuffled)
    assert _store(database_url, other, shuffled) == in_order == {T0: (34, 6, 40, 0)}


def test_a_16_bit_counter_rolling_over_loses_only_what_was_missed(database_url: str, device: str) -> None:
    raw = [65530, 65532, 65535, 0, 1, 4]  # lost on air: 65531, 65533, 65534, then 2 and 3 after rolling over
    widener = CounterWidener(seed=lambda device_id: None)
    frames = [(widener.widen(device, r), _minutes(i)) for i, r in enumerate(raw)]
    assert [f for f, _ in frames] == [65530, 65532, 65535, 65536, 65537, 65540]
    assert _store(database_url, device, frames) == {T0: (6, 5, 11, 0)}


def test_a_rejoin_restarts_the_count_and_frames_before_the_first_heard_are_lost(database_url: str, device: str) -> None:
    frames = [(n, _minutes(n - 100)) for n in range(100, 110)]     # session 1: heard from 100
    frames += [(n, _minutes(20 + n)) for n in (1, 2, 3, 5)]         # after the join: 0 and 4 lost
    loss = _store(database_url, device, frames, joins=[_minutes(19)])
    assert loss == {T0: (14, 2, 16, 1)}


def test_a_reboot_without_join_is_seen_as_the_counter_going_back(database_url: str, device: str) -> None:
    frames = [(n, _minutes(n - 50)) for n in range(50, 55)] + [(n, _minutes(10 + n)) for n in (0, 1, 2)]
    assert _store(database_url, device, frames) == {T0: (8, 0, 8, 1)}

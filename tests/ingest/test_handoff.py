"""The hand-off between paho's thread and the writer: bounded, FIFO, and a full hand-off holds
the producer (paho's network thread) only until the writer takes a batch or the worker stops."""

from __future__ import annotations

import threading
import time

from ingest.handoff import HandOff, Inbound


def _message(n: int) -> Inbound:
    return Inbound(f"t/{n}", b"{}", n, 1, time.time(), 1)


def _producer(handoff: HandOff, count: int) -> tuple[threading.Thread, list[float]]:
    done_at: list[float] = []

    def run() -> None:
        for n in range(count):
            handoff.put(_message(n))
        done_at.append(time.monotonic())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done_at


def test_batches_come_out_in_order_and_never_larger_than_asked() -> None:
    handoff = HandOff(capacity=100)
    for n in range(25):
        handoff.put(_message(n))
    first, second = handoff.take(10, wait_s=0), handoff.take(100, wait_s=0)
    assert [m.mid for m in first] == list(range(10))
    assert [m.mid for m in second] == list(range(10, 25))
    assert handoff.take(10, wait_s=0.01) == []


def test_a_full_hand_off_holds_the_producer_until_a_batch_is_taken() -> None:
    handoff = HandOff(capacity=5)
    thread, done_at = _producer(handoff, 8)
    time.sleep(0.3)
    assert len(handoff) == 5 and not done_at and handoff.times_full == 1  # held at the sixth
    taken_at = time.monotonic()
    assert [m.mid for m in handoff.take(5, wait_s=0)] == [0, 1, 2, 3, 4]
    thread.join(2)
    assert done_at and done_at[0] - taken_at < 0.05  # woken by the take, not by a timer
    assert [m.mid for m in handoff.take(5, wait_s=0)] == [5, 6, 7]


def test_closing_releases_a_held_producer_and_drops_its_message_unacknowledged() -> None:
    handoff = HandOff(capacity=2)
    thread, done_at = _producer(handoff, 3)
    time.sleep(0.2)
    handoff.close()
    thread.join(2)
    assert done_at, "the producer is still held after close()"
    assert [m.mid for m in handoff.take(10, wait_s=0)] == [0, 1]  # the third was never added


def test_a_waiting_consumer_gets_a_full_batch_as_soon_as_it_is_there() -> None:
    handoff = HandOff(capacity=100)
    started = time.monotonic()
    threading.Timer(0.05, lambda: [handoff.put(_message(n)) for n in range(10)]).start()
    batch = handoff.take(10, wait_s=2, linger_s=2)
    assert len(batch) == 10 and time.monotonic() - started < 1  # not the 2 s linger


def test_a_hand_off_full_for_longer_than_its_hold_refuses_so_paho_thread_is_never_held_for_ever() -> None:
    handoff = HandOff(capacity=2, full_hold_s=0.2)
    assert handoff.put(_message(0)) and handoff.put(_message(1))
    started = time.monotonic()
    assert handoff.put(_message(2)) is False, "refused once the hold ran out"
    assert 0.2 <= time.monotonic() - started < 0.5
    started = time.monotonic()
    assert handoff.put(_message(3)) is False and time.monotonic() - started < 0.05, "then refused at once"
    assert [m.mid for m in handoff.take(1, wait_s=0)] == [0]
    assert handoff.put(_message(4)), "a take ends the refusal"
    assert handoff.refused == 2 and handoff.holds(1)
    assert [m.mid for m in handoff.take(5, wait_s=0)] == [1, 4]
    assert not handoff.holds(1)

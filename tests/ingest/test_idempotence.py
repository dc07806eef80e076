"""Redelivery is harmless: the same message twice is stored once, and counted as a duplicate
delivery of its device on the UTC day of its device time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, time

import psycopg

from devices.contract import topic_for
from ingest.decode import Decoder
from ingest.directory import DeviceDirectory
from ingest.handoff import Inbound
from ingest.writer import BatchWriter, WriteResult
from tests.ingest import payloads
from tests.support import RegisteredPilot, count_rows, publish, register_pilot, wait_until


def test_the_same_message_delivered_twice_is_stored_once(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable,
) -> None:
    topic = topic_for(pilot.pilot_id, pilot.switch_id, "telemetry")
    body = payloads.encode(payloads.switch(5))
    worker = thread_worker()
    publish(mqtt_url, [(topic, body), (topic, body)])
    wait_until(lambda: worker.stats.received >= 2, 10, what="both deliveries")
    stats = worker.stop()
    assert (stats.stored, stats.duplicates) == (1, 1)
    assert count_rows(database_url, "SELECT count(*) FROM telemetry WHERE device_id = %s", (pilot.switch_id,)) == 1


def test_a_duplicate_arriving_in_a_later_batch_adds_nothing(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable,
) -> None:
    topic = topic_for(pilot.pilot_id, pilot.tracker_id, "telemetry")
    body = payloads.encode(payloads.tracker(9))
    worker = thread_worker()
    publish(mqtt_url, [(topic, body)])
    wait_until(lambda: worker.stats.stored == 1, 10, what="the first delivery")
    publish(mqtt_url, [(topic, body)])
    wait_until(lambda: worker.stats.duplicates == 1, 10, what="the redelivery")
    assert count_rows(database_url, "SELECT count(*) FROM telemetry WHERE device_id = %s", (pilot.tracker_id,)) == 1


def test_a_device_whose_counter_restarted_keeps_both_messages_with_the_same_seq(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable,
) -> None:
    topic = topic_for(pilot.pilot_id, pilot.env_id, "telemetry")
    before_reboot = payloads.encode(payloads.environment(0, ts=1_764_000_000_000))
    after_reboot = payloads.encode(payloads.environment(0, ts=1_764_000_600_000))
    worker = thread_worker()
    publish(mqtt_url, [(topic, before_reboot), (topic, after_reboot)])
    wait_until(lambda: worker.stats.stored == 2, 10, what="both messages")
    assert count_rows(database_url, "SELECT count(*) FROM telemetry WHERE device_id = %s AND seq = 0",
                      (pilot.env_id,)) == 2


def test_a_redelivered_bad_message_is_kept_once(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable,
) -> None:
    topic = topic_for(pilot.pilot_id, pilot.switch_id, "telemetry")
    worker = thread_worker()
    publish(mqtt_url, [(topic, b"{oops"), (topic, b"{oops")])
    wait_until(lambda: worker.stats.received >= 2, 10, what="both deliveries")
    worker.stop()
    assert count_rows(database_url, "SELECT count(*) FROM dead_letter WHERE topic = %s", (topic,)) == 1


# --- duplicate deliveries are counted per device and day (issue 15) ---------------------------

def _delivery_days(database_url: str, device_id: str) -> dict[date, tuple[int, int, dict[str, int]]]:
    """delivery_day of one device: day -> (duplicates, rejected, rejected by reason)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT day, duplicates, rejected, rejected_by_reason FROM delivery_day "
                            "WHERE device_id = %s", (device_id,)).fetchall()
    return {day: (duplicates, rejected, by_reason) for day, duplicates, rejected, by_reason in rows}


def _utc_day(ts_ms: int) -> date:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).date()


def test_duplicates_are_counted_per_device_on_the_utc_day_of_their_device_time(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable,
) -> None:
    topic = topic_for(pilot.pilot_id, pilot.switch_id, "telemetry")
    recent = payloads.now_ms() - 60_000
    midnight = int(datetime.combine(_utc_day(recent), time.min, UTC).timestamp() * 1000)
    last_moment_before = midnight - 1  # 23:59:59.999 UTC of the day before
    today = payloads.encode(payloads.switch(1, ts=recent))
    yesterday = payloads.encode(payloads.switch(2, ts=last_moment_before))
    once = payloads.encode(payloads.tracker(3))
    worker = thread_worker()
    # two copies in one burst (and so, mostly, in one batch), each message's first copy new
    publish(mqtt_url, [(topic, today), (topic, today), (topic, yesterday), (topic, yesterday),
                       (topic_for(pilot.pilot_id, pilot.tracker_id, "telemetry"), once)])
    wait_until(lambda: worker.stats.received >= 5, 10, what="the first burst")
    publish(mqtt_url, [(topic, today)])  # a later resend of a stored message
    wait_until(lambda: worker.stats.received >= 6, 10, what="the resend")
    stats = worker.stop()

    assert (stats.stored, stats.duplicates) == (3, 3)
    assert _delivery_days(database_url, pilot.switch_id) == {
        _utc_day(recent): (2, 0, {}), _utc_day(last_moment_before): (1, 0, {})}
    assert _delivery_days(database_url, pilot.tracker_id) == {}, "a device without duplicates has no row"


def test_a_redelivered_batch_counts_every_copy_it_adds_nothing_with_as_a_duplicate(
    database_url: str, pilot: RegisteredPilot,
) -> None:
    """The same decoded batch written twice, as after a commit whose acknowledgement was lost:
    the second write stores nothing and counts each of its messages, copies inside it too."""
    topic = topic_for(pilot.pilot_id, pilot.env_id, "telemetry")
    now = payloads.now_ms()
    times = [now - 5_000 - (seq % 3) * 86_400_000 for seq in range(10)]  # 4, 3 and 3 messages on three days
    bodies = [payloads.encode(payloads.environment(seq, ts=ts)) for seq, ts in enumerate(times)]
    batch = [Inbound(topic, body, n + 1, 1, now / 1000, 1) for n, body in enumerate([*bodies, bodies[0]])]
    with psycopg.connect(database_url) as conn:
        directory = DeviceDirectory(60)
        directory.load(conn)
        decoded = Decoder(16_384, 86_400).decode(batch, lambda device_id: directory.lookup(device_id, conn))
        writer = BatchWriter(conn)
        first, again = writer.write(decoded), writer.write(decoded)
    assert (first.stored, first.duplicates, again.stored, again.duplicates) == (10, 1, 0, 11)
    expected: Counter[date] = Counter()
    for ts in [*times, times[0], *times, times[0]]:  # the copy inside the batch, then all eleven again
        expected[_utc_day(ts)] += 1
    for ts in times:  # each message's first copy was stored
        expected[_utc_day(ts)] -= 1
    assert _delivery_days(database_url, pilot.env_id) == {day: (n, 0, {}) for day, n in expected.items()}
    assert len(expected) == 3


def test_duplicates_found_while_writing_a_refused_batch_row_by_row_are_counted(
    make_database: Callable[[], str], unique_id: Callable[[str], str],
) -> None:
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE telemetry ADD CONSTRAINT power_below_50kw CHECK (power_w < 50000)")
    pilot = register_pilot(url, unique_id("dup"))
    topic = topic_for(pilot.pilot_id, pilot.switch_id, "telemetry")
    ts = payloads.now_ms() - 5_000
    stored_before = payloads.encode(payloads.switch(1, ts=ts))
    poison = payloads.encode(payloads.switch(2, ts=ts, power_w=90_000.0))
    new = payloads.encode(payloads.switch(3, ts=ts))
    with psycopg.connect(url) as conn:
        directory = DeviceDirectory(60)
        directory.load(conn)
        decoder, writer = Decoder(16_384, 86_400), BatchWriter(conn)

        def write(*bodies: bytes) -> WriteResult:
            batch = [Inbound(topic, body, n + 1, 1, ts / 1000, 1) for n, body in enumerate(bodies)]
            return writer.write(decoder.decode(batch, lambda device_id: directory.lookup(device_id, conn)))

        write(stored_before)
        result = write(stored_before, poison, new, new)
    assert (result.stored, result.poisoned, result.duplicates) == (1, 1, 2)
    assert _delivery_days(url, pilot.switch_id) == {_utc_day(ts): (2, 1, {"store_rejected": 1})}

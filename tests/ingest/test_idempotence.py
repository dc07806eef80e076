"""Redelivery is harmless: the same message twice is stored once."""

from __future__ import annotations

from collections.abc import Callable

from devices.contract import topic_for
from tests.ingest import payloads
from tests.support import RegisteredPilot, count_rows, publish, wait_until


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

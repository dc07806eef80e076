"""A batch the broker redelivers after an outage is stored once and counted: its messages were
committed while the broker was down, so their acknowledgements never reached it, and the broker
sends them again when the worker's session resumes. Each copy adds no row and one duplicate to its
device's day in `delivery_day`, which is what happened (issue 15).

Runs on the broker pilotlab ships (its persistence keeps the worker's session across a crash) and
a PostgreSQL of the test's own, both stopped and started here."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
import pytest

from pilotlab.embedded.broker import EmbeddedBroker, MosquittoInstall
from pilotlab.embedded.postgres import EmbeddedPostgres
from pilotlab.settings import Settings
from tests.faults.streams import BackgroundPublisher, assert_each_stored_once, stored, stream
from tests.ingest.conftest import ThreadWorker
from tests.support import register_pilot, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.mosquitto]

WINDOW, BATCH = 200, 100  # ReceiveMaximum and batch size


def test_a_batch_committed_while_the_broker_was_down_is_redelivered_and_counted_as_duplicates(
    own_postgres: EmbeddedPostgres, own_broker: Callable, shipped_mosquitto: MosquittoInstall,
    unique_id: Callable[[str], str],
) -> None:
    broker: EmbeddedBroker = own_broker("mosquitto", mosquitto=shipped_mosquitto.binary)
    url = own_postgres.url
    pilot = register_pilot(url, unique_id("redeliver"))
    per_device = 400
    messages = stream(pilot, per_device)
    worker = ThreadWorker(Settings(
        database_url=url, mqtt_url=broker.url, share_group=unique_id("grp"), worker_id="w1",
        session_expiry_s=300, receive_maximum=WINDOW, batch_size=BATCH, batch_linger_ms=5,
    )).start()

    # 1. The database is down: the worker holds one batch, unacknowledged, and the broker the rest.
    own_postgres.stop()
    publisher = BackgroundPublisher(broker.url, messages)
    publisher.start()
    assert publisher.finish(120) == len(messages)
    wait_until(lambda: worker.stats.held_unacked > 0, 30, what="a batch held while the database is down")

    # 2. The broker crashes; the database returns and the held batch is committed, its
    # acknowledgements going nowhere. (Before the crash, the broker's loop turns once: it commits
    # what it acknowledged at the next turn, at most 1 s on (deploy/mosquitto/persistence-sqlite.conf),
    # and losing the last PUBACKed messages is not what this test is about.)
    time.sleep(1.5)
    broker.kill()
    own_postgres.start()
    wait_until(lambda: stored(url, pilot) > 0, 60, what="the held batch committed while the broker is down")
    committed_unacked = stored(url, pilot)

    # 3. The broker returns with the worker's session and sends the unacknowledged messages again.
    broker.start()
    wait_until(lambda: stored(url, pilot) == len(messages), 120, what="every message stored")
    time.sleep(1.0)  # the last redelivered copies are written
    stats = worker.stop()

    assert_each_stored_once(url, pilot, per_device)
    assert stats.received == len(messages) + stats.duplicates
    assert stats.duplicates >= committed_unacked > 0, "the batch committed while the broker was down came again"
    with psycopg.connect(url) as conn:
        counted = conn.execute("SELECT device_id, day, duplicates, rejected FROM delivery_day "
                               "WHERE device_id = ANY(%s)", (pilot.device_ids,)).fetchall()
        by_day = conn.execute(  # the copies' days: each redelivered message's own device time
            "SELECT device_id, (device_time AT TIME ZONE 'UTC')::date FROM telemetry WHERE device_id = ANY(%s)",
            (pilot.device_ids,)).fetchall()
    assert sum(duplicates for _, _, duplicates, _ in counted) == stats.duplicates
    assert all(rejected == 0 for *_, rejected in counted)
    assert {(device, day) for device, day, _, _ in counted} <= set(by_day)
    assert all(day <= datetime.now(UTC).date() for _, day, _, _ in counted)

"""A worker whose database connection is lost holds its batch unacknowledged, reconnects by
itself and stores everything (the long-outage cases belong with the fault-tolerance suite)."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from devices.contract import topic_for
from tests.ingest import payloads
from tests.support import count_rows, publish, register_pilot, wait_until


def test_a_terminated_database_connection_is_reopened_and_nothing_is_lost(
    make_database: Callable[[], str], mqtt_url: str, thread_worker: Callable, unique_id: Callable[[str], str],
) -> None:
    url = make_database()
    pilot = register_pilot(url, unique_id("outage"))
    topic = topic_for(pilot.pilot_id, pilot.switch_id, "telemetry")
    worker = thread_worker(database_url=url)

    publish(mqtt_url, [(topic, payloads.encode(payloads.switch(seq))) for seq in range(50)])
    wait_until(lambda: count_rows(url, "SELECT count(*) FROM telemetry") == 50, 10, what="the first 50")
    with psycopg.connect(url, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()[0]
    assert killed >= 1

    publish(mqtt_url, [(topic, payloads.encode(payloads.switch(seq))) for seq in range(50, 100)])
    wait_until(lambda: count_rows(url, "SELECT count(*) FROM telemetry") == 100, 20, what="all 100")
    stats = worker.stop()
    assert stats.database_retries >= 1
    assert stats.stored == 100

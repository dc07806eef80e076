"""A message PostgreSQL refuses, in a batch of good ones, is isolated and dead-lettered with the
database's error; the rest of the batch is stored and the worker carries on.

The poison is real: it passes validation, and the database refuses it, here through a trigger
(RAISE EXCEPTION, as a recall rule or a tightened schema would) or a CHECK constraint added to
this test's own database."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
import pytest

from devices.contract import topic_for
from ingest.decode import Decoder
from ingest.directory import DeviceDirectory
from ingest.handoff import Inbound
from ingest.writer import BatchWriter
from pilotlab.settings import Settings
from tests.ingest import payloads
from tests.ingest.conftest import ThreadWorker
from tests.support import count_rows, publish, register_pilot, wait_until

REFUSE_RECALLED_FIRMWARE = """
CREATE FUNCTION refuse_recalled_firmware() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.firmware = '6.6.6' THEN
        RAISE EXCEPTION 'firmware % is recalled', NEW.firmware;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_recalled_firmware BEFORE INSERT ON telemetry
    FOR EACH ROW EXECUTE FUNCTION refuse_recalled_firmware();
"""
CAP_POWER = "ALTER TABLE telemetry ADD CONSTRAINT power_below_50kw CHECK (power_w < 50000)"


def test_a_message_the_database_refuses_is_dead_lettered_and_the_rest_of_its_batch_stored(
    make_database: Callable[[], str], mqtt_url: str, unique_id: Callable[[str], str],
) -> None:
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(REFUSE_RECALLED_FIRMWARE)
    pilot = register_pilot(url, unique_id("poison"))
    status_topic = topic_for(pilot.pilot_id, pilot.env_id, "status")
    good = [(status_topic, payloads.encode(payloads.status(seq))) for seq in range(0, 300) if seq != 150]
    poison = (status_topic, payloads.encode(payloads.status(150, firmware="6.6.6")))
    messages: list[tuple[str, bytes | str]] = [*good[:150], poison, *good[150:]]
    worker = ThreadWorker(Settings(database_url=url, mqtt_url=mqtt_url, share_group=unique_id("grp"),
                                   worker_id="w1", session_expiry_s=120, batch_size=500,
                                   batch_linger_ms=500)).start()

    publish(mqtt_url, messages)  # one connection, one burst: the poison shares a batch with good ones
    wait_until(lambda: count_rows(url, "SELECT count(*) FROM dead_letter") == 1, 20, what="the dead letter")
    wait_until(lambda: count_rows(url, "SELECT count(*) FROM telemetry") == len(good), 20, what="the good ones")
    with psycopg.connect(url) as conn:
        kept = conn.execute("SELECT reason, detail, payload FROM dead_letter").fetchone()
    assert kept is not None
    reason, detail, payload = kept
    assert (reason, bytes(payload)) == ("store_rejected", poison[1])
    assert "firmware 6.6.6 is recalled" in detail

    # The worker is alive and still storing.
    publish(mqtt_url, [(status_topic, payloads.encode(payloads.status(1000)))])
    wait_until(lambda: count_rows(url, "SELECT count(*) FROM telemetry") == len(good) + 1, 20, what="the next one")
    stats = worker.stop()
    assert stats.dead_lettered == {"store_rejected": 1}
    assert stats.stored == len(good) + 1


@pytest.mark.parametrize("poison_at", [0, 57, 99])
def test_batch_writer_isolates_a_refused_row_wherever_it_sits_in_the_batch(
    make_database: Callable[[], str], unique_id: Callable[[str], str], poison_at: int,
) -> None:
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(CAP_POWER)
    pilot = register_pilot(url, unique_id("cap"))
    topic = topic_for(pilot.pilot_id, pilot.switch_id, "telemetry")
    now = time.time()
    batch = [Inbound(topic, payloads.encode(payloads.switch(seq, power_w=90_000.0 if seq == poison_at else 40.0)),
                     seq + 1, 1, now, 1) for seq in range(100)]
    with psycopg.connect(url) as conn:
        directory = DeviceDirectory(60)
        directory.load(conn)
        decoded = Decoder(16_384, 86_400).decode(batch, lambda device_id: directory.lookup(device_id, conn))
        assert len(decoded.rows) == 100, "the poison passes validation (the contract allows 100 kW)"
        result = BatchWriter(conn).write(decoded)
    assert (result.stored, result.poisoned, result.dead_lettered, result.duplicates) == (99, 1, 1, 0)
    with psycopg.connect(url) as conn:
        kept = conn.execute("SELECT detail FROM dead_letter WHERE reason = 'store_rejected'").fetchone()
    assert kept is not None and "power_below_50kw" in kept[0]

"""A message PostgreSQL refuses, in a batch of good ones, is isolated and dead-lettered with the
database's error; the rest of the batch is stored and the worker carries on.

The poison is real: it passes validation, and the database refuses it, here through a trigger
(RAISE EXCEPTION, as a recall rule or a tightened schema would) or a CHECK constraint added to
this test's own database."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

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


# --- data the database cannot index or keep: refused, never taken for an outage -----------------
# PostgreSQL raises "index row size … exceeds btree version 4 maximum" as ProgramLimitExceeded,
# an OperationalError subclass like a dropped connection; a worker that took it for an outage
# retried one message for ever and stored nothing from anyone after it.

def _long_topic(pilot_id: str, device_id: str, size: int) -> str:
    """The device's own topic with a last level a device's ACL (`…/<device>/+`) lets it choose."""
    prefix = f"pilotlab/v1/{pilot_id}/{device_id}/"
    return prefix + secrets.token_hex(size)[: size - len(prefix)]  # random: TOAST cannot shrink it under the limit


def _dead_letters_of_topic(url: str, topic: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT reason, topic, length(topic), payload FROM dead_letter WHERE topic_sha256 = sha256(convert_to(%s, 'UTF8'))",
            (topic,)).fetchall()


@pytest.mark.parametrize("topic_size", [3_000 + 60, 65_000])
def test_a_topic_too_long_for_any_index_is_dead_lettered_and_other_devices_messages_after_it_are_stored(
    make_database: Callable[[], str], mqtt_url: str, unique_id: Callable[[str], str], topic_size: int,
) -> None:
    url = make_database()
    pilot = register_pilot(url, unique_id("longtopic"))
    poison_topic = _long_topic(pilot.pilot_id, pilot.switch_id, topic_size)
    settings = Settings(database_url=url, mqtt_url=mqtt_url, share_group=unique_id("grp"), worker_id="w1",
                        session_expiry_s=120, batch_linger_ms=5)
    env_topic = topic_for(pilot.pilot_id, pilot.env_id, "status")
    poison = payloads.encode(payloads.status(1))
    worker = ThreadWorker(settings).start()

    publish(mqtt_url, [(poison_topic, poison)])
    publish(mqtt_url, [(env_topic, payloads.encode(payloads.status(seq))) for seq in range(20)])
    wait_until(lambda: count_rows(url, "SELECT count(*) FROM telemetry") == 20, 20,
               what="the other device's messages after the long topic")
    kept = wait_until(lambda: _dead_letters_of_topic(url, poison_topic), 10, what="the dead letter")
    reason, topic, topic_chars, payload = kept[0]
    assert reason == "topic_invalid"
    assert topic.startswith(poison_topic[:1000]) and topic_chars <= 1_025, "a bounded prefix of the topic is kept"
    assert bytes(payload) == poison
    worker.stop()

    # Restarted with the same id on a backlog that holds the same poison again (redelivered by its
    # device) and more good messages: it does not stick, the same dead letter is kept once.
    publish(mqtt_url, [(poison_topic, poison),
                       *[(env_topic, payloads.encode(payloads.status(seq))) for seq in range(20, 40)]])
    worker = ThreadWorker(settings).start()
    wait_until(lambda: count_rows(url, "SELECT count(*) FROM telemetry") == 40, 20, what="the backlog after a restart")
    assert len(_dead_letters_of_topic(url, poison_topic)) == 1
    stats = worker.stop()
    assert stats.database_retries == 0, "a refused row is never taken for a database outage"


def test_a_reception_whose_gateway_id_is_too_long_to_index_is_skipped_and_the_uplink_stored(
    make_database: Callable[[], str], mqtt_url: str, unique_id: Callable[[str], str],
) -> None:
    from devices.codecs import encode_frame
    from devices.kinds import Channel, DeviceKind
    from pilotlab.settings import NetworkServerSource
    from tests.lpwa import messages as m
    from tests.lpwa.conftest import register_lpwa_pilot

    url = make_database()
    lpwa = register_lpwa_pilot(url, unique_id("longgw"))
    eui = lpwa.eui[lpwa.env_id]
    port, data = encode_frame(DeviceKind.ENV_SENSOR, Channel.TELEMETRY, {"temperature_c": 20.5})
    now = datetime.now(UTC)
    worker = ThreadWorker(Settings(
        database_url=url, mqtt_url=mqtt_url, share_group=unique_id("grp"), worker_id="w1", session_expiry_s=120,
        batch_linger_ms=5, lpwa_sources=[NetworkServerSource(name="cs", network_server="chirpstack",
                                                             topics=(f"application/{lpwa.app}/device/+/event/+",))],
    )).start()
    topic = m.chirpstack_topic(lpwa.app, eui)
    publish(mqtt_url, [
        (topic, m.chirpstack_up(lpwa.app, eui, 1, port, data, (now - timedelta(seconds=30)).isoformat(),
                                gateways=[("gw-ok", -90, 1.0), (secrets.token_hex(1600), -91, 2.0)])),
        (topic, m.chirpstack_up(lpwa.app, eui, 2, port, data, (now - timedelta(seconds=20)).isoformat())),
    ])
    wait_until(lambda: count_rows(url, "SELECT count(*) FROM telemetry WHERE device_id = %s", (lpwa.env_id,)) == 2,
               20, what="both uplinks")
    assert count_rows(url, "SELECT count(*) FROM uplink_reception WHERE fcnt = 1 AND gateway_id = 'gw-ok'") == 1
    stats = worker.stop()
    assert stats.database_retries == 0


DEFERRED_RECALL = """
CREATE FUNCTION refuse_recalled_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.firmware = '6.6.6' THEN
        RAISE EXCEPTION 'firmware % is recalled', NEW.firmware;
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER refuse_recalled_at_commit AFTER INSERT ON telemetry
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_recalled_at_commit();
"""


def test_a_refusal_at_commit_is_isolated_to_its_message_and_the_rest_of_the_batch_stored(
    make_database: Callable[[], str], mqtt_url: str, unique_id: Callable[[str], str],
) -> None:
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(DEFERRED_RECALL)
    pilot = register_pilot(url, unique_id("atcommit"))
    topic = topic_for(pilot.pilot_id, pilot.env_id, "status")
    messages: list[tuple[str, bytes | str]] = [
        (topic, payloads.encode(payloads.status(seq, firmware="6.6.6" if seq == 30 else "1.0.0"))) for seq in range(60)]
    worker = ThreadWorker(Settings(database_url=url, mqtt_url=mqtt_url, share_group=unique_id("grp"),
                                   worker_id="w1", session_expiry_s=120, batch_linger_ms=300)).start()
    publish(mqtt_url, messages)
    wait_until(lambda: count_rows(url, "SELECT count(*) FROM telemetry") == 59, 20, what="the 59 good ones")
    kept = wait_until(lambda: count_rows(url, "SELECT count(*) FROM dead_letter WHERE reason = 'store_rejected' "
                                              "AND detail LIKE '%%recalled%%'"), 10, what="the dead letter")
    assert kept == 1
    stats = worker.stop()
    assert (stats.stored, stats.dead_lettered["store_rejected"], stats.database_retries) == (59, 1, 0)


REFUSE_SOME_DEAD_LETTERS = """
CREATE FUNCTION refuse_dead_letter() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.topic LIKE '%/unkeepable' THEN
        RAISE EXCEPTION 'not keeping %', NEW.topic;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_dead_letter BEFORE INSERT ON dead_letter FOR EACH ROW EXECUTE FUNCTION refuse_dead_letter();
"""


def test_a_dead_letter_the_database_refuses_never_stalls_ingest(
    make_database: Callable[[], str], mqtt_url: str, unique_id: Callable[[str], str],
) -> None:
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(REFUSE_SOME_DEAD_LETTERS)
    pilot = register_pilot(url, unique_id("unkeep"))
    topic = topic_for(pilot.pilot_id, pilot.env_id, "status")
    worker = ThreadWorker(Settings(database_url=url, mqtt_url=mqtt_url, share_group=unique_id("grp"),
                                   worker_id="w1", session_expiry_s=120, batch_linger_ms=300)).start()
    publish(mqtt_url, [(topic, payloads.encode(payloads.status(0))),
                       (f"pilotlab/v1/{pilot.pilot_id}/{pilot.env_id}/unkeepable", b"{}"),
                       (f"pilotlab/v1/{pilot.pilot_id}/{pilot.env_id}/keepable", b"{}"),
                       (topic, payloads.encode(payloads.status(1)))])
    wait_until(lambda: count_rows(url, "SELECT count(*) FROM telemetry") == 2, 20, what="the readings")
    wait_until(lambda: count_rows(url, "SELECT count(*) FROM dead_letter WHERE topic LIKE '%%/keepable'"), 10,
               what="the dead letter that can be kept")
    stats = worker.stop()
    assert stats.database_retries == 0
    # only this test's device: the shared broker may carry other tests' messages to this worker
    assert count_rows(url, "SELECT count(*) FROM dead_letter WHERE topic LIKE %s",
                      (f"pilotlab/v1/{pilot.pilot_id}/%",)) == 1

"""The shipped deploy/mosquitto/mosquitto.conf starts a real mosquitto, the way the compose stack
loads it: unchanged, through include_dir, with a persistence file and only the listener,
persistence location and log destination set by the main file. That is the shipped broker (2.1.2)
with persistence-sqlite.conf, and the distribution's 2.0 with persistence-file.conf: the tuning is
the same for both. Its tuning is in force: a persistent session keeps more QoS 1 messages than
Mosquitto's default max_queued_messages (1000) would, and a packet over its size limit is refused
with the publisher told."""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from pilotlab.embedded.broker import MAX_PACKET_BYTES, PERSIST_PLUGIN, MosquittoInstall, mosquitto_install
from pilotlab.embedded.ports import free_port, wait_until_listening
from tests.deploy.size_probe import Listener, publish_once
from tests.support import wait_until

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "mosquitto.conf"
QUEUED = 1500  # above the default max_queued_messages of 1000


@pytest.fixture(params=["2.1 persist-sqlite", "2.0 file"])
def broker(request: pytest.FixtureRequest) -> MosquittoInstall:
    """The shipped broker, and the distribution's Mosquitto 2.0 from PATH."""
    if request.param == "2.1 persist-sqlite":
        install: MosquittoInstall = request.getfixturevalue("shipped_mosquitto")
        return install
    found = mosquitto_install()
    if found is None or found.version >= (2, 1, 0):
        pytest.skip(f"needs Mosquitto 2.0 on PATH (found: {found or 'none'})")
    return found


def _client(port: int, client_id: str, received: list[bytes] | None = None) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if received is not None:
        client.on_message = lambda c, u, m: received.append(bytes(m.payload))
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 300
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    return client


@contextmanager
def compose_like_mosquitto(tmp_path: Path, broker: MosquittoInstall) -> Iterator[int]:
    """`broker` on the shipped files as the compose stack loads them; yields its port. On exit it
    is stopped and its log checked: no error, the shipped files were loaded."""
    port = free_port()
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    (conf_d / "pilotlab.conf").symlink_to(SHIPPED)  # the file itself, not a copy
    if broker.persist_plugin is None:
        (conf_d / "persistence.conf").symlink_to(SHIPPED.with_name("persistence-file.conf"))
    else:  # the same file, but for where this build keeps the plugin
        lines = SHIPPED.with_name("persistence-sqlite.conf").read_text().splitlines()
        (conf_d / "persistence.conf").write_text("\n".join(
            f"plugin {broker.persist_plugin}" if line.startswith("plugin ") and line.endswith(PERSIST_PLUGIN)
            else line for line in lines) + "\n")
    main = tmp_path / "mosquitto.conf"
    # As the compose main file does, plus `user`: run as ourselves (no privilege drop) so the
    # persistence and log files can go in the test's directory.
    main.write_text(f"listener {port} 127.0.0.1\npersistence_location {tmp_path}/\n"
                    f"log_dest file {tmp_path}/mosquitto.log\nuser {pwd.getpwuid(os.getuid()).pw_name}\n"
                    f"include_dir {conf_d}\n")
    process = subprocess.Popen([str(broker.binary), "-c", str(main)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        wait_until_listening(port, what="mosquitto with the shipped config", process=process)
        yield port
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    log = (tmp_path / "mosquitto.log").read_text()
    assert "Error" not in log and b"Error" not in err, log + err.decode()
    assert b"conf.d/pilotlab.conf" in err and b"conf.d/persistence.conf" in err, "mosquitto loaded the shipped files"


@pytest.mark.mosquitto
def test_the_shipped_config_runs_mosquitto_and_keeps_a_large_qos1_backlog(
        tmp_path: Path, broker: MosquittoInstall) -> None:
    with compose_like_mosquitto(tmp_path, broker) as port:
        received: list[bytes] = []
        subscriber = _client(port, "shipped-conf-sub", received)
        subscriber.subscribe("deploy/test", qos=1)
        time.sleep(0.3)
        subscriber.disconnect()
        subscriber.loop_stop()  # offline: the session queues what follows

        publisher = _client(port, "shipped-conf-pub")
        infos = [publisher.publish("deploy/test", str(i).encode(), qos=1) for i in range(QUEUED)]
        for info in infos:
            info.wait_for_publish(10)
        publisher.disconnect()
        publisher.loop_stop()

        subscriber = _client(port, "shipped-conf-sub", received)
        wait_until(lambda: len(received) >= QUEUED, timeout_s=20, what=f"{QUEUED} queued messages")
        subscriber.disconnect()
        subscriber.loop_stop()
        assert sorted(int(p) for p in received) == list(range(QUEUED))
    store = "mosquitto.sqlite3" if broker.restart_safe else "mosquitto.db"
    assert (tmp_path / store).exists(), "persistence from the shipped file is on"


@pytest.mark.mosquitto
def test_the_shipped_config_disconnects_a_publisher_of_an_oversized_packet_and_passes_the_rest(
        tmp_path: Path, broker: MosquittoInstall) -> None:
    with compose_like_mosquitto(tmp_path, broker) as port:
        listener = Listener(port)
        largest = publish_once(port, b"x" * 16_384)  # ingest's max_payload_bytes, on the longest contract topic
        envelope = publish_once(port, b"x" * 30_000)  # a ChirpStack uplink heard by ~48 gateways
        oversized = publish_once(port, b"x" * MAX_PACKET_BYTES)
        huge = publish_once(port, b"x" * 10_000_000)
        old_client = publish_once(port, b"x" * MAX_PACKET_BYTES, protocol=mqtt.MQTTv311)
        wait_until(lambda: len(listener.sizes) >= 2, timeout_s=5, what="the two accepted messages")
        time.sleep(0.3)  # an oversized message would have arrived with or before these
        listener.close()
    assert largest.accepted and envelope.accepted
    assert largest.max_packet_size == MAX_PACKET_BYTES  # announced in the CONNACK, for clients that check
    assert oversized.acked is None and oversized.disconnected == "Packet too large"
    assert huge.acked is None and huge.disconnected is not None
    assert old_client.acked is None and old_client.disconnected is not None  # 3.1.1: no reason, but no false ack
    assert sorted(listener.sizes) == [16_384, 30_000]

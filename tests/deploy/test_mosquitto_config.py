"""The shipped deploy/mosquitto/mosquitto.conf starts a real mosquitto, the way the compose stack
loads it: unchanged, through include_dir, with only the listener, persistence location and log
destination set by the main file. Its tuning is in force: a persistent session keeps more QoS 1
messages than Mosquitto's default max_queued_messages (1000) would."""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from pilotlab.embedded.ports import free_port, wait_until_listening
from tests.conftest import requires_mosquitto
from tests.support import wait_until

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "mosquitto.conf"
QUEUED = 1500  # above the default max_queued_messages of 1000


def _client(port: int, client_id: str, received: list[bytes] | None = None) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if received is not None:
        client.on_message = lambda c, u, m: received.append(m.payload)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 300
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    return client


@requires_mosquitto
@pytest.mark.mosquitto
def test_the_shipped_config_runs_mosquitto_and_keeps_a_large_qos1_backlog(tmp_path: Path) -> None:
    port = free_port()
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    (conf_d / "pilotlab.conf").symlink_to(SHIPPED)  # the file itself, not a copy
    main = tmp_path / "mosquitto.conf"
    # As the compose main file does, plus `user`: run as ourselves (no privilege drop) so the
    # persistence and log files can go in the test's directory.
    main.write_text(f"listener {port} 127.0.0.1\npersistence_location {tmp_path}/\n"
                    f"log_dest file {tmp_path}/mosquitto.log\nuser {pwd.getpwuid(os.getuid()).pw_name}\n"
                    f"include_dir {conf_d}\n")
    broker = subprocess.Popen(["mosquitto", "-c", str(main)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until_listening(port, what="mosquitto with the shipped config", process=broker)
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
    finally:
        broker.terminate()
        _, err = broker.communicate(timeout=10)
    log = (tmp_path / "mosquitto.log").read_text()
    assert "Error" not in log and b"Error" not in err, log + err.decode()
    assert b"conf.d/pilotlab.conf" in err, "mosquitto loaded the shipped file"
    assert (tmp_path / "mosquitto.db").exists(), "persistence from the shipped file is on"

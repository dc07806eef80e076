"""A private Mosquitto with the dynamic-security plugin and anonymous access off, on a free port,
plus an MQTT client helper that reports what the broker answered.

The broker's config is pilotlab's tuned one as EmbeddedBroker generates it, with the plugin
added and `allow_anonymous false`; the plugin's state file starts as `mosquitto_ctrl dynsec init`
writes it (admin account only) unless the test put a restore file there first."""

from __future__ import annotations

import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import SecretStr

from access import credentials, sync
from access.dynsec import DynsecClient
from ingest.worker import IngestWorker
from pilotlab.embedded.broker import EmbeddedBroker
from pilotlab.settings import MqttEndpoint, Settings

PLUGIN = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")
ADMIN = ("pilotlab-admin", "admin-secret-for-tests")

requires_dynsec = pytest.mark.skipif(
    shutil.which("mosquitto") is None or shutil.which("mosquitto_ctrl") is None or not PLUGIN.is_file(),
    reason=f"needs mosquitto, mosquitto_ctrl and {PLUGIN} (Debian package 'mosquitto')")


class SecureBroker(EmbeddedBroker):
    """EmbeddedBroker with the dynamic-security plugin and no anonymous access."""

    @property
    def state_file(self) -> Path:
        return self.data_dir / "dynamic-security.json"

    @property
    def endpoint(self) -> MqttEndpoint:
        return MqttEndpoint(self.url)

    def admin(self) -> DynsecClient:
        return DynsecClient(self.endpoint, *ADMIN)

    def _mosquitto_args(self) -> list[str]:
        args = super()._mosquitto_args()
        conf = Path(args[-1])
        text = conf.read_text(encoding="utf-8").replace("\nallow_anonymous true", "\nallow_anonymous false")
        conf.write_text(text + f"plugin {PLUGIN}\nplugin_opt_config_file {self.state_file}\n", encoding="utf-8")
        if not self.state_file.exists():
            subprocess.run(["mosquitto_ctrl", "dynsec", "init", str(self.state_file), *ADMIN],
                           check=True, capture_output=True)
        return args


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[SecureBroker]:
    broker = SecureBroker(tmp_path / "secure-broker", prefer="mosquitto")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def synced(secure_broker: SecureBroker, database_url: str) -> Callable[..., sync.SyncReport]:
    """synced({username: secret, ...}): run a sync of the registry against the test's broker."""

    def run(secrets: dict[str, str] | None = None) -> sync.SyncReport:
        with psycopg.connect(database_url, autocommit=True) as conn, secure_broker.admin() as dynsec:
            return sync.sync(conn, dynsec, secrets)

    return run


class Peer:
    """One MQTT v5 client: its CONNACK, SUBACKs and PUBACKs, and the messages it received.

    Its client id is `client_id`, else its username (the broker binds every pilotlab account to
    its username as client id), else a random one."""

    def __init__(self, endpoint: MqttEndpoint, username: str | None, password: str | None,
                 client_id: str | None = None, *, clean_start: bool = True) -> None:
        self.client_id = client_id or username or f"peer-{uuid.uuid4().hex[:8]}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        self.client.reconnect_delay_set(1, 1)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.connack: ReasonCode | None = None
        self.session_present = False
        self.received: list[tuple[str, bytes]] = []
        self._connected = threading.Event()
        self._acks: dict[int, ReasonCode] = {}
        self._ack = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_ack
        self.client.on_subscribe = self._on_suback
        self.client.on_message = lambda c, u, m: self.received.append((m.topic, bytes(m.payload)))
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 0 if clean_start else 300
        self.client.connect(endpoint.host, endpoint.port, clean_start=clean_start, properties=properties)
        self.client.loop_start()
        self._connected.wait(5)

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        """Publish at QoS 1 and return the PUBACK's reason code."""
        mid = self.client.publish(topic, payload, qos=1).mid
        return self._wait(mid)

    def subscribe(self, topic: str) -> ReasonCode:
        _, mid = self.client.subscribe(topic, qos=1)
        assert mid is not None
        return self._wait(mid)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _wait(self, mid: int) -> ReasonCode:
        with self._ack:
            assert self._ack.wait_for(lambda: mid in self._acks, 5), "no acknowledgement within 5 s"
            return self._acks.pop(mid)

    def _on_connect(self, c: mqtt.Client, u: object, f: mqtt.ConnectFlags, reason: ReasonCode,
                    p: Properties | None) -> None:
        if self.connack is None:  # the first answer (paho keeps retrying a refused connect)
            self.connack = reason
            self.session_present = f.session_present
        self._connected.set()

    def _on_ack(self, c: mqtt.Client, u: object, mid: int, reason: ReasonCode, p: Properties) -> None:
        with self._ack:
            self._acks[mid] = reason
            self._ack.notify_all()

    def _on_suback(self, c: mqtt.Client, u: object, mid: int, reasons: list[ReasonCode], p: Properties) -> None:
        self._on_ack(c, u, mid, reasons[0], p)


@pytest.fixture
def peer(secure_broker: SecureBroker) -> Iterator[Callable[..., Peer]]:
    opened: list[Peer] = []

    def connect(username: str | None = None, password: str | None = None, client_id: str | None = None,
                *, clean_start: bool = True) -> Peer:
        client = Peer(secure_broker.endpoint, username, password, client_id, clean_start=clean_start)
        opened.append(client)
        return client

    yield connect
    for client in opened:
        client.close()


@pytest.fixture
def ingest(secure_broker: SecureBroker, database_url: str, db: psycopg.Connection,
           unique_id: Callable[[str], str]) -> Iterator[IngestWorker]:
    """A real ingest worker on the secure broker, with its worker account (username = client id)."""
    settings = Settings(database_url=database_url, mqtt_url=secure_broker.url, share_group=unique_id("pilotlab-g"),
                        session_expiry_s=60, batch_linger_ms=5)
    [account] = credentials.issue_worker(db, settings)
    with secure_broker.admin() as dynsec:
        sync.sync(db, dynsec, {account.account.username: account.secret})
    worker = IngestWorker(settings.model_copy(update={"mqtt_username": account.account.username,
                                                      "mqtt_password": SecretStr(account.secret)}))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    assert worker.ready.wait(15), "ingest worker did not subscribe on the secure broker"
    yield worker
    stop.set()
    thread.join(15)

"""Broker identities: every account pilotlab manages may connect only with its own client id.

The attack these tests reproduce: ingest workers' client ids are predictable
(`<share group>-<worker id>`), and on Mosquitto a client id owns a worker's share of the shared
subscription. A firm's device account that connects with a worker's client id would kick the worker
off, or resume its session and take another firm's queued readings. Against a real Mosquitto with
the dynamic-security plugin and real ingest workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import orjson
import psycopg
import pytest
from pydantic import SecretStr

from access import credentials, sync
from access.credentials import AccountKind
from ingest.worker import IngestWorker
from pilotlab.errors import Conflict
from pilotlab.settings import NetworkServerSource, Settings
from tests.access.conftest import Peer, SecureBroker, requires_dynsec
from tests.support import RegisteredPilot, count_rows, register_pilot, wait_until

pytestmark = [requires_dynsec, pytest.mark.mosquitto]


def reading(seq: int) -> bytes:
    return orjson.dumps({"ts": datetime.now(UTC).isoformat(), "seq": seq, "temperature_c": 21.5})


@pytest.fixture
def pilot(database_url: str, unique_id: Callable[[str], str]) -> RegisteredPilot:
    return register_pilot(database_url, unique_id("cid"))


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


class RunningWorker:
    """A real ingest worker in a thread; `stop()` leaves its broker session (and queue) in place."""

    def __init__(self, settings: Settings) -> None:
        self.worker = IngestWorker(settings)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.worker.run, args=(self._stop,), daemon=True)
        self._thread.start()
        assert self.worker.ready.wait(15), "ingest worker did not subscribe on the secure broker"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)


@pytest.fixture
def worker_settings(secure_broker: SecureBroker, database_url: str, db: psycopg.Connection,
                    unique_id: Callable[[str], str]) -> Settings:
    """Settings of worker 1 of a share group of its own, with the worker's broker account issued
    and synced (as `pilotlab broker worker-account` does)."""
    settings = Settings(database_url=database_url, mqtt_url=secure_broker.url, share_group=unique_id("pilotlab-g"),
                        worker_id="1", session_expiry_s=300, batch_linger_ms=5)
    issued = credentials.issue_worker(db, settings)
    assert [i.account.username for i in issued] == [settings.ingest_client_id]
    with secure_broker.admin() as dynsec:
        sync.sync(db, dynsec, {i.account.username: i.secret for i in issued})
    return settings.model_copy(update={"mqtt_username": settings.ingest_client_id, "mqtt_password": SecretStr(issued[0].secret)})


@pytest.fixture
def running(worker_settings: Settings) -> Iterator[Callable[[], RunningWorker]]:
    started: list[RunningWorker] = []

    def start() -> RunningWorker:
        started.append(RunningWorker(worker_settings))
        return started[-1]

    yield start
    for worker in started:
        worker.stop()


def stored(database_url: str, device_id: str) -> int:
    return count_rows(database_url, "SELECT count(*) FROM telemetry WHERE device_id = %s", (device_id,))


def device_account(db: psycopg.Connection, synced: Callable[..., sync.SyncReport], device_id: str) -> str:
    secret = credentials.issue(db, "device", device_id).secret
    synced({device_id: secret})
    return secret


def test_a_device_cannot_take_over_an_online_workers_client_id(
        peer: Callable[..., Peer], synced: Callable[..., sync.SyncReport], db: psycopg.Connection,
        database_url: str, pilot: RegisteredPilot, worker_settings: Settings,
        running: Callable[[], RunningWorker]) -> None:
    worker = running()
    secret = device_account(db, synced, pilot.env_id)
    intruder = peer(pilot.env_id, secret, worker_settings.ingest_client_id)
    assert intruder.connack is not None and intruder.connack.getName() == "Not authorized"
    time.sleep(1.5)  # paho retries the refused connect every second: none of them may get through
    assert not intruder.client.is_connected()
    assert worker.worker.source.connections == 1, "the worker was kicked off its session"
    # the worker is still consuming: a reading published now is stored
    device = peer(pilot.env_id, secret)
    assert device.accepted
    assert not device.publish(f"pilotlab/v1/{pilot.pilot_id}/{pilot.env_id}/telemetry", reading(1)).is_failure
    wait_until(lambda: stored(database_url, pilot.env_id) == 1, 10, what="the reading, stored by the worker")


def test_a_device_cannot_resume_an_offline_workers_session_and_the_worker_gets_its_messages(
        peer: Callable[..., Peer], synced: Callable[..., sync.SyncReport], db: psycopg.Connection,
        database_url: str, pilot: RegisteredPilot, worker_settings: Settings,
        running: Callable[[], RunningWorker]) -> None:
    running().stop()  # the worker's session stays on the broker, subscribed, queueing its share
    secret = device_account(db, synced, pilot.env_id)
    device = peer(pilot.env_id, secret)
    for seq in range(1, 21):
        assert not device.publish(f"pilotlab/v1/{pilot.pilot_id}/{pilot.env_id}/telemetry", reading(seq)).is_failure
    intruder = peer(pilot.env_id, secret, worker_settings.ingest_client_id, clean_start=False)
    assert not intruder.accepted and not intruder.session_present
    time.sleep(1.5)
    assert intruder.received == []
    intruder.close()

    running()  # the worker returns: its session kept every queued reading
    wait_until(lambda: stored(database_url, pilot.env_id) == 20, 15, what="the 20 queued readings")


def test_devices_gateways_and_workers_connect_only_with_their_own_client_ids(
        peer: Callable[..., Peer], synced: Callable[..., sync.SyncReport], db: psycopg.Connection,
        pilot: RegisteredPilot, worker_settings: Settings, unique_id: Callable[[str], str]) -> None:
    gateway_id = unique_id("gw")
    db.execute("INSERT INTO gateway (id, pilot_id, protocol) VALUES (%s, %s, 'wifi')", (gateway_id, pilot.pilot_id))
    db.execute("UPDATE device SET gateway_id = %s WHERE id = %s", (gateway_id, pilot.switch_id))
    accounts: list[tuple[AccountKind, str]] = [("device", pilot.env_id), ("device", pilot.tracker_id),
                                               ("gateway", gateway_id)]
    secrets = {name: credentials.issue(db, kind, name).secret for kind, name in accounts}
    synced(secrets)
    assert worker_settings.mqtt_password is not None
    worker = (worker_settings.ingest_client_id, worker_settings.mqtt_password.get_secret_value())

    assert peer(pilot.env_id, secrets[pilot.env_id]).accepted
    assert not peer(pilot.env_id, secrets[pilot.env_id], pilot.tracker_id).accepted  # another device's id
    assert not peer(pilot.env_id, secrets[pilot.env_id], gateway_id).accepted
    assert not peer(pilot.env_id, secrets[pilot.env_id], f"{pilot.env_id}-2").accepted
    assert not peer(gateway_id, secrets[gateway_id], pilot.switch_id).accepted  # not even its own device's id
    assert not peer(gateway_id, secrets[gateway_id], worker[0]).accepted
    assert not peer(worker[0], worker[1], f"{worker[0]}-other").accepted  # a worker only as itself
    assert peer(gateway_id, secrets[gateway_id]).accepted
    assert peer(*worker).accepted


def test_every_account_the_sync_manages_is_bound_and_unbound_accounts_are_reported(
        secure_broker: SecureBroker, synced: Callable[..., sync.SyncReport], db: psycopg.Connection,
        pilot: RegisteredPilot, worker_settings: Settings) -> None:
    synced({pilot.env_id: credentials.issue(db, "device", pilot.env_id).secret})
    with secure_broker.admin() as dynsec:  # an account made by hand, outside pilotlab
        dynsec.one({"command": "createClient", "username": "hand-made", "password": "x" * 20})
        clients = {c["username"]: c for c in dynsec.list_clients()}
    managed = {u: c for u, c in clients.items() if c.get("textname") == "pilotlab"}
    assert {pilot.env_id, worker_settings.ingest_client_id} <= set(managed)
    assert all(c.get("clientid") == u for u, c in managed.items()), managed
    report = synced()
    assert report.unbound == ["hand-made"]  # the admin is the only other account free to pick a client id
    assert report.changes == 0


def test_a_sync_binds_accounts_an_older_pilotlab_created_without_a_client_id(
        secure_broker: SecureBroker, peer: Callable[..., Peer], synced: Callable[..., sync.SyncReport],
        db: psycopg.Connection, pilot: RegisteredPilot) -> None:
    secret = credentials.issue(db, "device", pilot.env_id).secret
    synced({pilot.env_id: secret})
    with secure_broker.admin() as dynsec:  # as the sync before client ids were bound left it
        dynsec.one({"command": "modifyClient", "username": pilot.env_id, "clientid": ""})
    free = peer(pilot.env_id, secret, "pilotlab-ingest-1")
    assert free.accepted
    assert synced().changed_clients == [pilot.env_id]
    wait_until(lambda: not free.client.is_connected(), 5, what="the device on a foreign client id to be cut off")
    assert not peer(pilot.env_id, secret, "pilotlab-ingest-1").accepted
    assert peer(pilot.env_id, secret).accepted


def test_device_and_gateway_ids_in_the_service_client_id_namespace_get_no_broker_account(
        db: psycopg.Connection, pilot: RegisteredPilot, unique_id: Callable[[str], str]) -> None:
    squatter = unique_id("pilotlab-ingest")  # a worker's client id, registered as a device
    db.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s) "
               "VALUES (%s, %s, 'env_sensor', 'wifi', 60)", (squatter, pilot.pilot_id))
    with pytest.raises(Conflict, match="reserved"):
        credentials.issue(db, "device", squatter)
    assert credentials.find_account(db, squatter) is None


def test_a_workers_network_server_source_on_pilotlabs_broker_logs_in_with_its_own_bound_account(
        secure_broker: SecureBroker, peer: Callable[..., Peer], database_url: str, db: psycopg.Connection,
        unique_id: Callable[[str], str]) -> None:
    settings = Settings(database_url=database_url, mqtt_url=secure_broker.url, share_group=unique_id("pilotlab-g"),
                        worker_id="1", session_expiry_s=300, batch_linger_ms=5,
                        lpwa_sources=[NetworkServerSource(name="cs", network_server="chirpstack")])
    issued = credentials.issue_worker(db, settings)
    usernames = [i.account.username for i in issued]
    assert usernames == [settings.ingest_client_id, f"{settings.ingest_client_id}-cs"]
    with secure_broker.admin() as dynsec:
        sync.sync(db, dynsec, {i.account.username: i.secret for i in issued})
    secret = issued[0].secret  # one secret for the worker's accounts: one PILOTLAB_MQTT_PASSWORD
    worker = RunningWorker(settings.model_copy(update={"mqtt_username": settings.ingest_client_id,
                                                       "mqtt_password": SecretStr(secret)}))
    try:  # ready means both the contract source and the ChirpStack source were granted their subscriptions
        assert worker.worker.lpwa_sources[0].subscribed.is_set()
        assert not peer(settings.ingest_client_id, secret, usernames[1]).accepted  # still bound to its own id
    finally:
        worker.stop()

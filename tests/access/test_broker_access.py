"""Broker access against a real Mosquitto with the dynamic-security plugin, kept in step with the
registry by access.sync, and a real ingest worker connected with its own account."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import orjson
import psycopg
import pytest

from access import credentials, sync
from ingest.worker import IngestWorker
from tests.access.conftest import ADMIN, Peer, SecureBroker, requires_dynsec
from tests.support import RegisteredPilot, count_rows, register_pilot, wait_until

pytestmark = [requires_dynsec, pytest.mark.mosquitto]


def reading(seq: int) -> bytes:
    return orjson.dumps({"ts": datetime.now(UTC).isoformat(), "seq": seq, "temperature_c": 21.5})


@pytest.fixture
def pilot(database_url: str, unique_id: Callable[[str], str]) -> RegisteredPilot:
    return register_pilot(database_url, unique_id("acl"))


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


def stored(database_url: str, device_id: str) -> int:
    return count_rows(database_url, "SELECT count(*) FROM telemetry WHERE device_id = %s", (device_id,))


def dead_letters(database_url: str, device_id: str) -> int:
    return count_rows(database_url, "SELECT count(*) FROM dead_letter WHERE device_id = %s", (device_id,))


def test_an_anonymous_client_cannot_connect(peer: Callable[..., Peer]) -> None:
    client = peer()
    assert not client.accepted and client.connack is not None and client.connack.is_failure


def test_a_wrong_secret_cannot_connect(peer: Callable[..., Peer], synced: Callable[..., sync.SyncReport],
                                       db: psycopg.Connection, pilot: RegisteredPilot) -> None:
    issued = credentials.issue(db, "device", pilot.env_id)
    synced({pilot.env_id: issued.secret})
    assert peer(pilot.env_id, issued.secret).accepted
    assert not peer(pilot.env_id, issued.secret[::-1]).accepted


def test_a_device_cannot_publish_to_another_devices_topic_and_nothing_reaches_ingest(
        peer: Callable[..., Peer], synced: Callable[..., sync.SyncReport], db: psycopg.Connection,
        database_url: str, pilot: RegisteredPilot, ingest: IngestWorker) -> None:
    own = credentials.issue(db, "device", pilot.env_id)
    synced({pilot.env_id: own.secret})
    device = peer(pilot.env_id, own.secret)
    assert device.accepted
    other_pilot = pilot.pilot_id.replace("acl", "other")
    refused = [device.publish(f"pilotlab/v1/{pilot.pilot_id}/{pilot.tracker_id}/telemetry", reading(1)),
               device.publish(f"pilotlab/v1/{other_pilot}/{pilot.env_id}/telemetry", reading(2)),
               device.publish(f"pilotlab/v1/{pilot.pilot_id}/{pilot.env_id}/cmd", b"{}"),
               device.publish("application/x/device/y/event/up", b"{}")]
    assert all(code.is_failure for code in refused), refused  # PUBACK 0x87 Not authorized
    assert not device.publish(f"pilotlab/v1/{pilot.pilot_id}/{pilot.env_id}/telemetry", reading(3)).is_failure
    wait_until(lambda: stored(database_url, pilot.env_id) == 1, 10, what="the device's own reading")
    time.sleep(0.3)  # a refused message would have arrived with or before the accepted one
    assert stored(database_url, pilot.tracker_id) == 0 and dead_letters(database_url, pilot.tracker_id) == 0
    assert dead_letters(database_url, pilot.env_id) == 0
    assert ingest.stats.received == 1  # the refused messages never reached the worker


def test_a_device_subscribes_only_to_its_own_command_topic(
        peer: Callable[..., Peer], synced: Callable[..., sync.SyncReport], db: psycopg.Connection,
        pilot: RegisteredPilot) -> None:
    issued = credentials.issue(db, "device", pilot.env_id)
    synced({pilot.env_id: issued.secret})
    device = peer(pilot.env_id, issued.secret)
    assert not device.subscribe(f"pilotlab/v1/{pilot.pilot_id}/{pilot.env_id}/cmd").is_failure
    for topic in (f"pilotlab/v1/{pilot.pilot_id}/{pilot.tracker_id}/cmd", f"pilotlab/v1/{pilot.pilot_id}/+/telemetry",
                  "pilotlab/v1/#", "#"):
        assert device.subscribe(topic).is_failure, topic


def test_a_revoked_device_cannot_connect_and_is_disconnected(
        peer: Callable[..., Peer], synced: Callable[..., sync.SyncReport], db: psycopg.Connection,
        pilot: RegisteredPilot) -> None:
    issued = credentials.issue(db, "device", pilot.env_id)
    synced({pilot.env_id: issued.secret})
    connected = peer(pilot.env_id, issued.secret)
    assert connected.accepted
    credentials.revoke(db, pilot.env_id, "lost in the field")
    report = synced()
    assert report.deleted_clients == [pilot.env_id]
    wait_until(lambda: not connected.client.is_connected(), 5, what="the revoked device to be disconnected")
    assert not peer(pilot.env_id, issued.secret).accepted


def test_a_rotated_secret_replaces_the_old_one(
        peer: Callable[..., Peer], synced: Callable[..., sync.SyncReport], db: psycopg.Connection,
        pilot: RegisteredPilot) -> None:
    first = credentials.issue(db, "device", pilot.env_id)
    synced({pilot.env_id: first.secret})
    second = credentials.issue(db, "device", pilot.env_id)
    assert synced({pilot.env_id: second.secret}).passwords_set == [pilot.env_id]
    assert not peer(pilot.env_id, first.secret).accepted
    assert peer(pilot.env_id, second.secret).accepted


def test_a_gateway_speaks_for_attached_devices_only(
        peer: Callable[..., Peer], synced: Callable[..., sync.SyncReport], db: psycopg.Connection,
        database_url: str, pilot: RegisteredPilot, unique_id: Callable[[str], str], ingest: IngestWorker) -> None:
    gateway_id = unique_id("gw")
    db.execute("INSERT INTO gateway (id, pilot_id, protocol) VALUES (%s, %s, 'wifi')", (gateway_id, pilot.pilot_id))
    db.execute("UPDATE device SET gateway_id = %s WHERE id = %s", (gateway_id, pilot.env_id))
    issued = credentials.issue(db, "gateway", gateway_id)
    synced({gateway_id: issued.secret})
    gateway = peer(gateway_id, issued.secret)
    assert gateway.accepted
    # another device's topics, not attached to it: refused by the broker, never reaching ingest
    assert gateway.publish(f"pilotlab/v1/{pilot.pilot_id}/{pilot.tracker_id}/telemetry", reading(1)).is_failure
    # its attached device's topic and its own batch topic: accepted
    assert not gateway.publish(f"pilotlab/v1/{pilot.pilot_id}/{pilot.env_id}/telemetry", reading(2)).is_failure
    batch = {"ts": datetime.now(UTC).isoformat(), "seq": 1, "readings": [
        {"device_id": pilot.tracker_id, "ts": datetime.now(UTC).isoformat(), "seq": 5, "fix_type": "none"}]}
    assert not gateway.publish(f"pilotlab/v1/{pilot.pilot_id}/{gateway_id}/batch", orjson.dumps(batch)).is_failure
    wait_until(lambda: stored(database_url, pilot.env_id) == 1, 10, what="the attached device's reading")
    # a batch entry for a device not attached to it is a dead letter, not a reading
    wait_until(lambda: dead_letters(database_url, pilot.tracker_id) == 1, 10, what="the refused batch entry")
    assert stored(database_url, pilot.tracker_id) == 0
    reason = db.execute("SELECT reason FROM dead_letter WHERE device_id = %s", (pilot.tracker_id,)).fetchone()
    assert reason == ("gateway_not_attached",)

    # attaching the device (and a sync) lets the gateway speak for it
    db.execute("UPDATE device SET gateway_id = %s WHERE id = %s", (gateway_id, pilot.tracker_id))
    assert synced().changed_roles == [f"pilotlab-gateway-{gateway_id}"]
    assert not gateway.publish(f"pilotlab/v1/{pilot.pilot_id}/{pilot.tracker_id}/status",
                               orjson.dumps({"ts": datetime.now(UTC).isoformat(), "seq": 6, "state": "online"})
                               ).is_failure


def test_a_second_sync_changes_nothing(synced: Callable[..., sync.SyncReport], db: psycopg.Connection,
                                       pilot: RegisteredPilot) -> None:
    issued = {d: credentials.issue(db, "device", d).secret for d in pilot.device_ids}
    synced(issued)
    again = synced()
    assert again.changes == 0 and not set(pilot.device_ids) & set(again.missing)


def test_resync_after_the_broker_lost_its_state_restores_every_account(
        secure_broker: SecureBroker, peer: Callable[..., Peer], synced: Callable[..., sync.SyncReport],
        db: psycopg.Connection, pilot: RegisteredPilot) -> None:
    issued = {d: credentials.issue(db, "device", d).secret for d in pilot.device_ids}
    synced(issued)
    credentials.revoke(db, pilot.tracker_id, "returned")
    secure_broker.kill()
    secure_broker.state_file.unlink()  # the broker's accounts are gone
    secure_broker.start()  # re-initialised: only the admin account
    lost = synced()
    assert pilot.env_id in lost.missing  # $CONTROL cannot create an account without its secret

    secure_broker.stop()
    restored = sync.write_restore_config(db, secure_broker.state_file, *ADMIN)
    assert restored >= 2
    secure_broker.start()
    after = synced()
    assert after.missing == [] and after.created_clients == []  # every active account, other tests' too
    assert peer(pilot.switch_id, issued[pilot.switch_id]).accepted
    assert not peer(pilot.tracker_id, issued[pilot.tracker_id]).accepted  # revoked stays revoked
    assert not peer(pilot.env_id, issued[pilot.env_id], pilot.switch_id).accepted  # restored bound to its client id
    device = peer(pilot.env_id, issued[pilot.env_id])
    assert device.accepted
    assert device.publish(f"pilotlab/v1/{pilot.pilot_id}/{pilot.switch_id}/telemetry", reading(1)).is_failure


def test_a_gateway_with_hundreds_of_attached_devices_syncs_under_the_brokers_packet_size_limit(
        peer: Callable[..., Peer], synced: Callable[..., sync.SyncReport], db: psycopg.Connection,
        pilot: RegisteredPilot, unique_id: Callable[[str], str]) -> None:
    """Its role has three ACLs per device (~0.1 MiB of JSON for 300): the sync must send it in
    pieces, because the broker's max_packet_size (32 KiB) holds for $CONTROL messages too."""
    gateway_id = unique_id("gw")
    db.execute("INSERT INTO gateway (id, pilot_id, protocol) VALUES (%s, %s, 'wifi')", (gateway_id, pilot.pilot_id))
    db.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, gateway_id) "
               "SELECT %s || '-' || n, %s, 'env_sensor', 'wifi', 60, %s FROM generate_series(1, 300) n",
               (gateway_id, pilot.pilot_id, gateway_id))
    issued = credentials.issue(db, "gateway", gateway_id)
    assert f"pilotlab-gateway-{gateway_id}" in synced({gateway_id: issued.secret}).created_roles
    gateway = peer(gateway_id, issued.secret)
    last = f"pilotlab/v1/{pilot.pilot_id}/{gateway_id}-300/telemetry"
    assert not gateway.publish(last, reading(1)).is_failure

    db.execute("UPDATE device SET gateway_id = NULL WHERE gateway_id = %s AND id <> %s",
               (gateway_id, f"{gateway_id}-1"))  # detach 299 of them
    assert synced().changed_roles == [f"pilotlab-gateway-{gateway_id}"]
    assert gateway.publish(last, reading(2)).is_failure
    assert not gateway.publish(f"pilotlab/v1/{pilot.pilot_id}/{gateway_id}-1/telemetry", reading(3)).is_failure
    assert synced().changes == 0

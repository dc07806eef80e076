"""On a broker with pilotlab's ACLs (a private Mosquitto with the dynamic-security plugin, kept in
step with the registry): a switch takes its own commands and acknowledges them, and no device can
read or acknowledge another's; the API's account sends commands and nothing else."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from access import credentials, sync
from api.app import create_app
from devices.contract import ack_topic, command_topic, topic_for
from ingest.worker import IngestWorker
from pilotlab.settings import Settings
from simulators.commanded_switch import CommandedSwitch, CommandMode
from tests.access.conftest import Peer, SecureBroker, requires_dynsec
from tests.commands.conftest import SwitchPilot, send, settled
from tests.support import admin_headers, wait_until

pytestmark = [requires_dynsec, pytest.mark.mosquitto]


def test_a_switch_takes_and_acknowledges_its_own_commands_and_no_device_reads_or_acknowledges_anothers(
        secure_broker: SecureBroker, synced: Callable[..., sync.SyncReport], peer: Callable[..., Peer],
        db: psycopg.Connection, database_url: str, switches: SwitchPilot, ingest: IngestWorker) -> None:
    pilot, own, other = switches.pilot_id, switches.obeying, switches.ignoring
    secret = {device: credentials.issue(db, "device", device).secret for device in (own, other)}
    api_account = f"api-{pilot}"
    api_secret = credentials.issue(db, "api", api_account).secret
    synced({**secret, api_account: api_secret})
    settings = Settings(database_url=database_url, mqtt_url=secure_broker.url, mqtt_username=api_account,
                        mqtt_password=SecretStr(api_secret))
    with TestClient(create_app(settings), headers=admin_headers(database_url)) as api:
        with CommandedSwitch(secure_broker.endpoint, pilot, own, CommandMode.OBEY, username=own, password=secret[own]):
            done = settled(api, send(api, own, True)["id"])
        assert (done["state"], done["ack_via"]) == ("acknowledged", "ack")

        pending = send(api, own, False, expiry_s=60)  # its switch is away now
        intruder = peer(other, secret[other])
        assert intruder.subscribe(command_topic(pilot, own)).is_failure
        forged = orjson.dumps({"correlation_id": pending["id"], "relay_on": False})
        assert intruder.publish(ack_topic(pilot, own), forged).is_failure  # PUBACK 0x87 Not authorized
        taken = ingest.stats.received
        assert not intruder.publish(ack_topic(pilot, other), forged).is_failure  # its own ack topic: taken ...
        wait_until(lambda: ingest.stats.received > taken, 10, what="the forged ack to be committed")
        assert api.get(f"/commands/{pending['id']}").json()["state"] == "sent"  # ... and it changes nothing

        # the API's account publishes commands and nothing else
        as_api = peer(api_account, api_secret)
        reading = orjson.dumps({"ts": pending["sent_at"], "seq": 1, "relay_on": True})
        assert as_api.publish(topic_for(pilot, own, "telemetry"), reading).is_failure
        assert as_api.publish(ack_topic(pilot, own), forged).is_failure
        assert not as_api.publish(command_topic(pilot, own), b"{}").is_failure

"""Simulated devices lose nothing to a broker that crashes, or to one that has no subscriber for
them yet: every message the fleet published is stored by a real ingest worker, counted in
PostgreSQL. The devices behave as the contract asks of firmware (PUBACK 0x10 "no matching
subscribers" is not success: keep the message and resend it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from pilotlab.embedded.broker import EmbeddedBroker, MosquittoInstall
from pilotlab.settings import MqttEndpoint, Settings
from simulators.fleet import Fleet, FleetReport, load_devices
from simulators.wifi_gateway import WifiGateway, run_gateway
from tests.faults.streams import stored
from tests.ingest.conftest import ThreadWorker
from tests.support import RegisteredPilot, register_pilot, wait_until

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]


def _worker(broker: EmbeddedBroker, database_url: str, group: str) -> ThreadWorker:
    return ThreadWorker(Settings(database_url=database_url, mqtt_url=broker.url, share_group=group, worker_id="w1",
                                 session_expiry_s=120, batch_linger_ms=5)).start()


def _fleet_in_background(broker: EmbeddedBroker, database_url: str, pilot: RegisteredPilot,
                         duration_s: float) -> tuple[Fleet, threading.Thread, list[FleetReport]]:
    devices = load_devices(database_url, pilot.pilot_id)  # reporting every 60 s, at speed 300: 5 per second
    fleet = Fleet(MqttEndpoint(broker.url), devices, speed=300, duration_s=duration_s)
    reports: list[FleetReport] = []
    runner = threading.Thread(target=lambda: reports.append(fleet.run()), daemon=True)
    runner.start()
    return fleet, runner, reports


def test_every_message_a_fleet_published_across_a_broker_crash_is_stored(
        own_broker: Callable, shipped_mosquitto: MosquittoInstall, database_url: str,
        unique_id: Callable[[str], str]) -> None:
    broker: EmbeddedBroker = own_broker("mosquitto", mosquitto=shipped_mosquitto.binary)
    pilot = register_pilot(database_url, unique_id("crash"))
    worker = _worker(broker, database_url, unique_id("grp"))
    fleet, runner, reports = _fleet_in_background(broker, database_url, pilot, duration_s=5.0)
    wait_until(lambda: stored(database_url, pilot) > 0, 10, what="the first readings stored")
    broker.kill()
    time.sleep(1.5)
    published_while_down, acknowledged_while_down = fleet.published, fleet.acknowledged
    broker.start()
    runner.join(30)
    report = reports[0]
    assert published_while_down > acknowledged_while_down, "some messages waited for the broker"
    assert report.published > published_while_down
    assert report.acknowledged == report.published and report.refused == report.dropped == 0
    wait_until(lambda: stored(database_url, pilot) == report.published, 30, what="every published message stored")
    worker.stop()


def test_messages_answered_no_matching_subscribers_are_resent_and_stored_once_ingest_subscribes(
        own_broker: Callable, database_url: str, unique_id: Callable[[str], str]) -> None:
    """Any Mosquitto answers 0x10 while no ingest worker is subscribed (a fresh stack, or 2.0 after
    a restart): the fleet and a Wi-Fi gateway keep those messages and resend them."""
    broker: EmbeddedBroker = own_broker("mosquitto")
    pilot = register_pilot(database_url, unique_id("nosub"))
    fleet, runner, reports = _fleet_in_background(broker, database_url, pilot, duration_s=4.0)
    gateway_stop = threading.Event()
    gateway = WifiGateway(unique_id("gw"), pilot.pilot_id, [], status_every=1)
    gateway_acks: list[object] = []
    gateway_thread = threading.Thread(target=lambda: gateway_acks.append(
        run_gateway(MqttEndpoint(broker.url), gateway, 0.5, gateway_stop)), daemon=True)
    gateway_thread.start()
    wait_until(lambda: fleet.published >= 6 and fleet.acks.resent > 0, 10, what="messages nobody took, resent")
    assert fleet.acknowledged == 0, "with no subscriber, nothing counts as delivered"
    worker = _worker(broker, database_url, unique_id("grp"))
    runner.join(30)
    gateway_stop.set()
    gateway_thread.join(10)
    report = reports[0]
    assert report.resent > 0 and report.acknowledged == report.published
    wait_until(lambda: stored(database_url, pilot) == report.published, 30, what="every published message stored")
    gateway_report = gateway_acks[0]
    assert gateway_report.resent > 0 and gateway_report.acknowledged >= 1  # type: ignore[attr-defined]
    worker.stop()

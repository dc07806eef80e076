"""With an account, every simulator connects with the account's username as client id: the
broker binds each pilotlab account to it and refuses any other id (README, Access control)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.device import synthetic_devices
from simulators.fleet import Fleet
from simulators.lpwa import RadioConditions, lpwa_devices, run_lpwa
from simulators.wifi_gateway import WifiGateway, run_gateway
from tests.access.conftest import SecureBroker, requires_dynsec

pytestmark = [pytest.mark.mosquitto, requires_dynsec]

SECRET = "simulator-secret-0123456789"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[SecureBroker]:
    server = SecureBroker(tmp_path / "broker", prefer="mosquitto")
    server.start()
    with server.admin() as dynsec:
        for username in ("gw-sim-1", "ns-sim-1", "fleet-sim-1"):
            dynsec.one({"command": "createClient", "username": username, "password": SECRET, "clientid": username})
    yield server
    server.stop()


def test_the_wifi_gateway_simulator_connects_as_its_account(broker: SecureBroker) -> None:
    stopped = threading.Event()
    stopped.set()  # connect, publish nothing, disconnect: a refused connection raises ServiceUnavailable
    gateway = WifiGateway("gw-sim-1", "pilot-x", [])
    acks = run_gateway(broker.endpoint, gateway, 1.0, stopped, username="gw-sim-1", password=SECRET)
    assert acks.refused == 0


def test_the_lpwa_simulator_connects_as_its_network_server_account(broker: SecureBroker) -> None:
    stopped = threading.Event()
    stopped.set()
    devices = lpwa_devices(synthetic_devices("pilot-x", 2, reporting_interval_s=60),
                           {"pilot-x-sim-1": "0000000000000001", "pilot-x-sim-2": "0000000000000002"}, "app-1")
    stream = run_lpwa(broker.endpoint, devices, RadioConditions(), stop=stopped, username="ns-sim-1", password=SECRET)
    assert stream.sent == {}


def test_the_fleet_connects_as_its_account(broker: SecureBroker) -> None:
    fleet = Fleet(broker.endpoint, synthetic_devices("pilot-x", 1, reporting_interval_s=60), duration_s=0.1,
                  username="fleet-sim-1", password=SECRET)
    assert fleet.client_id == "fleet-sim-1"
    report = fleet.run()  # connected; the account has no ACL here, so its messages are refused, not resent
    assert report.published >= 1 and report.refused == report.published and report.resent == 0

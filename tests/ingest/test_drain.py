"""Draining a worker for scale-down (`--drain`) empties and ends every session it has, the LPWA
sources' as well as the contract's, and finishes while devices keep publishing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from devices.codecs import encode_frame
from devices.kinds import Channel, DeviceKind
from ingest.worker import IngestWorker
from pilotlab.settings import MqttEndpoint, NetworkServerSource, Settings
from simulators.burst import publish_burst
from tests.conftest import requires_mosquitto
from tests.ingest.conftest import ThreadWorker
from tests.lpwa import messages as m
from tests.lpwa.conftest import LpwaPilot, register_lpwa_pilot
from tests.support import count_rows, wait_until

pytestmark = pytest.mark.slow


def _uplinks(lpwa: LpwaPilot, fcnts: range) -> list[tuple[str, bytes]]:
    eui = lpwa.eui[lpwa.env_id]
    port, data = encode_frame(DeviceKind.ENV_SENSOR, Channel.TELEMETRY, {"temperature_c": 20.5})
    start = datetime.now(UTC) - timedelta(hours=1)
    return [(m.chirpstack_topic(lpwa.app, eui), m.chirpstack_up(lpwa.app, eui, n, port, data,
                                                                 (start + timedelta(seconds=n)).isoformat()))
            for n in fcnts]


def _stored_fcnts(url: str, lpwa: LpwaPilot) -> int:
    return count_rows(url, "SELECT count(DISTINCT seq) FROM telemetry WHERE device_id = %s", (lpwa.env_id,))


class _Traffic(threading.Thread):
    """ChirpStack keeps publishing uplinks, a few a second, until told to stop."""

    def __init__(self, url: str, uplinks: list[tuple[str, bytes]]) -> None:
        super().__init__(daemon=True)
        self.url, self.uplinks, self.sent, self.halt = url, uplinks, 0, threading.Event()

    def run(self) -> None:
        for uplink in self.uplinks:
            if self.halt.wait(0.05):
                return
            self.sent += publish_burst(MqttEndpoint(self.url), [uplink])


@requires_mosquitto
def test_draining_ends_the_lpwa_sessions_too_stores_their_share_and_finishes_under_live_traffic(
    own_broker: Callable, database_url: str, unique_id: Callable[[str], str],
) -> None:
    broker = own_broker("mosquitto")
    lpwa = register_lpwa_pilot(database_url, unique_id("drain"))

    def settings(worker_id: str) -> Settings:
        return Settings(database_url=database_url, mqtt_url=broker.url, share_group=f"grp-{lpwa.app}",
                        worker_id=worker_id, session_expiry_s=300, batch_linger_ms=5,
                        lpwa_sources=[NetworkServerSource(name="cs", network_server="chirpstack",
                                                          topics=(f"application/{lpwa.app}/device/+/event/+",))])

    staying = ThreadWorker(settings("staying")).start()
    ThreadWorker(settings("leaving")).start().stop()  # gone: its sessions keep receiving its share
    first = _uplinks(lpwa, range(0, 40))
    assert publish_burst(MqttEndpoint(broker.url), first) == len(first)
    wait_until(lambda: staying.stats.stored > 0, 15, what="the staying worker's share")
    time.sleep(0.5)
    assert _stored_fcnts(database_url, lpwa) < len(first), "the leaving worker's share waits in its session"

    traffic = _Traffic(broker.url, _uplinks(lpwa, range(1000, 4000)))
    traffic.start()
    done = threading.Event()
    drained = IngestWorker(settings("leaving"))
    threading.Thread(target=lambda: (drained.run(threading.Event(), drain=True), done.set()), daemon=True).start()
    assert done.wait(30), "the drain finishes although the network server keeps publishing"
    traffic.halt.set()
    traffic.join(10)

    # Every session of the drained worker is gone: all that comes next is the staying worker's.
    last = _uplinks(lpwa, range(5000, 5040))
    assert publish_burst(MqttEndpoint(broker.url), last) == len(last)
    expected = len(first) + traffic.sent + len(last)
    wait_until(lambda: _stored_fcnts(database_url, lpwa) == expected, 30, what="every uplink stored")
    assert drained.stats.stored > 0, "the drained worker stored what its ChirpStack session held"
    staying.stop()

"""The LPWA simulator's lossy, duplicated, delayed, rejoining stream through a real worker: the
loss pilotlab counts from frame counters equals what the simulator really dropped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg

from devices.kinds import DeviceKind
from simulators.device import SimulatedDevice
from simulators.lpwa import LpwaStream, RadioConditions, knowable_loss, lpwa_devices
from simulators.wifi_gateway import WifiGateway
from tests.lpwa.conftest import LpwaPilot
from tests.support import publish, wait_until


def test_counted_loss_equals_the_simulated_loss(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,
) -> None:
    sims = [SimulatedDevice(lpwa.env_id, lpwa.pilot_id, DeviceKind.ENV_SENSOR, 60),
            SimulatedDevice(lpwa.switch_id, lpwa.pilot_id, DeviceKind.SMART_SWITCH, 60)]
    devices = lpwa_devices(sims, lpwa.eui, lpwa.app)  # one on ChirpStack, one on TTS
    stream = LpwaStream(devices, RadioConditions(loss=0.2, gateways=3, duplicates=0.3, max_delay_s=300,
                                                 rejoin_every=25), seed=7)
    start = datetime.now(UTC) - timedelta(hours=2)
    events = [e for tick in range(60) for d in devices for e in stream.tick(d, start + timedelta(minutes=tick))]
    events.sort(key=lambda e: e[2])  # delivery order, not send order
    lpwa_worker()
    publish(mqtt_url, [(topic, body) for topic, body, _ in events if topic.startswith("application/")])
    publish(mqtt_url, [(topic, body) for topic, body, _ in events if topic.startswith("v3/")], qos=0)

    def counted() -> dict[str, tuple[int, int]]:
        with psycopg.connect(database_url) as conn:
            rows = conn.execute("SELECT device_id, sum(received), sum(lost) FROM uplink_loss_hourly "
                                "WHERE device_id = ANY(%s) GROUP BY device_id", ([d.id for d in sims],)).fetchall()
        return {d: (int(r), int(lost)) for d, r, lost in rows}

    # A counter shows a loss once a later frame of the same session arrives (knowable_loss).
    truth = {d.id: (stream.sent[d.id] - stream.lost.get(d.id, 0), knowable_loss(stream.frames[d.id])) for d in sims}
    assert all(lost > 0 for _, lost in truth.values())
    wanted = sum(r for r, _ in truth.values())
    wait_until(lambda: sum(r for r, _ in counted().values()) >= wanted, 20, what="every frame heard")
    assert counted() == truth


def test_the_wifi_gateway_simulator_batches_its_devices() -> None:
    devices = [SimulatedDevice(f"sw-{i}", "p", DeviceKind.SMART_SWITCH, 60) for i in range(3)]
    gateway = WifiGateway("gw-1", "p", devices, status_every=2)
    now = datetime.now(UTC)
    first = gateway.tick(now)
    second = gateway.tick(now + timedelta(minutes=1))
    assert [t for t, _ in first] == ["pilotlab/v1/p/gw-1/batch", "pilotlab/v1/p/gw-1/gateway_status"]
    assert [t for t, _ in second] == ["pilotlab/v1/p/gw-1/batch"]
    import orjson
    batch = orjson.loads(first[0][1])
    assert {r["device_id"] for r in batch["readings"]} == {"sw-0", "sw-1", "sw-2"}

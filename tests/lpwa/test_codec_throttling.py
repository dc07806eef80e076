"""A slow vendor JavaScript codec cannot eat a worker: each codec has a CPU budget per second, and
past it its frames are dead letters `codec_throttled` at once, while other devices' readings keep
flowing; the codec works again once its budget has refilled."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg

from devices.codecs.javascript import JsCodecLimits
from devices.profiles import ProfileDefinition
from pilotlab.settings import MqttEndpoint
from store import profiles
from tests.codecs.busy_codec import busy_codec
from tests.lpwa import messages as m
from tests.lpwa.conftest import LpwaPilot
from tests.support import count_rows, publish, wait_until

EM300_TH = (Path(__file__).parents[1] / "codecs" / "vendor_codecs" / "milesight-em300-th.js").read_text()
EM300_TH_UPLINK = bytes([0x01, 0x75, 0x32, 0x03, 0x67, 0xC8, 0x00, 0x04, 0x68, 0x3C])
RATE = 50           # msg/s per device
SECONDS = 4


def _use_js_profile(database_url: str, device_id: str, port: int, script: str, mapping: list[dict[str, str]]) -> None:
    definition = ProfileDefinition.model_validate({
        "vendor": "Test", "model": f"model-{secrets.token_hex(3)}", "firmware_version": "1.0", "kind": "env_sensor",
        "reporting_interval_s": 600, "measurements": [item["to"] for item in mapping],
        "uplinks": {str(port): {"codec": {"type": "javascript", "script": script}, "mapping": mapping}}})
    with psycopg.connect(database_url) as conn:
        profile_id = f"{device_id}-profile"
        profiles.create(conn, profile_id, None, definition)
        profiles.assign(conn, device_id, profile_id)


def _normal_device(database_url: str, lpwa: LpwaPilot) -> str:
    device_id, eui = f"{lpwa.app}-em300", secrets.token_hex(8)
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, dev_eui, "
                     "commissioned_at) VALUES (%s, %s, 'env_sensor', 'lpwa', 600, %s, now() - interval '1 day')",
                     (device_id, lpwa.pilot_id, eui))
    lpwa.eui[device_id] = eui
    return device_id


def _paced(mqtt_url: str, streams: list[list[tuple[str, bytes]]], rate: float) -> None:
    """Message n of every stream at n / rate seconds from now, at QoS 1, all acknowledged."""
    endpoint = MqttEndpoint(mqtt_url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(0)
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    started = time.perf_counter()
    infos = []
    for n, frames in enumerate(zip(*streams, strict=True)):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        infos += [client.publish(topic, body, qos=1) for topic, body in frames]
    for info in infos:
        info.wait_for_publish(30)
    client.disconnect()
    client.loop_stop()


def _stored(database_url: str, device_id: str) -> int:
    return count_rows(database_url, "SELECT count(*) FROM telemetry WHERE device_id = %s", (device_id,))


def _dead(database_url: str, topic: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        found = conn.execute("SELECT reason, count(*) FROM dead_letter WHERE topic = %s GROUP BY reason", (topic,))
        return {reason: count for reason, count in found.fetchall()}


def test_a_slow_codec_past_its_cpu_budget_is_throttled_while_another_devices_readings_keep_flowing(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,
) -> None:
    slow_id, normal_id = lpwa.env_id, _normal_device(database_url, lpwa)
    _use_js_profile(database_url, slow_id, 7, busy_codec(), [{"from": "t", "to": "temperature_c"}])  # 90 ms a frame
    _use_js_profile(database_url, normal_id, 1, EM300_TH, [{"from": "temperature", "to": "temperature_c"}])
    slow_topic, normal_topic = (m.chirpstack_topic(lpwa.app, lpwa.eui[d]) for d in (slow_id, normal_id))
    # a per-call limit well above the slow codec's 90 ms: the time limit runs on the process's CPU
    # clock, which this test's other threads advance too; only the budget is under test here
    lpwa_worker(js_codec_time_limit_ms=300)
    total = RATE * SECONDS
    start = datetime.now(UTC) - timedelta(minutes=10)

    def stream(topic: str, eui: str, port: int, data: bytes) -> list[tuple[str, bytes]]:
        return [(topic, m.chirpstack_up(lpwa.app, eui, fcnt, port, data, (start + timedelta(seconds=fcnt)).isoformat()))
                for fcnt in range(1, total + 1)]

    normal_midway: list[int] = []  # three quarters through: 150 normal frames published
    sampler = threading.Timer(SECONDS * 3 / 4, lambda: normal_midway.append(_stored(database_url, normal_id)))
    sampler.start()
    _paced(mqtt_url, [stream(slow_topic, lpwa.eui[slow_id], 7, bytes([90, 21])),
                      stream(normal_topic, lpwa.eui[normal_id], 1, EM300_TH_UPLINK)], RATE)
    published_at = time.monotonic()
    sampler.join()

    # the normal device's readings flowed during the run (with no budget, fewer than 10 were stored
    # by then, behind the slow codec) and all are stored promptly after it
    assert normal_midway[0] >= total / 4, f"only {normal_midway[0]} normal readings stored midway"
    wait_until(lambda: _stored(database_url, normal_id) == total or None, 10, what="every normal reading")
    assert time.monotonic() - published_at < 3
    # the slow codec ran within its budget (bursting first) and its excess was refused at once
    budget = JsCodecLimits().cpu_budget_ms_per_s / 1000
    wait_until(lambda: _stored(database_url, slow_id) + sum(_dead(database_url, slow_topic).values()) == total or None,
               10, what="every slow frame stored or dead-lettered")
    stored_slow, dead = _stored(database_url, slow_id), _dead(database_url, slow_topic)
    assert set(dead) == {"codec_throttled"}
    paid_for = (max(budget, 2 * 0.3) + budget * SECONDS) / 0.09  # a full bucket, then its refill over the run
    assert paid_for / 2 <= stored_slow <= paid_for * 1.5, (stored_slow, paid_for)
    with psycopg.connect(database_url) as conn:
        found = conn.execute("SELECT detail FROM dead_letter WHERE topic = %s LIMIT 1", (slow_topic,)).fetchone()
    assert found is not None
    detail = found[0]
    assert "fPort 7" in detail and "CPU budget" in detail and f"{budget * 1000:g} ms" in detail

    # once its budget has refilled, the slow codec's next frame is read again
    time.sleep(1.5)
    publish(mqtt_url, [(slow_topic, m.chirpstack_up(lpwa.app, lpwa.eui[slow_id], total + 1, 7, bytes([90, 22]),
                                                    (start + timedelta(seconds=total + 1)).isoformat()))])
    wait_until(lambda: count_rows(database_url, "SELECT count(*) FROM telemetry WHERE device_id = %s AND seq = %s",
                                  (slow_id, total + 1)) or None, 10, what="the slow codec's frame after the pause")

"""Payload types are taken as written, never coerced: a firmware that sends `"seq": true`,
`"relay_on": "yes"` or `"power_w": "21.5"` is told so on its first message (`invalid_payload`, with
the field and the expected type), and a JSON object that names a key twice is refused, whichever
value would have won. The same holds for Wi-Fi gateway batches and network-server envelopes.

One worker, one publish of every case (through the real broker and database); each test then reads
its own outcome."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import psycopg
import pytest

from devices.codecs import encode_frame
from devices.contract import topic_for
from devices.kinds import Channel, DeviceKind
from pilotlab.settings import NetworkServerSource, Settings
from tests.ingest import payloads
from tests.ingest.conftest import ThreadWorker
from tests.lpwa import messages as m
from tests.lpwa.conftest import LpwaPilot, register_lpwa_pilot
from tests.support import publish

TS_EXPECTED = "expected an RFC 3339 time with an offset or integer epoch milliseconds"
TRIGGERS = '"heartbeat", "button", "app", "schedule", "remote", "overload", "power_on"'


def _iso(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat(timespec="milliseconds")


def _json(text: str) -> bytes:
    """Hand-written JSON (repeated keys cannot be built from a dict); `{now}` is epoch ms."""
    return text.replace("{now}", str(payloads.now_ms() - 60_000)).encode()


# name -> (device attribute, channel, payload, expected detail)
LOOSE: dict[str, tuple[str, str, dict[str, Any], str]] = {
    "seq_true": ("switch_id", "telemetry", payloads.switch(True), "seq: expected an integer, got true"),
    "seq_with_a_fraction": ("switch_id", "telemetry", payloads.switch(1.5), "seq: expected an integer, got 1.5"),
    "seq_as_text": ("switch_id", "telemetry", payloads.switch("7"), 'seq: expected an integer, got "7"'),
    "relay_on_yes": ("switch_id", "telemetry", payloads.switch(1, relay_on="yes"),
                     'relay_on: expected true or false, got "yes"'),
    "relay_on_one": ("switch_id", "telemetry", payloads.switch(1, relay_on=1), "relay_on: expected true or false, got 1"),
    "power_as_text": ("switch_id", "telemetry", payloads.switch(1, power_w="21.5"),
                      'power_w: expected a number, got "21.5"'),
    "power_true": ("switch_id", "telemetry", payloads.switch(1, power_w=True), "power_w: expected a number, got true"),
    "temperature_as_text": ("env_id", "telemetry", payloads.environment(1, temperature_c="21.5"),
                            'temperature_c: expected a number, got "21.5"'),
    "trigger_in_capitals": ("switch_id", "telemetry", payloads.switch(1, trigger="Button"),
                            f'trigger: expected one of {TRIGGERS}, got "Button"'),
    "fix_type_as_number": ("tracker_id", "telemetry", payloads.tracker(1, fix_type=3),
                           'fix_type: expected one of "none", "2d", "3d", "wifi", "cell", got 3'),
    "firmware_as_number": ("switch_id", "status", payloads.status(1, firmware=142),
                           "firmware: expected a string, got 142"),
    "uptime_with_a_fraction": ("switch_id", "status", payloads.status(1, uptime_s=3600.5),
                               "uptime_s: expected an integer, got 3600.5"),
    "state_in_capitals": ("switch_id", "status", payloads.status(1, state="ONLINE"),
                          'state: expected one of "online", "offline", "rebooting", "low_battery", "error", got "ONLINE"'),
    "event_as_number": ("tracker_id", "event", payloads.event(1, event=5), "event: expected a string, got 5"),
    "ts_true": ("switch_id", "telemetry", payloads.switch(1, ts=True), f"ts: {TS_EXPECTED}, got true"),
    "ts_epoch_as_text": ("switch_id", "telemetry", payloads.switch(1, ts="1764000000000"),
                         f'ts: {TS_EXPECTED}, got "1764000000000"'),
    "ts_epoch_with_a_fraction": ("switch_id", "telemetry", payloads.switch(1, ts=1764000000000.5),
                                 f"ts: {TS_EXPECTED}, got 1764000000000.5"),
    "ts_offset_without_colon": ("switch_id", "telemetry", payloads.switch(1, ts="2026-11-25T09:30:00+0900"),
                                f'ts: {TS_EXPECTED}, got "2026-11-25T09:30:00+0900"'),
    "ts_with_a_space": ("switch_id", "telemetry", payloads.switch(1, ts="2026-11-25 09:30:00Z"),
                        f'ts: {TS_EXPECTED}, got "2026-11-25 09:30:00Z"'),
}

# name -> (device attribute, channel, raw payload, expected detail)
REPEATED: dict[str, tuple[str, str, bytes, str]] = {
    "seq_twice": ("switch_id", "telemetry",
                  _json('{"ts":{now},"seq":1,"seq":2,"relay_on":true,"power_w":1.5,"energy_wh":2}'),
                  "seq: duplicate key"),
    "seq_twice_with_spaces": ("switch_id", "telemetry",
                              _json('{ "ts" : {now}, "seq" :\t3, "relay_on": true,\n "seq"\n: 4, "power_w": 1, '
                                    '"energy_wh": 2 }'),
                              "seq: duplicate key"),
    "bad_value_hidden_by_a_good_one": ("switch_id", "telemetry",
                                       _json('{"ts":{now},"seq":5,"relay_on":"yes","relay_on":true,'
                                             '"power_w":1.5,"energy_wh":2}'),
                                       "relay_on: duplicate key"),
    "key_twice_in_an_event_detail": ("tracker_id", "event",
                                     _json('{"ts":{now},"seq":6,"event":"fall","detail":{"g":[{"x":1,"x":2}]}}'),
                                     "detail.g[0].x: duplicate key"),
}


@pytest.fixture(scope="module")
def outcome(database_url: str, mqtt_url: str) -> Iterator[dict[str, Any]]:
    """Publishes every case of this module once, waits for all of them, and returns what ingest made
    of each: dead letters by payload, stored rows by (device, seq), and the case inputs."""
    name = f"strict-{uuid.uuid4().hex[:8]}"
    lpwa: LpwaPilot = register_lpwa_pilot(database_url, name)
    sources = [NetworkServerSource(name="cs", network_server="chirpstack",
                                   topics=(f"application/{lpwa.app}/device/+/event/+",)),
               NetworkServerSource(name="tts", network_server="tts", protocol="3.1.1", qos=0, shared=False,
                                   topics=(f"v3/{lpwa.app}@ttn/devices/+/+",))]
    settings = Settings(database_url=database_url, mqtt_url=mqtt_url, share_group=f"grp-{name}", worker_id="w1",
                        session_expiry_s=120, batch_linger_ms=5, lpwa_sources=sources)
    messages: list[tuple[str, bytes]] = []
    expected_dead: dict[str, tuple[bytes, str]] = {}
    for case, (attr, channel, body, detail) in LOOSE.items():
        topic, raw = topic_for(lpwa.pilot_id, getattr(lpwa, attr), channel), orjson.dumps(body)
        messages.append((topic, raw))
        expected_dead[case] = (raw, detail)
    for case, (attr, channel, raw, detail) in REPEATED.items():
        messages.append((topic_for(lpwa.pilot_id, getattr(lpwa, attr), channel), raw))
        expected_dead[case] = (raw, detail)

    gateway = f"pilotlab/v1/{lpwa.pilot_id}/{lpwa.gateway_id}/batch"
    first, second = lpwa.behind_gateway
    entry = orjson.dumps({"device_id": first, **payloads.switch(1)}).decode()
    adapter_cases = {
        "gateway_batch_seq_twice": (gateway, _json(f'{{"ts":{{now}},"seq":1,"seq":2,"readings":[{entry}]}}'),
                                    "seq: duplicate key"),
        "gateway_entry_key_twice": (gateway, _json(f'{{"ts":{{now}},"seq":3,"readings":[{entry[:-1]},"seq":9}}]}}'),
                                    "readings[0].seq: duplicate key"),
    }
    eui = lpwa.eui[lpwa.env_id]
    port, frame = encode_frame(DeviceKind.ENV_SENSOR, Channel.TELEMETRY, {"temperature_c": 19.0})
    chirpstack = m.chirpstack_up(lpwa.app, eui, 11, port, frame, _iso(3))
    tts = m.tts_up(eui, "tts-env", 12, port, frame, _iso(2))
    adapter_cases["chirpstack_fcnt_twice"] = (m.chirpstack_topic(lpwa.app, eui),
                                              chirpstack.replace(b'"fCnt":11', b'"fCnt":11,"fCnt":13'), "fCnt: duplicate key")
    adapter_cases["chirpstack_nested_key_twice"] = (
        m.chirpstack_topic(lpwa.app, eui), chirpstack.replace(b'"devEui":', b'"devEui":"0000000000000001","devEui":'),
        "deviceInfo.devEui: duplicate key")
    adapter_cases["tts_fcnt_twice"] = (m.tts_topic(lpwa.app, "tts-env"),
                                       tts.replace(b'"f_cnt":12', b'"f_cnt":12,"f_cnt":14'),
                                       "uplink_message.f_cnt: duplicate key")
    for case, (topic, raw, detail) in adapter_cases.items():
        messages.append((topic, raw))
        expected_dead[case] = (raw, detail)

    # Accepted as written: JSON integers in number fields, epoch milliseconds, RFC 3339 with an
    # offset, a pretty-printed payload, text that merely looks like a repeated key.
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    stored_cases = {
        (lpwa.env_id, 100): payloads.environment(100, ts=int(at.timestamp() * 1000), humidity_pct=44, co2_ppm=640),
        (lpwa.switch_id, 101): payloads.switch(101, ts=at.astimezone(timezone(timedelta(hours=9))).isoformat(),
                                               power_w=40),
    }
    for (device_id, _), body in stored_cases.items():
        messages.append((topic_for(lpwa.pilot_id, device_id, "telemetry"), orjson.dumps(body)))
    pretty = _json('{\n  "ts" : {now},\n  "seq" : 102,\n  "event" : "note",\n'
                   '  "detail" : {"text" : "a \\"seq\\": 1, \\"seq\\" : 2", "n": {"seq": 1}}\n}')
    messages.append((topic_for(lpwa.pilot_id, lpwa.tracker_id, "event"), pretty))
    messages.append((gateway, orjson.dumps({"ts": payloads.now_ms(), "seq": 4, "readings": [
        {"device_id": second, **payloads.switch(103, power_w=12, energy_wh=7)}]})))

    worker = ThreadWorker(settings).start()
    try:
        publish(mqtt_url, [(t, raw) for t, raw in messages if not t.startswith("v3/")])
        publish(mqtt_url, [(t, raw) for t, raw in messages if t.startswith("v3/")], qos=0)  # TTS speaks QoS 0
        devices = _devices(lpwa)

        def seen() -> tuple[dict[bytes, tuple[str, str]], dict[tuple[str, int], dict[str, Any]]]:
            with psycopg.connect(database_url) as conn:
                dead = conn.execute("SELECT payload, reason, detail FROM dead_letter WHERE topic LIKE ANY(%s)",
                                    ([f"pilotlab/v1/{lpwa.pilot_id}/%", f"application/{lpwa.app}/%",
                                      f"v3/{lpwa.app}@%"],)).fetchall()
                cur = conn.execute("SELECT * FROM telemetry WHERE device_id = ANY(%s)", (devices,))
                rows = [dict(zip([c.name for c in cur.description], row, strict=True)) for row in cur.fetchall()]
            return {bytes(p): (r, d) for p, r, d in dead}, {(r["device_id"], r["seq"]): r for r in rows}

        def complete() -> bool:
            dead, stored = seen()
            return all(raw in dead for raw, _ in expected_dead.values()) and len(stored) >= 4

        # Not an assertion: a case that ingest wrongly accepts has no dead letter, and its own test says so.
        deadline = time.monotonic() + 15
        while not complete() and time.monotonic() < deadline:
            time.sleep(0.1)
        dead, stored = seen()
    finally:
        worker.stop()
    yield {"dead": dead, "stored": stored, "expected": expected_dead, "at": at, "lpwa": lpwa}


def _devices(lpwa: LpwaPilot) -> list[str]:
    return [lpwa.env_id, lpwa.switch_id, lpwa.tracker_id, *lpwa.behind_gateway]


@pytest.mark.parametrize("case", list(LOOSE))
def test_a_value_of_the_wrong_json_type_is_refused_naming_the_field_and_the_expected_type(
    outcome: dict[str, Any], case: str,
) -> None:
    raw, detail = outcome["expected"][case]
    assert outcome["dead"].get(raw) == ("invalid_payload", detail)


@pytest.mark.parametrize("case", [*REPEATED, "gateway_batch_seq_twice", "gateway_entry_key_twice",
                                  "chirpstack_fcnt_twice", "chirpstack_nested_key_twice", "tts_fcnt_twice"])
def test_a_key_named_twice_at_any_level_is_refused_naming_the_key(outcome: dict[str, Any], case: str) -> None:
    raw, detail = outcome["expected"][case]
    assert outcome["dead"].get(raw) == ("invalid_payload", detail)


def test_no_refused_case_left_a_reading_or_a_frame(outcome: dict[str, Any], database_url: str) -> None:
    lpwa = outcome["lpwa"]
    assert set(outcome["stored"]) == {(lpwa.env_id, 100), (lpwa.switch_id, 101), (lpwa.tracker_id, 102),
                                      (lpwa.behind_gateway[1], 103)}
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM telemetry WHERE device_id = ANY(%s) AND seq < 100",
                            (_devices(lpwa),)).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM uplink_frame WHERE device_id = %s", (lpwa.env_id,)).fetchone() == (0,)


def test_integers_in_number_fields_epoch_milliseconds_and_rfc3339_offsets_are_stored_as_written(
    outcome: dict[str, Any],
) -> None:
    lpwa, at, stored = outcome["lpwa"], outcome["at"], outcome["stored"]
    env = stored[(lpwa.env_id, 100)]
    assert (env["device_time"], env["humidity_pct"], env["co2_ppm"]) == (at, 44.0, 640.0)
    switch = stored[(lpwa.switch_id, 101)]
    assert (switch["device_time"], switch["power_w"], switch["relay_on"]) == (at, 40.0, True)
    assert stored[(lpwa.behind_gateway[1], 103)]["power_w"] == 12.0


def test_text_that_only_looks_like_a_repeated_key_is_stored(outcome: dict[str, Any]) -> None:
    lpwa = outcome["lpwa"]
    note = outcome["stored"][(lpwa.tracker_id, 102)]
    assert note["detail"] == {"text": 'a "seq": 1, "seq" : 2', "n": {"seq": 1}}

"""Every payload that cannot become a reading is kept as a dead letter with its reason,
its topic and its exact bytes; none is dropped, none registers a device; and each counts against
the registered device it names, per day and reason."""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from devices.codecs import encode_frame
from devices.contract import TOPIC_ROOT, topic_for
from devices.kinds import Channel, DeviceKind
from pilotlab.settings import Settings
from store.delivery import DeliveryCounts, delivery_totals
from tests.ingest import payloads
from tests.lpwa import messages as m
from tests.lpwa.conftest import LpwaPilot, lpwa, lpwa_sources, lpwa_worker  # noqa: F401  (shared fixtures)
from tests.support import RegisteredPilot, admin_headers, count_rows, publish, register_pilot, wait_until

PREFIX: int = Settings.model_fields["dead_letter_prefix_bytes"].default


def _dead_letter(database_url: str, topic: str, body: bytes) -> tuple | None:
    """(reason, detail, payload kept, pilot, device, true size) of the dead letter of that message."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT reason, detail, payload, pilot_id, device_id, payload_size FROM dead_letter "
            "WHERE topic_sha256 = %s AND payload_sha256 = %s",
            (hashlib.sha256(topic.encode()).digest(), hashlib.sha256(body).digest()),
        ).fetchone()


def _case(pilot: RegisteredPilot, name: str) -> tuple[str, bytes, str]:
    """(topic, payload, expected reason) for each kind of bad message."""
    sw = topic_for(pilot.pilot_id, pilot.switch_id, "telemetry")
    far_future = int((datetime.now(UTC) + timedelta(days=30)).timestamp() * 1000)
    cases = {
        "malformed_json": (sw, b'{"ts": 1764000000000, "seq": ', "malformed_json"),
        "not_an_object": (sw, b"[1, 2, 3]", "invalid_payload"),
        "wrong_type": (sw, payloads.encode(payloads.switch(1, relay_on="maybe")), "invalid_payload"),
        "bool_for_an_integer": (sw, payloads.encode(payloads.switch(True)), "invalid_payload"),
        "text_for_a_number": (sw, payloads.encode(payloads.switch(1, power_w="21.5")), "invalid_payload"),
        "repeated_key": (sw, b'{"ts": 1764000000000, "seq": 1, "seq": 2, "relay_on": true, "power_w": 1, '
                             b'"energy_wh": 1}', "invalid_payload"),
        "missing_field": (sw, b'{"ts": 1764000000000, "seq": 1, "power_w": 1, "energy_wh": 1}', "invalid_payload"),
        "unknown_field": (sw, payloads.encode(payloads.switch(1, colour="red")), "invalid_payload"),
        "negative_seq": (sw, payloads.encode(payloads.switch(-1)), "out_of_range"),
        "beyond_the_storable_bound": (topic_for(pilot.pilot_id, pilot.env_id, "telemetry"),
                                      payloads.encode(payloads.environment(1, temperature_c=1e13)), "out_of_range"),
        "latitude_over_90": (topic_for(pilot.pilot_id, pilot.tracker_id, "telemetry"),
                             payloads.encode(payloads.tracker(1, lat=91.0)), "out_of_range"),
        "nan": (sw, b'{"ts": 1764000000000, "seq": 1, "relay_on": true, "power_w": NaN, "energy_wh": 1}',
                "invalid_payload"),
        "timestamp_without_zone": (sw, payloads.encode(payloads.switch(1, ts="2026-11-25T10:00:00")),
                                   "invalid_payload"),
        "timestamp_in_1970": (sw, payloads.encode(payloads.switch(1, ts=1000)), "timestamp_out_of_range"),
        "timestamp_next_month": (sw, payloads.encode(payloads.switch(1, ts=far_future)), "timestamp_out_of_range"),
        "unknown_device": (topic_for(pilot.pilot_id, "nobody-" + pilot.switch_id, "telemetry"),
                           payloads.encode(payloads.switch(1)), "unknown_device"),
        "unknown_channel": (f"{TOPIC_ROOT}/{pilot.pilot_id}/{pilot.switch_id}/gossip",
                            payloads.encode(payloads.switch(1)), "topic_invalid"),
        "too_large": (sw, b'{"pad": "' + b"x" * 20_000 + b'"}', "payload_too_large"),
        "not_utf8": (sw, b"\xff\xfe\x00garbage", "malformed_json"),
    }
    return cases[name]


@pytest.mark.parametrize("case", [
    "malformed_json", "not_an_object", "wrong_type", "bool_for_an_integer", "text_for_a_number", "repeated_key",
    "missing_field", "unknown_field", "negative_seq",
    "beyond_the_storable_bound", "latitude_over_90", "nan", "timestamp_without_zone", "timestamp_in_1970",
    "timestamp_next_month", "unknown_device", "unknown_channel", "too_large", "not_utf8",
])
def test_a_bad_payload_lands_in_dead_letters_with_its_reason_and_its_bytes(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable, case: str,
) -> None:
    topic, body, reason = _case(pilot, case)
    thread_worker()
    publish(mqtt_url, [(topic, body)])
    found = wait_until(lambda: _dead_letter(database_url, topic, body), 10, what=f"the {case} dead letter")
    assert found[0] == reason
    assert found[1], "the dead letter says why"
    assert bytes(found[2]) == body[:PREFIX] and found[5] == len(body), "its bytes (a long one's first ones), its size"
    assert count_rows(database_url, "SELECT count(*) FROM telemetry WHERE device_id = ANY(%s)",
                      (pilot.device_ids,)) == 0


def test_a_message_for_a_device_of_another_pilot_is_refused_as_pilot_mismatch(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable,
    unique_id: Callable[[str], str],
) -> None:
    other = register_pilot(database_url, unique_id("other"))
    topic = topic_for(other.pilot_id, pilot.switch_id, "telemetry")
    body = payloads.encode(payloads.switch(1))
    thread_worker()
    publish(mqtt_url, [(topic, body)])
    found = wait_until(lambda: _dead_letter(database_url, topic, body), 10, what="the dead letter")
    assert (found[0], found[3], found[4]) == ("pilot_mismatch", other.pilot_id, pilot.switch_id)


def test_messages_after_decommissioning_are_refused_but_earlier_late_ones_are_kept(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable,
) -> None:
    decommissioned_at = datetime.now(UTC) - timedelta(minutes=10)
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE device SET decommissioned_at = %s, decommission_reason = 'battery swap' "
                     "WHERE id = %s", (decommissioned_at, pilot.env_id))
    topic = topic_for(pilot.pilot_id, pilot.env_id, "telemetry")
    before = payloads.encode(payloads.environment(1, ts=int((decommissioned_at - timedelta(minutes=5)).timestamp() * 1000)))
    after = payloads.encode(payloads.environment(2))
    thread_worker()
    publish(mqtt_url, [(topic, before), (topic, after)])
    found = wait_until(lambda: _dead_letter(database_url, topic, after), 10, what="the dead letter")
    assert found[0] == "device_decommissioned"
    assert count_rows(database_url, "SELECT count(*) FROM telemetry WHERE device_id = %s AND seq = 1",
                      (pilot.env_id,)) == 1


def test_an_unknown_device_is_never_auto_registered(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable,
) -> None:
    stranger = "stranger-" + pilot.switch_id
    topic = topic_for(pilot.pilot_id, stranger, "telemetry")
    body = payloads.encode(payloads.switch(1))
    thread_worker()
    publish(mqtt_url, [(topic, body)])
    wait_until(lambda: _dead_letter(database_url, topic, body), 10, what="the dead letter")
    assert count_rows(database_url, "SELECT count(*) FROM device WHERE id = %s", (stranger,)) == 0


def test_a_device_registered_while_ingest_runs_is_accepted_without_a_restart(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable,
) -> None:
    thread_worker()
    late = "late-" + pilot.switch_id
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s) "
                     "VALUES (%s, %s, 'smart_switch', 'wifi', 60)", (late, pilot.pilot_id))
    publish(mqtt_url, [(topic_for(pilot.pilot_id, late, "telemetry"), payloads.encode(payloads.switch(1)))])
    wait_until(lambda: count_rows(database_url, "SELECT count(*) FROM telemetry WHERE device_id = %s", (late,)),
               10, what="the late device's reading")


def test_an_event_detail_with_an_infinity_is_refused_rather_than_stored_as_null(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable,
) -> None:
    topic = topic_for(pilot.pilot_id, pilot.tracker_id, "event")
    body = b'{"ts": 1764000000000, "seq": 3, "event": "fall", "detail": {"g": [1.5, 1e999]}}'
    thread_worker()
    publish(mqtt_url, [(topic, body)])
    found = wait_until(lambda: _dead_letter(database_url, topic, body), 10, what="the dead letter")
    assert found[0] == "invalid_payload"
    assert "infinit" in found[1]


def test_a_10_mb_payload_keeps_a_bounded_prefix_its_true_size_and_the_hash_of_all_of_it(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable,
) -> None:
    topic = topic_for(pilot.pilot_id, pilot.switch_id, "telemetry")
    huge = b'{"pad": "' + b"x" * 10_000_000 + b'"}'
    same_start = huge[:-3] + b'y"}'  # the same first bytes: another message all the same
    thread_worker()
    publish(mqtt_url, [(topic, huge), (topic, huge), (topic, same_start)])
    found = wait_until(lambda: _dead_letter(database_url, topic, same_start), 30, what="the second dead letter")
    assert _dead_letter(database_url, topic, huge) is not None
    assert found[0] == "payload_too_large"
    assert bytes(found[2]) == huge[:PREFIX] and found[5] == len(huge)
    with psycopg.connect(database_url) as conn:
        kept = conn.execute("SELECT count(*), max(length(payload)) FROM dead_letter WHERE device_id = %s",
                            (pilot.switch_id,)).fetchone()
    assert kept == (2, PREFIX), "the same message redelivered is kept once; each keeps only its prefix"

    with TestClient(create_app(Settings(database_url=database_url)), headers=admin_headers(database_url)) as client:
        listed = client.get("/dead-letters", params={"device_id": pilot.switch_id}).json()["dead_letters"]
    assert [(d["size_bytes"], d["payload_truncated"], len(base64.b64decode(d["payload_base64"]))) for d in listed] == [
        (len(huge), True, PREFIX)] * 2


# --- rejected messages count against their registered device, per day and reason (issue 15) ----

def _rejected(database_url: str, device_id: str) -> tuple[set[date], int, dict[str, int]]:
    """(days, rejected, rejected by reason) of a device over its delivery_day rows."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT day, rejected, rejected_by_reason FROM delivery_day WHERE device_id = %s",
                            (device_id,)).fetchall()
    by_reason: Counter[str] = Counter()
    for _, _, reasons in rows:
        by_reason.update(reasons)
    return {day for day, _, _ in rows}, sum(r for _, r, _ in rows), dict(by_reason)


def test_every_rejected_message_of_a_registered_device_is_counted_against_it_per_day_with_its_reason(
    database_url: str, mqtt_url: str, pilot: RegisteredPilot, thread_worker: Callable,
    unique_id: Callable[[str], str],
) -> None:
    other = register_pilot(database_url, unique_id("other"))
    sw = topic_for(pilot.pilot_id, pilot.switch_id, "telemetry")
    not_charged = [
        (topic_for(pilot.pilot_id, "nobody-" + pilot.switch_id, "telemetry"), b"{oops"),  # not registered
        (topic_for(other.pilot_id, pilot.switch_id, "telemetry"), b"{oops"),  # names another pilot
    ]
    charged = [
        (sw, b"{oops"), (sw, b"{oops"),  # the same broken bytes twice: two deliveries
        (sw, payloads.encode(payloads.switch(1, colour="red"))),
        (sw, payloads.encode(payloads.switch(2, ts="2026-11-25T10:00:00"))),
        (sw, payloads.encode(payloads.switch(3, ts=1000))),
        (sw, payloads.encode(payloads.switch(4, power_w=1e13))),
        (sw, b'{"pad": "' + b"x" * 20_000 + b'"}'),
        (f"{TOPIC_ROOT}/{pilot.pilot_id}/{pilot.switch_id}/gossip", payloads.encode(payloads.switch(5))),
    ]
    first_day = datetime.now(UTC).date()
    thread_worker()
    publish(mqtt_url, [*not_charged, *charged, (sw, payloads.encode(payloads.switch(6)))])
    wait_until(lambda: _rejected(database_url, pilot.switch_id)[1] >= len(charged), 10, what="the rejections")
    days, rejected, by_reason = _rejected(database_url, pilot.switch_id)
    assert (rejected, by_reason) == (8, {"malformed_json": 2, "invalid_payload": 2, "timestamp_out_of_range": 1,
                                         "out_of_range": 1, "payload_too_large": 1, "topic_invalid": 1})
    assert days <= {first_day, datetime.now(UTC).date()}, "on the day the messages were received"
    assert count_rows(database_url, "SELECT count(*) FROM dead_letter WHERE topic = %s", (sw,)) == 6, (
        "dead_letter keeps the repeated bytes once; the count has both")
    assert _rejected(database_url, pilot.tracker_id)[1] == _rejected(database_url, other.switch_id)[1] == 0
    assert count_rows(database_url, "SELECT count(*) FROM delivery_day WHERE device_id = %s",
                      ("nobody-" + pilot.switch_id,)) == 0
    with psycopg.connect(database_url) as conn:  # as scoring reads them
        totals = delivery_totals(conn, [pilot.switch_id, pilot.tracker_id], first_day - timedelta(days=1),
                                 first_day + timedelta(days=1))
    assert totals == {pilot.switch_id: DeliveryCounts(0, 8, dict(sorted(by_reason.items()))),
                      pilot.tracker_id: DeliveryCounts(0, 0, {})}


def test_lpwa_and_gateway_rejections_count_against_the_device_they_resolve_to(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,  # noqa: F811  (the fixtures)
) -> None:
    eui = lpwa.eui[lpwa.env_id]
    port, good = encode_frame(DeviceKind.ENV_SENSOR, Channel.TELEMETRY, {"temperature_c": 19.0})
    when = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    topic = m.chirpstack_topic(lpwa.app, eui)
    uplinks = [
        (topic, m.chirpstack_up(lpwa.app, eui, 1, port, good[:3], when)),  # codec_error
        (topic, m.chirpstack_up(lpwa.app, eui, 2, 77, good, when)),  # unknown_fport
        (topic, m.chirpstack_up(lpwa.app, eui, 3, port, good, when).replace(b'"data":"', b'"data":"!!')),  # bad_base64
        (m.chirpstack_topic(lpwa.app, "00000000deadbeef"),
         m.chirpstack_up(lpwa.app, "00000000deadbeef", 4, port, good, when)),  # unknown_dev_eui: nobody's
    ]
    behind = lpwa.behind_gateway[1]
    batch = {"ts": payloads.now_ms(), "seq": 1, "readings": [
        {"device_id": behind, **payloads.switch(seq=1, power_w=1e13)},  # out_of_range
        {"device_id": lpwa.elsewhere, **payloads.tracker(seq=1)},  # gateway_not_attached
        {"device_id": "nobody-here", **payloads.switch(seq=1)},  # unknown_device: nobody's
    ]}
    lpwa_worker()
    publish(mqtt_url, [*uplinks, (f"pilotlab/v1/{lpwa.pilot_id}/{lpwa.gateway_id}/batch", orjson.dumps(batch))])
    wait_until(lambda: count_rows(database_url, "SELECT count(*) FROM dead_letter WHERE topic LIKE %s OR topic LIKE %s",
                                  (f"application/{lpwa.app}/%", f"pilotlab/v1/{lpwa.pilot_id}/{lpwa.gateway_id}/%")) == 7,
               15, what="seven dead letters")
    assert _rejected(database_url, lpwa.env_id)[1:] == (3, {"codec_error": 1, "unknown_fport": 1, "bad_base64": 1})
    assert _rejected(database_url, behind)[1:] == (1, {"out_of_range": 1})
    assert _rejected(database_url, lpwa.elsewhere)[1:] == (1, {"gateway_not_attached": 1})

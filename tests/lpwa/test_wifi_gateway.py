"""A Wi-Fi gateway's batch: readings of devices attached to it are stored, any other entry is a
dead letter with its reason and the rest of the batch still stored; heartbeats make its health."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from pilotlab.settings import Settings
from tests.ingest import payloads
from tests.lpwa.conftest import LpwaPilot
from tests.support import admin_headers, publish, wait_until


def _topic(lpwa: LpwaPilot, channel: str) -> str:
    return f"pilotlab/v1/{lpwa.pilot_id}/{lpwa.gateway_id}/{channel}"


def test_a_batch_stores_attached_devices_and_dead_letters_the_rest(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,
) -> None:
    first, second = lpwa.behind_gateway
    readings = [
        {"device_id": first, **payloads.switch(seq=1, power_w=10.5)},
        {"device_id": lpwa.elsewhere, **payloads.tracker(seq=1)},            # registered, not behind this gateway
        {"device_id": second, **payloads.switch(seq=1, power_w=20.5)},
        {"device_id": "nobody-here", **payloads.switch(seq=1)},              # not registered
        {"device_id": second, **payloads.switch(seq=2, power_w=-1e13)},      # past the storable bound
        {"device_id": second, "channel": "status", **payloads.status(seq=3)},
    ]
    batch = {"ts": payloads.now_ms(), "seq": 77, "readings": readings}
    status = {"ts": payloads.now_ms(), "seq": 78, "state": "online", "uptime_s": 3600, "firmware": "gw-2.1"}
    lpwa_worker()
    publish(mqtt_url, [(_topic(lpwa, "batch"), orjson.dumps(batch)), (_topic(lpwa, "batch"), orjson.dumps(batch)),
                       (_topic(lpwa, "gateway_status"), orjson.dumps(status))])

    def stored() -> list[tuple]:
        with psycopg.connect(database_url) as conn:
            return conn.execute("SELECT device_id, seq, channel, power_w FROM telemetry WHERE device_id = ANY(%s) "
                                "ORDER BY device_id, seq", (list(lpwa.behind_gateway),)).fetchall()

    assert wait_until(lambda: len(stored()) == 3 and stored(), 15, what="three readings") == [
        (first, 1, "telemetry", 10.5), (second, 1, "telemetry", 20.5), (second, 3, "status", None)]

    def dead() -> list[tuple]:
        with psycopg.connect(database_url) as conn:
            return conn.execute("SELECT reason, device_id, left(detail, 11) FROM dead_letter WHERE topic = %s ORDER BY detail",
                                (_topic(lpwa, "batch"),)).fetchall()
    assert wait_until(lambda: len(dead()) == 3 and dead(), 10, what="three dead letters") == [
        ("gateway_not_attached", lpwa.elsewhere, "readings[1]"), ("unknown_device", "nobody-here", "readings[3]"),
        ("out_of_range", second, "readings[4]")]

    with TestClient(create_app(Settings(database_url=database_url)), headers=admin_headers(database_url)) as client:
        health = wait_until(lambda: client.get(f"/gateways/{lpwa.gateway_id}/health").json().get("last_status"), 10,
                            what="the heartbeat")
        body = client.get(f"/gateways/{lpwa.gateway_id}/health").json()
    assert health["state"] == "online" and health["firmware"] == "gw-2.1" and health["uptime_s"] == 3600
    assert body["devices_attached"] == sorted(lpwa.behind_gateway)
    assert (body["devices_reporting_1h"], body["batches_24h"], body["readings_24h"], body["refused_24h"]) == (2, 1, 6, 3)
    assert datetime.fromisoformat(body["last_seen"]) > datetime.now(UTC) - timedelta(minutes=1)


def test_a_gateway_that_is_unknown_or_of_another_pilot_is_refused_whole(
    database_url: str, mqtt_url: str, lpwa: LpwaPilot, lpwa_worker: Callable,
) -> None:
    batch = orjson.dumps({"ts": payloads.now_ms(), "seq": 1, "readings": [
        {"device_id": lpwa.behind_gateway[0], **payloads.switch(seq=9)}]})
    unknown = f"pilotlab/v1/{lpwa.pilot_id}/no-such-gw/batch"
    wrong_pilot = f"pilotlab/v1/other-pilot/{lpwa.gateway_id}/batch"
    lpwa_worker()
    publish(mqtt_url, [(unknown, batch), (wrong_pilot, batch), (_topic(lpwa, "batch"), b"{not json")])

    def reasons() -> dict[str, str]:
        with psycopg.connect(database_url) as conn:
            rows = conn.execute("SELECT topic, reason FROM dead_letter WHERE topic = ANY(%s)",
                                ([unknown, wrong_pilot, _topic(lpwa, "batch")],)).fetchall()
        return dict(rows)
    assert wait_until(lambda: len(reasons()) == 3 and reasons(), 15, what="three dead letters") == {
        unknown: "unknown_gateway", wrong_pilot: "pilot_mismatch", _topic(lpwa, "batch"): "malformed_json"}

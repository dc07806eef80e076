"""Telemetry of one device: raw messages and per-bucket aggregates over a time range."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
RANGE = {"from": "2024-05-01T10:00:00Z", "to": "2024-05-01T12:00:00Z"}


@pytest.fixture
def sensor(make_device: Callable[..., str], insert_rows: Callable[..., None]) -> str:
    """An environment sensor with five readings in two hours and one status message:

        10:00 10 °C   10:20 20 °C   10:40 30 °C        11:00 40 °C   11:30 50 °C
        10:10 status online, battery 80 %
    """
    dev = make_device("env_sensor")
    insert_rows(dev, [(T0 + timedelta(minutes=m), {"temperature_c": t, "humidity_pct": 50.0 if m == 0 else None})
                      for m, t in ((0, 10.0), (20, 20.0), (40, 30.0), (60, 40.0), (90, 50.0))])
    insert_rows(dev, [(T0 + timedelta(minutes=10), {"state": "online", "battery_pct": 80.0})],
                channel="status", first_seq=100)
    return dev


def test_raw_readings_come_oldest_first_with_only_the_filled_columns(client: TestClient, sensor: str) -> None:
    answer = client.get(f"/devices/{sensor}/telemetry", params=RANGE)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["device_id"], body["kind"], body["truncated"]) == (sensor, "env_sensor", False)
    assert body["from"].startswith("2024-05-01T10:00:00")
    readings = body["readings"]
    assert [r["channel"] for r in readings] == ["telemetry", "status", "telemetry", "telemetry", "telemetry",
                                                "telemetry"]
    assert readings[0]["values"] == {"temperature_c": 10.0, "humidity_pct": 50.0}
    assert readings[1]["values"] == {"state": "online", "battery_pct": 80.0}
    assert readings[1]["seq"] == 100
    assert set(readings[0]) == {"device_time", "ingest_time", "seq", "channel", "values", "profile_version", "extra"}
    assert (readings[0]["profile_version"], readings[0]["extra"]) == (None, None)  # contract v1 payloads


def test_the_range_is_inclusive_of_from_and_exclusive_of_to(client: TestClient, sensor: str) -> None:
    answer = client.get(f"/devices/{sensor}/telemetry",
                        params={"from": "2024-05-01T10:20:00Z", "to": "2024-05-01T11:00:00Z"}).json()
    assert [r["values"].get("temperature_c") for r in answer["readings"]] == [20.0, 30.0]


def test_limit_truncates_and_says_so(client: TestClient, sensor: str) -> None:
    body = client.get(f"/devices/{sensor}/telemetry", params={**RANGE, "limit": 2}).json()
    assert len(body["readings"]) == 2
    assert body["truncated"] is True
    assert client.get(f"/devices/{sensor}/telemetry", params={**RANGE, "limit": 100_000}).status_code == 422


def test_channel_filter_keeps_only_that_channel(client: TestClient, sensor: str) -> None:
    body = client.get(f"/devices/{sensor}/telemetry", params={**RANGE, "channel": "status"}).json()
    assert [r["values"] for r in body["readings"]] == [{"state": "online", "battery_pct": 80.0}]
    assert client.get(f"/devices/{sensor}/telemetry", params={**RANGE, "channel": "gossip"}).status_code == 422


def test_hourly_buckets_count_and_average_known_readings(client: TestClient, sensor: str) -> None:
    body = client.get(f"/devices/{sensor}/telemetry", params={**RANGE, "bucket": "1h"}).json()
    assert body["bucket"] == "1h"
    first, second = body["buckets"]
    assert first["start"].startswith("2024-05-01T10:00:00")
    assert first["count"] == 4  # three readings and the status message
    assert first["metrics"]["temperature_c"] == {"avg": 20.0, "min": 10.0, "max": 30.0, "count": 3}
    assert first["metrics"]["battery_pct"] == {"avg": 80.0, "min": 80.0, "max": 80.0, "count": 1}
    assert first["metrics"]["humidity_pct"]["count"] == 1
    assert second["start"].startswith("2024-05-01T11:00:00")
    assert second["count"] == 2
    assert second["metrics"] == {"temperature_c": {"avg": 45.0, "min": 40.0, "max": 50.0, "count": 2}}


def test_buckets_of_one_channel_count_only_that_channel(client: TestClient, sensor: str) -> None:
    body = client.get(f"/devices/{sensor}/telemetry",
                      params={**RANGE, "bucket": "1h", "channel": "telemetry"}).json()
    assert [b["count"] for b in body["buckets"]] == [3, 2]
    assert "battery_pct" not in body["buckets"][0]["metrics"]


def test_empty_buckets_are_omitted(client: TestClient, sensor: str) -> None:
    body = client.get(f"/devices/{sensor}/telemetry",
                      params={**RANGE, "bucket": "20m", "channel": "telemetry"}).json()
    starts = [b["start"][11:16] for b in body["buckets"]]
    assert starts == ["10:00", "10:20", "10:40", "11:00", "11:20"]
    assert [b["metrics"]["temperature_c"]["avg"] for b in body["buckets"]] == [10.0, 20.0, 30.0, 40.0, 50.0]


def test_a_day_bucket_holds_everything_of_that_day(client: TestClient, sensor: str) -> None:
    body = client.get(f"/devices/{sensor}/telemetry",
                      params={"from": "2024-05-01T00:00:00Z", "to": "2024-05-02T00:00:00Z", "bucket": "1d"}).json()
    assert len(body["buckets"]) == 1
    assert body["buckets"][0]["count"] == 6
    assert body["buckets"][0]["metrics"]["temperature_c"]["avg"] == 30.0


def test_smart_switch_readings_carry_relay_and_metering(client: TestClient, make_device: Callable[..., str],
                                                        insert_rows: Callable[..., None]) -> None:
    switch = make_device("smart_switch")
    insert_rows(switch, [(T0, {"relay_on": True, "power_w": 100.0, "energy_wh": 5.0, "trigger": "button"}),
                         (T0 + timedelta(minutes=5), {"relay_on": False, "power_w": 0.0, "energy_wh": 6.0})])
    raw = client.get(f"/devices/{switch}/telemetry", params=RANGE).json()
    assert raw["readings"][0]["values"] == {"relay_on": True, "power_w": 100.0, "energy_wh": 5.0, "trigger": "button"}
    hourly = client.get(f"/devices/{switch}/telemetry", params={**RANGE, "bucket": "1h"}).json()
    assert hourly["buckets"][0]["metrics"] == {
        "power_w": {"avg": 50.0, "min": 0.0, "max": 100.0, "count": 2},
        "energy_wh": {"avg": 5.5, "min": 5.0, "max": 6.0, "count": 2},
    }


def test_a_reading_decoded_by_a_profile_shows_its_version_what_the_mapping_left_and_the_altitude(
        client: TestClient, make_device: Callable[..., str], insert_rows: Callable[..., None]) -> None:
    tracker = make_device("location_tracker")
    left = {"gps_1": {"hdop": 0.9}, "analog_in_2": 3.61, "note": "ok"}
    insert_rows(tracker, [(T0, {"lat": 52.3702, "lon": 4.8952, "altitude_m": 12.5, "fix_type": "3d",
                                "profile_version": 3, "extra": Jsonb(left)}),
                          (T0 + timedelta(minutes=30), {"lat": 52.3704, "lon": 4.8950, "altitude_m": 14.5,
                                                        "fix_type": "3d", "profile_version": 4})])
    first, second = client.get(f"/devices/{tracker}/telemetry", params=RANGE).json()["readings"]
    assert first["values"] == {"lat": 52.3702, "lon": 4.8952, "altitude_m": 12.5, "fix_type": "3d"}
    assert (first["profile_version"], first["extra"]) == (3, left)
    assert (second["profile_version"], second["extra"]) == (4, None)
    hourly = client.get(f"/devices/{tracker}/telemetry", params={**RANGE, "bucket": "1h"}).json()
    assert hourly["buckets"][0]["metrics"]["altitude_m"] == {"avg": 13.5, "min": 12.5, "max": 14.5, "count": 2}


def test_the_default_range_is_the_last_24_hours(client: TestClient, make_device: Callable[..., str],
                                                insert_rows: Callable[..., None]) -> None:
    dev = make_device("location_tracker")
    now = datetime.now(UTC)
    insert_rows(dev, [(now - timedelta(hours=25), {"fix_type": "none", "battery_pct": 90.0}),
                      (now - timedelta(hours=1), {"fix_type": "3d", "lat": 60.17, "lon": 24.94, "battery_pct": 88.0})])
    readings = client.get(f"/devices/{dev}/telemetry").json()["readings"]
    assert [r["values"]["battery_pct"] for r in readings] == [88.0]
    assert readings[0]["values"]["fix_type"] == "3d"


def test_bad_ranges_and_buckets_say_what_to_fix(client: TestClient, sensor: str) -> None:
    backwards = client.get(f"/devices/{sensor}/telemetry", params={"from": RANGE["to"], "to": RANGE["from"]})
    assert backwards.status_code == 422
    assert "must be before to" in backwards.json()["detail"]
    bad_bucket = client.get(f"/devices/{sensor}/telemetry", params={**RANGE, "bucket": "1 month"})
    assert bad_bucket.status_code == 422
    assert "30s, 5m, 1h" in bad_bucket.json()["detail"]
    naive = client.get(f"/devices/{sensor}/telemetry", params={"from": "2024-05-01T10:00:00"})
    assert naive.status_code == 422
    assert naive.json()["errors"] == [{"field": "query.from", "message": "Input should have timezone info"}]
    too_early = client.get(f"/devices/{sensor}/telemetry", params={"to": "0001-01-01T00:00:00Z"})
    assert too_early.status_code == 422
    assert "give from" in too_early.json()["detail"]
    garbage = client.get(f"/devices/{sensor}/telemetry", params={"from": "yesterday"})
    assert garbage.status_code == 422
    assert garbage.json()["errors"][0]["field"] == "query.from"


def test_telemetry_of_an_unknown_device_is_404(client: TestClient) -> None:
    answer = client.get("/devices/nope/telemetry")
    assert answer.status_code == 404
    assert answer.json() == {"detail": "no device with id 'nope'"}

"""Device and pilot health: online from the declared reporting interval, battery, recent counts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from store.readings import ONLINE_FACTOR


def _ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


def test_a_device_heard_within_three_intervals_is_online(client: TestClient, make_device: Callable[..., str],
                                                         insert_rows: Callable[..., None]) -> None:
    dev = make_device(interval_s=60)
    insert_rows(dev, [(_ago(120), {"temperature_c": 20.0})])  # two intervals: one report lost
    health = client.get(f"/devices/{dev}/health").json()
    assert health["online"] is True
    assert health["decommissioned"] is False
    assert health["last_device_time"] is not None and health["last_ingest_time"] is not None


def test_a_device_silent_for_more_than_three_intervals_is_offline(client: TestClient,
                                                                  make_device: Callable[..., str],
                                                                  insert_rows: Callable[..., None]) -> None:
    dev = make_device(interval_s=60)
    insert_rows(dev, [(_ago(ONLINE_FACTOR * 60 + 30), {"temperature_c": 20.0})])
    assert client.get(f"/devices/{dev}/health").json()["online"] is False


def test_the_declared_interval_decides_not_a_fixed_timeout(client: TestClient, make_device: Callable[..., str],
                                                          insert_rows: Callable[..., None]) -> None:
    hourly = make_device(interval_s=3600)
    insert_rows(hourly, [(_ago(2 * 3600), {"temperature_c": 20.0})])
    assert client.get(f"/devices/{hourly}/health").json()["online"] is True


def test_ingest_time_not_device_time_decides_online(client: TestClient, make_device: Callable[..., str],
                                                    insert_rows: Callable[..., None]) -> None:
    dev = make_device(interval_s=60)
    insert_rows(dev, [(_ago(600), {"temperature_c": 20.0})], ingest_time=_ago(600))
    assert client.get(f"/devices/{dev}/health").json()["online"] is False
    late = make_device(interval_s=60)  # buffered reading, just delivered
    insert_rows(late, [(_ago(600), {"temperature_c": 20.0})], ingest_time=_ago(5))
    assert client.get(f"/devices/{late}/health").json()["online"] is True


def test_a_reading_stamped_ahead_does_not_hide_the_normal_ones_that_arrive_after_it(
        client: TestClient, make_device: Callable[..., str], insert_rows: Callable[..., None]) -> None:
    dev = make_device(interval_s=60)
    # a clock glitch: stamped 20 h ahead (ingest accepts up to a day), received 10 minutes ago
    insert_rows(dev, [(_ago(-20 * 3600), {"temperature_c": 20.0})], ingest_time=_ago(600))
    arrivals = [_ago(540 - 60 * i) for i in range(9)]  # then every minute as declared, the last 60 s ago
    for i, arrived in enumerate(arrivals):
        insert_rows(dev, [(arrived, {"temperature_c": 20.0})], ingest_time=arrived, first_seq=1 + i)
    health = client.get(f"/devices/{dev}/health").json()
    assert health["online"] is True
    assert datetime.fromisoformat(health["last_seen"]) == arrivals[-1]
    assert datetime.fromisoformat(health["last_device_time"]) > datetime.now(UTC) + timedelta(hours=19)
    pilot = client.get(f"/pilots/{health['pilot_id']}/health").json()
    assert (pilot["online"], pilot["offline"]) == (1, 0)


def test_last_seen_is_the_latest_arrival_even_when_it_carries_an_older_time(
        client: TestClient, make_device: Callable[..., str], insert_rows: Callable[..., None]) -> None:
    dev = make_device(interval_s=300)
    insert_rows(dev, [(_ago(3600), {"temperature_c": 20.0})], ingest_time=_ago(3590))
    insert_rows(dev, [(_ago(7200), {"temperature_c": 20.0})], ingest_time=_ago(20), first_seq=1)  # buffered
    health = client.get(f"/devices/{dev}/health").json()
    assert health["online"] is True
    assert datetime.now(UTC) - datetime.fromisoformat(health["last_seen"]) < timedelta(seconds=60)


def test_a_device_that_never_reported_is_offline_with_no_last_seen(client: TestClient,
                                                                   make_device: Callable[..., str]) -> None:
    health = client.get(f"/devices/{make_device()}/health").json()
    assert (health["online"], health["last_device_time"], health["battery_pct"], health["messages_24h"]) == (
        False, None, None, 0)


def test_battery_is_the_newest_reported_value_and_messages_count_the_last_day(
        client: TestClient, make_device: Callable[..., str], insert_rows: Callable[..., None]) -> None:
    dev = make_device("location_tracker", interval_s=300)
    insert_rows(dev, [(_ago(30 * 3600), {"fix_type": "none", "battery_pct": 95.0}),
                      (_ago(3600), {"fix_type": "none", "battery_pct": 70.0}),
                      (_ago(1800), {"fix_type": "none", "battery_pct": 68.0})])
    insert_rows(dev, [(_ago(60), {"state": "online"})], channel="status", first_seq=10)  # no battery
    health = client.get(f"/devices/{dev}/health").json()
    assert health["battery_pct"] == 68.0
    assert health["messages_24h"] == 3


def test_a_decommissioned_device_is_never_online(client: TestClient, make_device: Callable[..., str],
                                                 insert_rows: Callable[..., None]) -> None:
    dev = make_device(interval_s=60)
    insert_rows(dev, [(_ago(10), {"temperature_c": 20.0})])
    client.post(f"/devices/{dev}/decommission", json={"reason": "battery swollen"})
    health = client.get(f"/devices/{dev}/health").json()
    assert (health["online"], health["decommissioned"]) == (False, True)


def test_pilot_health_lists_every_device_and_counts_them(client: TestClient, pilot_id: str,
                                                         make_device: Callable[..., str],
                                                         insert_rows: Callable[..., None]) -> None:
    online, silent, never, retired = (make_device(interval_s=60) for _ in range(4))
    insert_rows(online, [(_ago(30), {"temperature_c": 20.0})])
    insert_rows(silent, [(_ago(3600), {"temperature_c": 20.0})])
    client.post(f"/devices/{retired}/decommission", json={"reason": "pilot area shrank"})
    body = client.get(f"/pilots/{pilot_id}/health").json()
    assert (body["devices"], body["online"], body["offline"], body["decommissioned"]) == (4, 1, 2, 1)
    by_id = {h["device_id"]: h["online"] for h in body["device_health"]}
    assert by_id == {online: True, silent: False, never: False, retired: False}


def test_health_of_unknown_ids_is_404(client: TestClient) -> None:
    assert client.get("/devices/nope/health").json() == {"detail": "no device with id 'nope'"}
    assert client.get("/pilots/nope/health").json() == {"detail": "no pilot with id 'nope'"}

"""The demo seed registers the demo pilot once, and the simulator finds what is registered."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from devices.kinds import DeviceKind
from pilotlab.errors import NotFound
from simulators.fleet import load_devices
from simulators.seed import seed_demo_pilot


def test_seeding_the_demo_pilot_twice_registers_it_once_and_load_devices_returns_its_devices(
        make_database: Callable[[], str]) -> None:
    url = make_database()
    first = seed_demo_pilot(url, devices_per_kind=2)
    again = seed_demo_pilot(url, devices_per_kind=2)
    assert first == again and first.pilot_id == "demo-pilot"
    assert sorted(first.device_ids) == ["demo-env-1", "demo-env-2", "demo-switch-1", "demo-switch-2",
                                       "demo-tracker-1", "demo-tracker-2"]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM firm").fetchone() == (1,)
        pilot = conn.execute("SELECT site, stage, status, ends_at - starts_at, now() - starts_at FROM pilot").fetchone()
        assert pilot is not None and pilot[:3] == ("Demo living lab", 3, "running")
        assert pilot[3].days == 90 and 3500 < pilot[4].total_seconds() < 3700
        assert conn.execute("SELECT count(*) FROM device d JOIN pilot p ON p.id = d.pilot_id "
                            "WHERE d.commissioned_at = p.starts_at").fetchone() == (6,)
    devices = load_devices(url, "demo-pilot")
    assert [d.id for d in devices] == sorted(first.device_ids)
    by_id = {d.id: d for d in devices}
    assert by_id["demo-tracker-1"].kind is DeviceKind.LOCATION_TRACKER
    assert by_id["demo-tracker-1"].reporting_interval_s == 30
    assert by_id["demo-switch-2"].kind is DeviceKind.SMART_SWITCH and by_id["demo-env-1"].kind is DeviceKind.ENV_SENSOR


def test_seeding_with_more_devices_per_kind_adds_only_the_new_ones(make_database: Callable[[], str]) -> None:
    url = make_database()
    seed_demo_pilot(url, devices_per_kind=1)
    seed_demo_pilot(url, devices_per_kind=3)
    assert len(load_devices(url, "demo-pilot")) == 9


def test_load_devices_skips_decommissioned_devices(make_database: Callable[[], str]) -> None:
    url = make_database()
    seed_demo_pilot(url, devices_per_kind=1)
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE device SET decommissioned_at = now(), decommission_reason = 'broken' "
                     "WHERE id = 'demo-env-1'")
    assert [d.id for d in load_devices(url, "demo-pilot")] == ["demo-switch-1", "demo-tracker-1"]


def test_an_unknown_pilot_is_not_found(database_url: str, unique_id: Callable[[str], str]) -> None:
    with pytest.raises(NotFound, match="not registered"):
        load_devices(database_url, unique_id("nobody"))


def test_a_pilot_without_active_devices_is_not_found(database_url: str, unique_id: Callable[[str], str]) -> None:
    pilot = unique_id("empty")
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO firm (id, name) VALUES ('empty-firm', 'E') ON CONFLICT DO NOTHING")
        conn.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at) VALUES (%s, 'empty-firm', 'P', 'S', now())",
                     (pilot,))
    with pytest.raises(NotFound, match="no active devices"):
        load_devices(database_url, pilot)

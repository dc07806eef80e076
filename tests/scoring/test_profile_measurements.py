"""Scoring follows the measurements a device's profile declares: a reading is complete when it
carries every measurement its profile version declares, QC tests only declared measurements, and
a declared battery that is never reported scores 0 instead of dropping out (issue 14)."""

from __future__ import annotations

from datetime import UTC, datetime

from scoring.metrics import reading_flags
from scoring.rubric import load_rubric
from scoring.scorer import score_pilot
from scoring.window import load_pilot, pilot_window

# one day at 60 s; humidity left out of every 4th reading (i % 4 = 0: 360 of 1440)
TEMPERATURE = "20 + (i % 7) * 0.1 AS temperature_c"
HUMIDITY_GAPS = "CASE WHEN i % 4 = 0 THEN NULL ELSE 50 + (i % 5) END AS humidity_pct"
# which profile version read each reading: v1 the first 480, v2 the next 480, none (contract v1) the last 480
VERSIONS = "CASE WHEN i < 480 THEN 1 WHEN i < 960 THEN 2 END AS profile_version"


def _devices(result) -> dict:
    return {m.device_id: m for m in result.devices}


def test_a_reading_is_complete_when_it_carries_every_measurement_its_profile_version_declares(db, rubric, make_pilot):
    pilot = make_pilot()
    model = pilot.profile("th", "env_sensor", ["temperature_c"])
    assert pilot.declare(model, "env_sensor", ["temperature_c", "humidity_pct"]) == 2  # now current
    profiled = pilot.device("profiled", profile=model)
    plain = pilot.device("plain")
    pilot.series(profiled, "2024-01-01Z", 1440, 60, f"{TEMPERATURE}, {HUMIDITY_GAPS}, {VERSIONS}")
    pilot.series(plain, "2024-01-01Z", 1440, 60, f"{TEMPERATURE}, {HUMIDITY_GAPS}")

    v1 = _devices(score_pilot(db, pilot.pilot_id, load_rubric(version="1")))
    # profile version 1 declares temperature only: its 480 readings are complete; version 2 and the
    # readings no profile version read (held to the device's current version, 2) lack humidity on 120 each
    assert (v1[profiled].valid, v1[profiled].complete, v1[profiled].expected) == (1440, 1440 - 240, 1440)
    assert (v1[profiled].completeness, v1[profiled].completeness_rule) == (1200 / 1440, "per_reading")
    assert v1[profiled].availability == 1.0 and v1[profiled].outages == 0  # valid readings, not complete ones
    assert (v1[profiled].profile_id, v1[profiled].profile_version) == (model, 2)
    assert v1[profiled].declared_measurements == ["humidity_pct", "temperature_c"]
    assert v1[profiled].measurement_shares == {"humidity_pct": 1080 / 1440, "temperature_c": 1.0}
    # without a profile every valid reading is complete, as the contract's required fields are there
    assert (v1[plain].complete, v1[plain].completeness) == (1440, 1.0)
    assert (v1[plain].profile_id, v1[plain].declared_measurements, v1[plain].measurement_shares) == (None, None, None)

    # rubric v2 holds a profile device to each measurement its current version declares
    result = score_pilot(db, pilot.pilot_id, rubric)
    m = _devices(result)
    assert m[profiled].measurement_carried == {"humidity_pct": 1080, "temperature_c": 1440}
    assert (m[profiled].completeness_rule, m[profiled].completeness) == ("per_measurement", (1080 / 1440 + 1) / 2)
    assert (m[plain].completeness_rule, m[plain].completeness) == ("per_reading", 1.0)
    assert result.fleet.pooled["completeness"] == ((1080 + 1440) / 2 + 1440) / (2 * 1440)


def test_a_device_alternating_reports_is_complete_per_measurement_as_its_declared_interval_says(
        db, rubric, make_pilot):
    pilot = make_pilot()
    r809a = pilot.profile("r809a", "smart_switch", ["relay_on", "power_w"])
    # every 60 s a report, alternating: the relay's state (power_w NULL), then the power (relay_on NULL)
    per_cycle = pilot.device("cycle", "smart_switch", 120, profile=r809a)  # declared: both every 120 s
    per_report = pilot.device("report", "smart_switch", 60, profile=r809a)  # declared: a report every 60 s
    alternating = ("CASE WHEN i % 2 = 0 THEN true END AS relay_on, "
                   "CASE WHEN i % 2 = 1 THEN 100 + (i % 7) END AS power_w, 1 AS profile_version")
    for device in (per_cycle, per_report):
        pilot.series(device, "2024-01-01Z", 1440, 60, alternating)

    m = _devices(score_pilot(db, pilot.pilot_id, rubric))
    assert (m[per_cycle].complete, m[per_cycle].expected) == (0, 720)  # no reading carries both
    assert m[per_cycle].measurement_carried == {"power_w": 720, "relay_on": 720}
    assert (m[per_cycle].completeness, m[per_cycle].availability) == (1.0, 1.0)
    assert (m[per_report].expected, m[per_report].completeness) == (1440, 0.5)  # each measurement every 120 s
    assert m[per_report].qc_tests["power_w__gross"] == {"pass": 720, "suspect": 0, "fail": 0, "not_evaluated": 720}
    v1 = _devices(score_pilot(db, pilot.pilot_id, load_rubric(version="1")))
    assert (v1[per_cycle].completeness, v1[per_report].completeness) == (0.0, 0.0)  # the reading rule: ~0


def test_a_tracker_reporting_no_fix_carries_its_position_measurements_by_saying_so(db, rubric, make_pilot):
    pilot = make_pilot()
    model = pilot.profile("gps", "location_tracker", ["lat", "lon", "accuracy_m", "fix_type"])
    tracker = pilot.device("tracker", "location_tracker", profile=model)
    # every 4th report has no fix (no position, no accuracy); every 10th fix lacks its accuracy
    pilot.series(tracker, "2024-01-01Z", 1440, 60,
                 "CASE WHEN i % 4 = 0 THEN 'none' ELSE '3d' END AS fix_type, "
                 "CASE WHEN i % 4 = 0 THEN NULL ELSE 37.5 END AS lat, CASE WHEN i % 4 = 0 THEN NULL ELSE 127.0 END AS lon, "
                 "CASE WHEN i % 4 = 0 OR i % 10 = 1 THEN NULL ELSE 5.0 END AS accuracy_m")
    m = _devices(score_pilot(db, pilot.pilot_id, rubric))[tracker]
    no_accuracy = sum(1 for i in range(1440) if i % 4 != 0 and i % 10 == 1)
    assert (m.valid, m.complete) == (1440, 1440 - no_accuracy)
    assert m.completeness == ((1440 - no_accuracy) + 3 * 1440) / 4 / 1440  # accuracy_m, fix_type, lat, lon
    assert m.fix_rate == 0.75  # the missing fixes are the fix rate's business, not completeness's
    assert m.measurement_shares == {"accuracy_m": (1440 - no_accuracy) / 1440, "fix_type": 1.0, "lat": 1.0, "lon": 1.0}


def test_qc_runs_only_on_the_measurements_the_profile_declares(db, rubric, make_pilot):
    pilot = make_pilot()
    relay_only = pilot.profile("relay", "smart_switch", ["relay_on"])
    switch = pilot.device("relay", "smart_switch", 300, profile=relay_only)
    metered = pilot.device("metered", "smart_switch", 300)
    # a firmware that sends a meaningless power_w far above any sensor span (3680 W): a gross-range fail
    values = "true AS relay_on, 5000 AS power_w, 'heartbeat' AS trigger"
    pilot.series(switch, "2024-01-01Z", 288, 300, values)
    pilot.series(metered, "2024-01-01Z", 288, 300, values)

    result = score_pilot(db, pilot.pilot_id, rubric)
    m = _devices(result)
    assert (m[metered].qc_fail, m[metered].valid) == (288, 0)  # no profile: every rubric metric of the kind
    assert (m[switch].qc_pass, m[switch].qc_fail, m[switch].valid, m[switch].completeness) == (288, 0, 288, 1.0)
    assert result.fleet.pooled["qc_fail_share"] == 288 / 576  # the relay-only switch adds passes only
    window = pilot_window(db, load_pilot(db, pilot.pilot_id), rubric.rubric, datetime(2024, 1, 5, tzinfo=UTC))
    by_id = {w.device.id: w for w in window.scored}
    flags = reading_flags(db, rubric.rubric, by_id[switch])
    assert len(flags) == 288 and not any(name.startswith("power_w__") for name in flags[0])  # not evaluated
    assert {row["power_w__gross"] for row in reading_flags(db, rubric.rubric, by_id[metered])} == {4}


def test_a_profile_without_battery_pct_gives_no_battery_component_whatever_the_claim(db, rubric, make_pilot):
    pilot = make_pilot()
    gps = pilot.profile("gps", "location_tracker", ["lat", "lon"])
    thermo = pilot.profile("thermo", "env_sensor", ["temperature_c"])
    tracker = pilot.device("tracker", "location_tracker", claimed_battery_days=365, profile=gps)
    sensor = pilot.device("sensor", claimed_battery_days=365, profile=thermo)
    pilot.series(tracker, "2024-01-01Z", 1440, 60, "'3d' AS fix_type, 37.5 AS lat, 127.0 AS lon")
    # contract v1 readings that carry a draining battery the profile does not declare
    pilot.series(sensor, "2024-01-01Z", 1440, 60, f"{TEMPERATURE}, 100 - i * 0.01 AS battery_pct")

    result = score_pilot(db, pilot.pilot_id, rubric)
    m = _devices(result)
    assert m[tracker].battery_ratio is None and m[sensor].battery_ratio is None
    assert m[sensor].battery_slope_pct_per_day is not None  # measured, but not scored against the claim
    assert all("does not declare battery_pct" in (m[d].battery_reason or "") for d in (tracker, sensor))
    assert "battery" not in result.fleet.components


def test_a_declared_battery_that_is_never_reported_scores_zero_with_a_reason(db, rubric, make_pilot):
    pilot = make_pilot()
    model = pilot.profile("th-bat", "env_sensor", ["temperature_c", "battery_pct"])
    silent = pilot.device("silent-battery", claimed_battery_days=365, profile=model)
    draining = pilot.device("draining", claimed_battery_days=365, profile=model)
    pilot.series(silent, "2024-01-01Z", 1440, 60, TEMPERATURE)
    pilot.series(draining, "2024-01-01Z", 1440, 60, f"{TEMPERATURE}, 80 AS battery_pct")

    result = score_pilot(db, pilot.pilot_id, rubric)
    m = _devices(result)
    assert m[silent].battery_ratio == 0.0
    assert m[silent].battery_reason is not None and "never" in m[silent].battery_reason
    assert m[silent].battery_slope_pct_per_day is None and m[silent].measurement_shares == {
        "battery_pct": 0.0, "temperature_c": 1.0}
    assert (m[silent].complete, m[silent].completeness) == (0, 0.5)  # no reading carries battery_pct
    assert (m[draining].battery_ratio, m[draining].battery_reason) == (1.0, None)  # steady: meets the claim
    assert result.fleet.components["battery"] == 0.5  # the silent battery counts, as 0

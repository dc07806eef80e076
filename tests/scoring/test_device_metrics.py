"""Per-device metrics over each device's window, against ground truth built into the telemetry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scoring.metrics import DeviceMetrics, Incident, Period, device_metrics
from scoring.rubric import load_rubric
from scoring.window import load_pilot, pilot_window
from tests.scoring.conftest import ENV_OK

END = datetime(2024, 1, 5, tzinfo=UTC)


def _at(minute: int) -> datetime:
    return datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=minute)


def _metrics(db, rubric, pilot) -> dict[str, DeviceMetrics]:
    window = pilot_window(db, load_pilot(db, pilot.pilot_id), rubric.rubric, END)
    return {m.device_id: m for m in device_metrics(db, rubric.rubric, window.scored, {})}


def test_a_full_day_at_the_declared_interval_is_fully_available_and_complete(db, rubric, make_pilot):
    pilot = make_pilot()
    dev = pilot.device("env")
    pilot.series(dev, "2024-01-01Z", 1440, 60, ENV_OK)
    m = _metrics(db, rubric, pilot)[dev]
    assert (m.readings, m.valid, m.expected, m.slots, m.slots_hit) == (1440, 1440, 1440, 480, 480)
    assert (m.availability, m.completeness, m.qc_fail, m.qc_suspect, m.outages) == (1.0, 1.0, 0, 0, 0)
    # percentiles come from the summaries' log-bucket histogram: within 1 % (scoring.histogram)
    assert (m.latency_p50_s, m.latency_p95_s) == (pytest.approx(2.0, rel=0.01), pytest.approx(2.0, rel=0.01))


def test_a_known_outage_costs_exactly_its_slots_and_messages_and_sets_mttr(db, rubric, make_pilot):
    pilot = make_pilot()
    dev = pilot.device("env")
    pilot.series(dev, "2024-01-01Z", 1440, 60, ENV_OK, skip="i BETWEEN 600 AND 629")  # 30 minutes silent
    m = _metrics(db, rubric, pilot)[dev]
    assert m.valid == 1410 and m.completeness == 1410 / 1440
    assert m.slots_hit == 470 and m.availability == 470 / 480          # slots 200..209 empty
    assert (m.outages, m.recovered_outages, m.mttr_s, m.lost) == (1, 1, 31 * 60.0, False)  # last 599, next 630
    assert m.outage_periods == [Period(_at(599), _at(630), 31 * 60.0, False)]


def test_repeated_device_times_are_duplicates_and_future_times_and_clock_skew_fail_and_suspect(db, rubric, make_pilot):
    pilot = make_pilot()
    dev = pilot.device("env")
    pilot.series(dev, "2024-01-01Z", 1440, 60, ENV_OK)
    pilot.series(dev, "2024-01-01T01:00Z", 5, 60, ENV_OK, first_seq=5000)                      # 5 duplicates (same times)
    pilot.series(dev, "2024-01-01T10:00:30Z", 4, 600, ENV_OK, first_seq=6000, latency="-10 minutes")  # 4 from the future
    pilot.series(dev, "2024-01-01T12:00:30Z", 3, 600, ENV_OK, first_seq=7000, latency="2 hours")       # 3 skewed
    m = _metrics(db, rubric, pilot)[dev]
    assert (m.readings, m.duplicates, m.future, m.skewed) == (1452, 5, 4, 3)
    # a repeat is not delivered again and is no QC fail; the future ones fail QC but were delivered
    assert (m.delivered, m.qc_fail, m.qc_suspect, m.qc_pass, m.valid) == (1447, 4, 3, 1440, 1443)
    assert m.qc_tests["ts__future"] == {"pass": 1443, "suspect": 0, "fail": 4, "not_evaluated": 0}
    assert m.qc_tests["ts__skew"] == {"pass": 1444, "suspect": 3, "fail": 0, "not_evaluated": 0}
    assert "ts__duplicate" not in m.qc_tests
    assert m.completeness == 1.0  # capped


# humidity stuck at 49 for 8 h (readings 600..1079): flat-line suspect after 3 h, fail after 6 h
STUCK = "20 + (i % 7) * 0.1 AS temperature_c, CASE WHEN i BETWEEN 600 AND 1079 THEN 49 ELSE 50 + (i % 5) END AS humidity_pct"


def test_a_stuck_sensor_fails_flat_line_as_a_quality_incident_not_an_outage(db, rubric, make_pilot):
    pilot = make_pilot()
    dev = pilot.device("env")
    pilot.series(dev, "2024-01-01Z", 1440, 60, STUCK)
    m = _metrics(db, rubric, pilot)[dev]
    # reading i of the run has i - 600 flat steps behind it: suspect from 180 (3 h / 60 s), fail from 360:
    # suspect i = 780..959 (180), fail i = 960..1079 (120)
    assert (m.qc_fail, m.qc_suspect) == (120, 180)
    assert (m.delivered, m.availability, m.completeness, m.outages) == (1440, 1.0, 1.0, 0)  # it reported on time
    # from the first failed reading (960) to the next valid one (1080)
    assert m.quality_incidents == [Incident(_at(960), _at(1080), 120 * 60.0, False, ["humidity_pct__flat"])]


def test_under_rubric_v1_a_stuck_sensors_silence_in_valid_readings_is_still_an_outage(db, make_pilot):
    v1 = load_rubric(version="1")
    pilot = make_pilot()
    dev = pilot.device("env")
    pilot.series(dev, "2024-01-01Z", 1440, 60, STUCK)
    m = _metrics(db, v1, pilot)[dev]
    assert (m.qc_fail, m.qc_suspect, m.valid, m.delivered) == (120, 180, 1320, 1320)
    assert m.outages == 1 and m.mttr_s == 121 * 60.0  # last valid 959, next valid 1080
    assert m.completeness == 1320 / 1440 and m.quality_incidents is None


def test_battery_projection_from_the_trend_against_the_claimed_life(db, rubric, make_pilot):
    pilot = make_pilot()
    drains = pilot.device("drains", claimed_battery_days=365)
    steady = pilot.device("steady", claimed_battery_days=30)
    pilot.series(drains, "2024-01-01Z", 1440, 60, ENV_OK + ", 100 - i * 0.001 AS battery_pct")  # 1.44 %/day
    pilot.series(steady, "2024-01-01Z", 1440, 60, ENV_OK + ", 80 AS battery_pct")
    m = _metrics(db, rubric, pilot)
    assert m[drains].battery_slope_pct_per_day == pytest.approx(-1.44)
    assert m[drains].projected_battery_days == pytest.approx(100 / 1.44)
    assert m[drains].battery_ratio == pytest.approx(100 / 1.44 / 365)
    assert (m[steady].projected_battery_days, m[steady].battery_ratio) == (None, 1.0)


def test_late_joiners_count_from_commissioning_plus_burn_in(db, rubric, make_pilot):
    pilot = make_pilot(ends_at="2024-01-04Z")
    late = pilot.device("late", commissioned_at="2024-01-02T00:00Z")  # burn-in 24 h: window from Jan 3
    pilot.series(late, "2024-01-02Z", 2 * 1440, 60, ENV_OK)
    m = _metrics(db, rubric, pilot)[late]
    assert m.window_start == datetime(2024, 1, 3, tzinfo=UTC)
    assert (m.readings, m.expected, m.availability, m.completeness) == (1440, 1440, 1.0, 1.0)


def test_planned_decommission_is_excluded_and_unplanned_silence_counts_down_to_the_end(db, rubric, make_pilot):
    pilot = make_pilot(ends_at="2024-01-04Z")
    retired = pilot.device("retired", decommissioned_at="2024-01-02Z", reason="moved to another site")
    silent = pilot.device("silent")
    pilot.series(retired, "2024-01-01Z", 1440, 60, ENV_OK)
    pilot.series(silent, "2024-01-01Z", 1440, 60, ENV_OK)  # then nothing for two days
    window = pilot_window(db, load_pilot(db, pilot.pilot_id), rubric.rubric, END)
    assert {d.device.id: d.status for d in window.devices} == {retired: "excluded", silent: "scored"}
    m = _metrics(db, rubric, pilot)[silent]
    assert (m.availability, m.completeness) == (1 / 3, 1 / 3)
    assert (m.outages, m.recovered_outages, m.lost) == (1, 0, True)
    assert m.down_s == 2 * 86400 + 60  # from the last reading (23:59) to the end
    assert m.outage_periods == [Period(_at(1439), datetime(2024, 1, 4, tzinfo=UTC), 2 * 86400 + 60.0, True)]


def test_tracker_fix_rate_and_accuracy_and_switch_heartbeat_regularity(db, rubric, make_pilot):
    pilot = make_pilot()
    tracker = pilot.device("tr", "location_tracker")
    switch = pilot.device("sw", "smart_switch", 300)
    pilot.series(tracker, "2024-01-01Z", 1440, 60,
                 "CASE WHEN i % 4 = 0 THEN 'none' ELSE '3d' END AS fix_type, "
                 "CASE WHEN i % 4 = 0 THEN NULL ELSE 37.5 END AS lat, CASE WHEN i % 4 = 0 THEN NULL ELSE 127.0 END AS lon, "
                 "CASE WHEN i % 4 = 0 THEN NULL ELSE (i % 4) * 5.0 END AS accuracy_m, 90 AS battery_pct")
    # heartbeats every 300 s, but every 10th one 100 s late (irregular twice: the late one and the next)
    pilot.series(switch, "2024-01-01Z", 288, 300,
                 "true AS relay_on, 10 + (i % 3) AS power_w, i AS energy_wh, 'heartbeat' AS trigger",
                 skip="i % 10 = 5")
    pilot.series(switch, "2024-01-01T00:26:40Z", 29, 3000,
                 "true AS relay_on, 11 AS power_w, 0 AS energy_wh, 'heartbeat' AS trigger", first_seq=1000)
    m = _metrics(db, rubric, pilot)
    assert m[tracker].fix_rate == 0.75
    assert m[tracker].accuracy_p50_m == pytest.approx(10.0, rel=0.01)  # histogram: within 1 %
    assert m[tracker].accuracy_p95_m == pytest.approx(15.0, rel=0.01)
    # 288 + 29 - 29 heartbeats; intervals 287: 29 late ones give 58 irregular intervals
    assert m[switch].heartbeat_regularity == (287 - 58) / 287

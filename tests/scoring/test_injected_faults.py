"""A simulated pilot with injected faults scores exactly the figures known by construction, under
the default rubric (v3, with v2's definitions of delivery and quality): delivery (availability, completeness, outages) counts every reading that arrived, data
quality counts QC per test, and long runs of QC fails are quality incidents, not outages."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from scoring.metrics import DeviceMetrics, Incident, Period, device_metrics, raw_device_metrics
from scoring.scorer import PilotScore, score_pilot
from scoring.window import load_pilot, pilot_window

DAY = datetime(2024, 1, 1, tzinfo=UTC)
AS_OF = datetime(2024, 1, 5, tzinfo=UTC)
# clean temperature and humidity, noise 55..57 dB(A): noise has only the gross-range test, so a value
# put out of range fails exactly where it is put (sensor span 20..130 fails, user span 25..110 is suspect)
ENV = "20 + ({i} % 7) * 0.1 AS temperature_c, 50 + ({i} % 5) AS humidity_pct, {noise} AS noise_dba"
FAULTY_NOISE = ("CASE WHEN {i} BETWEEN 100 AND 104 OR {i} BETWEEN 300 AND 301 THEN 200 "
                "WHEN {i} = 500 THEN 120 ELSE 55 + ({i} % 3) END")
TAIL_NOISE = "CASE WHEN {i} >= 1430 THEN 200 ELSE 55 + ({i} % 3) END"


def _values(noise: str, offset: int = 0) -> str:
    i = f"(i + {offset})"
    return ENV.format(i=i, noise=noise.format(i=i))


def _at(minute: int) -> datetime:
    return DAY + timedelta(minutes=minute)


@pytest.fixture
def faulty_pilot(make_pilot):
    """One day at 60 s: 1,440 readings expected per device.

    faulty: noise 200 dB(A) (beyond the sensor's span) at 100..104 and 300..301, 120 at 500; the
            readings 700..702 sent again under other seqs; silent 900..929 and from 1400 to the end.
    tail:   noise out of range from 1430 to the end of the window.
    silent: nothing at all.
    """
    pilot = make_pilot(starts_at="2024-01-01Z", ends_at="2024-01-02Z")
    faulty, tail, silent = (pilot.device(name) for name in ("faulty", "tail", "silent"))
    pilot.series(faulty, "2024-01-01Z", 1440, 60, _values(FAULTY_NOISE),
                 skip="i BETWEEN 900 AND 929 OR i >= 1400")
    pilot.series(faulty, "2024-01-01T11:40Z", 3, 60, _values(FAULTY_NOISE, 700), first_seq=10_000)  # repeats
    pilot.series(tail, "2024-01-01Z", 1440, 60, _values(TAIL_NOISE))
    pilot.faulty, pilot.tail, pilot.silent = faulty, tail, silent
    return pilot


def _scored(db, rubric, pilot) -> tuple[PilotScore, dict[str, DeviceMetrics]]:
    result = score_pilot(db, pilot.pilot_id, rubric, as_of=AS_OF)
    return result, {m.device_id: m for m in result.devices}


def test_out_of_range_readings_are_delivered_and_fail_qc_and_a_long_run_of_them_is_a_quality_incident(
        db, rubric, faulty_pilot):
    _, m = _scored(db, rubric, faulty_pilot)
    faulty = m[faulty_pilot.faulty]
    assert (faulty.readings, faulty.duplicates, faulty.delivered) == (1373, 3, 1370)
    assert (faulty.expected, faulty.completeness) == (1440, 1370 / 1440)  # the 7 failed readings count
    # slots of 3 minutes: 0..299 before the silence, 310..466 after it (1398 and 1399 are in slot 466)
    assert (faulty.slots, faulty.slots_hit, faulty.availability) == (480, 457, 457 / 480)
    assert (faulty.qc_pass, faulty.qc_suspect, faulty.qc_fail, faulty.valid) == (1362, 1, 7, 1363)
    assert faulty.qc_tests["noise_dba__gross"] == {"pass": 1362, "suspect": 1, "fail": 7, "not_evaluated": 0}
    # the first and the last delivered reading have no neighbour to spike against
    assert faulty.qc_tests["temperature_c__spike"] == {"pass": 1368, "suspect": 0, "fail": 0, "not_evaluated": 2}
    assert faulty.qc_tests["pm25_ugm3__gross"] == {"pass": 0, "suspect": 0, "fail": 0, "not_evaluated": 1370}
    # 100..104: five minutes to the next valid reading, an incident; 300..301: two minutes, not one
    assert faulty.quality_incidents == [Incident(_at(100), _at(105), 300.0, False, ["noise_dba__gross"])]


def test_outages_are_silences_closed_or_open_by_one_definition(db, rubric, faulty_pilot):
    _, m = _scored(db, rubric, faulty_pilot)
    faulty, tail, silent = (m[d] for d in (faulty_pilot.faulty, faulty_pilot.tail, faulty_pilot.silent))
    # from the last delivered reading before to the next one, or to the window end (then open)
    assert faulty.outage_periods == [Period(_at(899), _at(930), 31 * 60.0, False),
                                     Period(_at(1399), _at(1440), 41 * 60.0, True)]
    assert (faulty.outages, faulty.recovered_outages, faulty.mttr_s, faulty.down_s, faulty.lost) == (
        2, 1, 31 * 60.0, 72 * 60.0, False)
    assert (tail.outages, tail.availability, tail.completeness) == (0, 1.0, 1.0)
    assert tail.quality_incidents == [Incident(_at(1430), _at(1440), 600.0, True, ["noise_dba__gross"])]
    assert silent.outage_periods == [Period(_at(0), _at(1440), 86400.0, True)] and silent.lost


def test_the_fleet_pools_delivery_and_quality_apart(db, rubric, faulty_pilot):
    result, _ = _scored(db, rubric, faulty_pilot)
    pooled = result.fleet.pooled
    assert pooled["availability"] == (457 + 480 + 0) / 1440
    assert pooled["completeness"] == (1370 + 1440 + 0) / (3 * 1440)
    assert pooled["qc_fail_share"] == (7 + 10) / (1370 + 1440)
    assert pooled["qc_suspect_share"] == 1 / (1370 + 1440)
    assert result.fleet.components["quality"] == 1 - 17 / 2810 - 1 / 2810 / 2
    assert (pooled["outages"], pooled["quality_incidents"]) == (2 + 0 + 1, 1 + 1 + 0)


def test_rollups_give_the_raw_figures_of_the_faulty_pilot(db, rubric, faulty_pilot):
    for as_of in (AS_OF, datetime(2024, 1, 1, 12, tzinfo=UTC)):
        window = pilot_window(db, load_pilot(db, faulty_pilot.pilot_id), rubric.rubric, as_of)
        summed = device_metrics(db, rubric.rubric, window.scored, {})
        raw = raw_device_metrics(db, rubric.rubric, window.scored, {})
        for s, r in zip(summed, raw, strict=True):
            for field in dataclasses.fields(DeviceMetrics):
                a, b = getattr(s, field.name), getattr(r, field.name)
                if field.name.startswith("latency_") and b is not None:
                    assert a == pytest.approx(b, rel=0.01)
                else:
                    assert a == b, (s.device_id, field.name)


def test_an_impossible_battery_level_fails_qc_and_stays_out_of_the_battery_trend(db, rubric, make_pilot):
    """Rubric v3 holds battery_pct to 0..100 %: a reported 150 % is stored, fails QC, and the battery
    trend reads only the valid readings (the level falls 0.001 % a minute: -1.44 % a day)."""
    pilot = make_pilot(starts_at="2024-01-01Z", ends_at="2024-01-02Z")
    device = pilot.device("battery")
    pilot.series(device, "2024-01-01Z", 1440, 60,
                 _values("55") + ", CASE WHEN i IN (600, 601) THEN 150 ELSE 100 - i * 0.001 END AS battery_pct")
    _, m = _scored(db, rubric, pilot)
    metrics = m[device]
    assert metrics.qc_tests["battery_pct__gross"] == {"pass": 1438, "suspect": 0, "fail": 2, "not_evaluated": 0}
    assert (metrics.delivered, metrics.qc_fail) == (1440, 2)
    assert metrics.battery_slope_pct_per_day == pytest.approx(-1.44, rel=1e-9)
    window = pilot_window(db, load_pilot(db, pilot.pilot_id), rubric.rubric, AS_OF)
    raw = {r.device_id: r for r in raw_device_metrics(db, rubric.rubric, window.scored, {})}
    assert raw[device].battery_slope_pct_per_day == pytest.approx(metrics.battery_slope_pct_per_day, rel=1e-12)
    assert raw[device].qc_tests == metrics.qc_tests

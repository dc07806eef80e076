"""Fleet aggregation, gates and verdict on whole simulated pilots, and rubric validation."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pilotlab.errors import RubricError
from scoring.rubric import load_rubric, load_rubric_bytes
from scoring.scorer import score_pilot

ENV = "20 + (i % 7) * 0.1 AS temperature_c, 50 + (i % 5) AS humidity_pct, 100 - i * 0.0001 AS battery_pct"
TRACKER = "'3d' AS fix_type, 37.5 AS lat, 127.0 AS lon, 5.0 AS accuracy_m, 90 AS battery_pct"
SWITCH = "true AS relay_on, 10 + (i % 3) AS power_w, i AS energy_wh, 'heartbeat' AS trigger"
DAYS = 28
N = DAYS * 288  # readings at 300 s


def _fleet(pilot, per_kind: int = 3, **device_args) -> list[str]:
    ids = []
    for kind, values in (("env_sensor", ENV), ("location_tracker", TRACKER), ("smart_switch", SWITCH)):
        for k in range(per_kind):
            dev = pilot.device(f"{kind}-{k}", kind, 300, claimed_battery_days=365 if kind == "env_sensor" else None,
                               **device_args)
            pilot.series(dev, "2024-01-01Z", N, 300, values)
            ids.append(dev)
    return ids


def test_a_clean_four_week_pilot_is_eligible(db, rubric, make_pilot):
    pilot = make_pilot(ends_at="2024-01-29Z")
    _fleet(pilot)
    result = score_pilot(db, pilot.pilot_id, rubric)
    f = result.fleet
    assert f.fleet["scored"] == 9 and f.fleet["excluded"] == 0
    assert f.pooled["availability"] == 1.0 and f.pooled["completeness"] == 1.0 and f.pooled["qc_fail_share"] == 0.0
    assert all(g.passed for g in f.gates)
    assert f.components["battery"] == 1.0  # 0.0288 %/day: 3472 days projected against 365 claimed
    assert f.score == 100.0 and f.verdict == "eligible"
    assert len(result.daily_counts) == 9 * DAYS and {c[2] for c in result.daily_counts} == {288}


def test_an_unplanned_silence_fails_availability_and_attrition_gates(db, rubric, make_pilot):
    pilot = make_pilot(ends_at="2024-01-29Z")
    _fleet(pilot)
    silent = pilot.device("env-silent", "env_sensor", 300)
    pilot.series(silent, "2024-01-01Z", 288 * 7, 300, ENV)  # one week, then silent to the end
    f = score_pilot(db, pilot.pilot_id, rubric).fleet
    assert f.fleet["lost"] == 1 and f.pooled["attrition"] == pytest.approx(0.1)
    assert f.pooled["availability"] == pytest.approx((9 * 2688 + 672) / (10 * 2688))
    failed = {g.name for g in f.gates if not g.passed}
    assert failed == {"min_availability"}  # 0.925 < 0.95; attrition 0.1 is at the ceiling, not above
    assert f.verdict == "not_eligible"


def test_too_many_planned_decommissions_make_the_pilot_invalid(db, rubric, make_pilot):
    pilot = make_pilot(ends_at="2024-01-29Z")
    _fleet(pilot)
    for k in range(3):
        pilot.device(f"retired-{k}", "env_sensor", 300, decommissioned_at="2024-01-10Z", reason="site closed")
    f = score_pilot(db, pilot.pilot_id, rubric).fleet
    assert f.fleet["excluded"] == 3 and f.pooled["excluded_share"] == 0.25
    assert f.verdict == "invalid"


def test_a_short_pilot_fails_the_duration_gate(db, rubric, make_pilot):
    pilot = make_pilot(ends_at="2024-01-08Z")
    _fleet(pilot)
    f = score_pilot(db, pilot.pilot_id, rubric).fleet
    assert [g.name for g in f.gates if not g.passed] == ["min_duration_days"]
    assert f.verdict == "not_eligible"


def test_days_and_daily_counts_are_in_the_pilots_time_zone(db, rubric, make_pilot):
    pilot = make_pilot(starts_at="2024-01-01T00:00+09:00", ends_at="2024-01-03T00:00+09:00", timezone="Asia/Seoul")
    dev = pilot.device("env", commissioned_at="2023-12-01Z")
    pilot.series(dev, "2023-12-31T15:00Z", 2 * 288, 300, ENV)
    result = score_pilot(db, pilot.pilot_id, rubric)
    assert result.daily_counts == [[dev, "2024-01-01", 288], [dev, "2024-01-02", 288]]


def test_rubric_v2_and_v1_still_load_with_their_own_rules():
    v2, v1 = load_rubric(version="2"), load_rubric(version="1")
    assert (v2.source, v2.rubric.version, v1.source, v1.rubric.version) == ("v2.yaml", "2", "v1.yaml", "1")
    assert (v2.rubric.delivery.counts, v2.rubric.delivery.completeness) == ("arrived", "per_measurement")
    assert (v1.rubric.delivery.counts, v1.rubric.delivery.completeness, v1.rubric.quality) == (
        "valid", "per_reading", None)
    # v1's bytes are unchanged: the digest its records name
    assert v1.sha256 == "1bdfe3f6c6f64d22389d95b654189c69f7d41d70784a7af717b6d8e0f8cba403"


def test_delivery_counting_arrivals_needs_quality_incidents_and_counting_valid_ones_refuses_them():
    v2 = (Path(__file__).parents[2] / "scoring" / "rubrics" / "v2.yaml").read_text()
    without = v2.replace("quality:\n  incident_factor: 3", "")
    with pytest.raises(RubricError, match=r"delivery.counts 'arrived' needs a quality section"):
        load_rubric_bytes(without.encode(), "bad.yaml")
    with pytest.raises(RubricError, match=r"quality incidents need delivery.counts 'arrived'"):
        load_rubric_bytes(v2.replace("counts: arrived", "counts: valid").encode(), "bad.yaml")
    with pytest.raises(RubricError, match=r"delivery.completeness: Input should be 'per_reading' or 'per_measurement'"):
        load_rubric_bytes(v2.replace("completeness: per_measurement", "completeness: per_day").encode(), "bad.yaml")


def test_a_rubric_that_does_not_validate_is_refused_naming_the_field(tmp_path: Path):
    good = (Path(__file__).parents[2] / "scoring" / "rubrics" / "v2.yaml").read_text()
    with pytest.raises(RubricError, match=r"gates\.min_availability: Input should be less than or equal to 1"):
        load_rubric_bytes(good.replace("min_availability: 0.95", "min_availability: 95").encode(), "bad.yaml")
    with pytest.raises(RubricError, match=r"qc\.env_sensor\.temperature_c: .*user_span must lie within sensor_span"):
        load_rubric_bytes(good.replace("user_span: [-25, 50]", "user_span: [-25, 90]").encode(), "bad.yaml")
    with pytest.raises(RubricError, match=r"weights\.speed: Extra inputs are not permitted"):
        load_rubric_bytes(good.replace("  battery: 0.10\n", "  battery: 0.10\n  speed: 1\n").encode(), "bad.yaml")
    with pytest.raises(RubricError, match="not valid YAML"):
        load_rubric_bytes(b"version: [1", "bad.yaml")


def test_scoring_without_a_window_yet_is_refused(db, rubric, make_pilot):
    pilot = make_pilot(starts_at="2030-01-01Z", ends_at=None, status="planned")
    with pytest.raises(Exception, match="no scoring window yet"):
        score_pilot(db, pilot.pilot_id, rubric, as_of=datetime(2029, 1, 1, tzinfo=UTC))

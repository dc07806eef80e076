"""Residents' feedback in a score: rubric v3 weighs a residents' satisfaction component (mean rating
mapped 1..5 -> 0..1, not evaluated under its minimum number of ratings) and a record's evidence
counts the feedback exactly. v1 and v2 load and score as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from pilotlab.errors import RubricError
from scoring.daily import rubric_digest
from scoring.issuing import issue_record
from scoring.records import verify
from scoring.rubric import load_rubric, load_rubric_bytes
from scoring.scorer import score_pilot, summary
from scoring.signing import generate_key
from tests.scoring.conftest import ENV_OK

V3 = Path(__file__).parents[2] / "scoring" / "rubrics" / "v3.yaml"


def test_rubric_v3_is_the_default_and_is_v2_with_residents_switch_commands_and_more_gross_ranges() -> None:
    v3, v2 = load_rubric(), load_rubric(version="2")
    assert (v3.source, v3.rubric.version) == ("v3.yaml", "3")
    assert v3.rubric.weights.residents == 0.10 and v3.rubric.residents is not None
    assert v3.rubric.residents.min_ratings == 10
    same = v3.rubric.model_dump(exclude={"version", "residents", "switch_commands"})  # the components v3 added
    same["weights"].pop("residents")
    same["weights"].pop("switch_commands")
    # and the gross range of the measurements v2 left unchecked (an impossible value fails QC)
    added = {"env_sensor": ["battery_pct"], "smart_switch": ["energy_wh"],
             "location_tracker": ["altitude_m", "battery_pct", "lat", "lon"]}
    for kind, metrics in added.items():
        for metric in metrics:
            spans = same["qc"][kind].pop(metric)
            assert (spans["spike"], spans["rate_of_change"], spans["flat_line"]) == (None, None, None)
    assert same == v2.rubric.model_dump(exclude={"version"})
    assert v2.rubric.residents is None and v2.rubric.weights.residents == 0


def test_v1_and_v2_keep_the_parameter_digests_their_day_summaries_are_stored_under() -> None:
    assert rubric_digest(load_rubric(version="1").rubric) == "a591395c5772b495b43eda02c2c37420fac6b4609615acc4ffcdd3698eb0de4c"
    assert rubric_digest(load_rubric(version="2").rubric) == "bd911fdb6ca928940aeecfe5c44851d491c6c2a418b6b3017c60bad803e1f004"


def test_a_residents_weight_without_its_section_is_refused_naming_the_field() -> None:
    text = V3.read_text()
    without = yaml.safe_load(text)
    del without["residents"]
    with pytest.raises(RubricError, match=r"rubric bad.yaml: .*weights.residents needs a residents section"):
        load_rubric_bytes(yaml.safe_dump(without).encode(), "bad.yaml")
    with pytest.raises(RubricError, match=r"residents.min_ratings: Input should be greater than or equal to 1"):
        load_rubric_bytes(text.replace("min_ratings: 10", "min_ratings: 0").encode(), "bad.yaml")


# --- a pilot whose residents rated it ------------------------------------------------------------
# Three env sensors reading cleanly every minute of 2024-01-01 (availability, completeness, quality
# and timeliness all 1), and feedback written straight into the table, so every figure is known.
RATED = [  # (stars, category, comment status or None, minute of the day it was sent)
    (5, "works_well", "approved", 10), (5, "works_well", None, 20), (5, "works_well", "pending", 30),
    (5, "placement", None, 40), (5, "works_well", None, 50),
    (4, "works_well", "approved", 60), (4, "noise_light", None, 70), (4, "other", "rejected", 80), (4, "works_well", None, 90),
    (3, "noise_light", "pending", 100), (2, "placement", None, 110), (1, "privacy", "approved", 1439),
]  # 12 ratings, 47 stars: mean 47/12, component (47/12 - 1) / 4 = 35/48


def _feedback(db, pilot_id: str, device_id: str | None, stars: int, category: str, status: str | None,
              sent: datetime) -> None:
    comment = None if status in (None, "rejected") else f"{category} {stars}★ 의견"
    db.execute("INSERT INTO feedback (pilot_id, device_id, submitted_at, rating, category, comment, comment_status, "
               "content_sha256) VALUES (%s, %s, %s, %s, %s, %s, %s, sha256(%s::bytea))",
               (pilot_id, device_id, sent, stars, category, comment, status, f"{stars}{category}{sent}".encode()))


@pytest.fixture
def rated_pilot(db, make_pilot):
    """The pilot, its ratings in RATED (on its devices and on the pilot itself), and feedback that must
    not count: before the window, at its end, and another pilot's."""
    pilot = make_pilot()
    devices = [pilot.device(f"env{n}") for n in range(3)]
    for device in devices:
        pilot.series(device, "2024-01-01Z", 1440, 60, ENV_OK)
    for n, (stars, category, status, minute) in enumerate(RATED):
        _feedback(db, pilot.pilot_id, devices[n % 3] if n % 4 else None, stars, category, status,
                  DAY + timedelta(minutes=minute))
    _feedback(db, pilot.pilot_id, devices[0], 1, "not_working", None, DAY - timedelta(seconds=1))
    _feedback(db, pilot.pilot_id, None, 1, "not_working", None, DAY + timedelta(days=1))
    other = f"{pilot.pilot_id}-other"
    db.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at, status) "
               "SELECT %s, firm_id, 'Other', site, starts_at, status FROM pilot WHERE id = %s", (other, pilot.pilot_id))
    _feedback(db, other, None, 1, "not_working", None, DAY + timedelta(hours=1))
    return pilot


DAY = datetime(2024, 1, 1, tzinfo=UTC)
V2_WEIGHTS = {"availability": 0.25, "completeness": 0.20, "quality": 0.25, "timeliness": 0.10}


def test_seeded_ratings_give_the_residents_component_and_the_record_counts_them_exactly(db, rated_pilot, tmp_path):
    key = generate_key(tmp_path / "signing.pem")
    issued = issue_record(db, rated_pilot.pilot_id, load_rubric(), key)
    record = verify(issued.document, key.public_key())
    assert record["rubric"]["version"] == "3"
    component = (47 / 12 - 1) / 4
    assert record["components"] == {**dict.fromkeys(V2_WEIGHTS, 1.0), "residents": round(component, 6)}
    assert record["score"] == round(100 * (sum(V2_WEIGHTS.values()) + 0.10 * component) / (sum(V2_WEIGHTS.values()) + 0.10), 6)
    assert record["evidence"]["residents"] == {
        "ratings": 12, "mean": round(47 / 12, 6), "distribution": {"1": 1, "2": 1, "3": 1, "4": 4, "5": 5},
        "categories": {"noise_light": 2, "not_working": 0, "other": 1, "placement": 2, "privacy": 1, "works_well": 6},
        "comments": {"approved": 3, "pending": 2, "rejected": 1}, "min_ratings": 10, "evaluated": True,
        "component": round(component, 6),
        "formula": "(mean rating - 1) / 4 over the window's ratings; not evaluated below min_ratings"}


def test_under_the_minimum_of_ratings_the_component_is_not_evaluated_and_its_weight_goes_to_the_others(
        db, rated_pilot):
    db.execute("DELETE FROM feedback WHERE pilot_id = %s AND rating IN (3, 4) AND category <> 'works_well'",
               (rated_pilot.pilot_id,))  # 12 - 3 = 9 ratings in the window, one under the minimum
    v3 = score_pilot(db, rated_pilot.pilot_id, load_rubric())
    v2 = score_pilot(db, rated_pilot.pilot_id, load_rubric(version="2"))
    assert v3.residents is not None and (v3.residents.ratings, v3.residents.evaluated) == (9, False)
    assert "residents" not in v3.fleet.components and v3.residents.component is None
    assert v3.fleet.score == v2.fleet.score == pytest.approx(100.0)
    assert v2.residents is None and "residents" not in summary(v2)

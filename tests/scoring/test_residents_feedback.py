"""Residents' feedback in a score: rubric v3 weighs a residents' satisfaction component (mean rating
mapped 1..5 -> 0..1, not evaluated under its minimum number of ratings) and a record's evidence
counts the feedback exactly. v1 and v2 load and score as before."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pilotlab.errors import RubricError
from scoring.daily import rubric_digest
from scoring.rubric import load_rubric, load_rubric_bytes

V3 = Path(__file__).parents[2] / "scoring" / "rubrics" / "v3.yaml"


def test_rubric_v3_is_the_default_and_is_v2_with_a_residents_component() -> None:
    v3, v2 = load_rubric(), load_rubric(version="2")
    assert (v3.source, v3.rubric.version) == ("v3.yaml", "3")
    assert v3.rubric.weights.residents == 0.10 and v3.rubric.residents is not None
    assert v3.rubric.residents.min_ratings == 10
    same = v3.rubric.model_dump(exclude={"version", "residents"})
    same["weights"].pop("residents")
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

"""The contract's plausible ranges are what quality control holds a measurement to: each
measurement's published description gives rubric v1's gross range (sensor span) for its kind,
and one that rubric v1 does not range-check says it is stored as sent. (Rubric v1 is frozen: a
change is a new version, so these descriptions stay true.)"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from devices.kinds import Channel, DeviceKind
from devices.telemetry import MEASUREMENT_LIMIT, PAYLOAD_MODELS

RUBRIC_V1 = Path(__file__).parents[2] / "scoring" / "rubrics" / "v1.yaml"
PLAUSIBLE = re.compile(r"Plausible \(QC gross range, rubric v1\): (-?[0-9.]+) … (-?[0-9.]+);")
NOT_MEASUREMENTS = {"lat": (-90, 90), "lon": (-180, 180), "seq": (0, 2**32 - 1), "uptime_s": (0, 2**32 - 1)}


def _numbers(model: type) -> dict[str, dict]:
    """The number and integer fields of a payload model (not `ts`, a time), by name."""
    properties = model.model_json_schema()["properties"]  # type: ignore[attr-defined]
    return {name: spec for name, spec in properties.items() if name != "ts"
            and any(choice.get("type") in ("number", "integer") for choice in spec.get("anyOf", [spec]))}


def test_each_measurement_description_gives_rubric_v1s_sensor_span_or_says_qc_does_not_range_check_it() -> None:
    spans = {(kind, metric): tuple(qc["sensor_span"])
             for kind, metrics in yaml.safe_load(RUBRIC_V1.read_text())["qc"].items() for metric, qc in metrics.items()}
    documented = {}
    for kind in DeviceKind:
        for channel in Channel:
            for name, spec in _numbers(PAYLOAD_MODELS[kind, channel]).items():
                if name in NOT_MEASUREMENTS:
                    continue
                found = PLAUSIBLE.search(spec["description"])
                if channel is Channel.TELEMETRY and found:
                    documented[kind.value, name] = (float(found[1]), float(found[2]))
                else:
                    assert found is None and "No QC range: stored as sent" in spec["description"], (kind, channel, name)
    assert documented == {key: (float(low), float(high)) for key, (low, high) in spans.items()}


def test_measurements_are_bounded_only_by_what_can_be_stored_and_coordinates_by_the_globe() -> None:
    for model in set(PAYLOAD_MODELS.values()):
        for name, spec in _numbers(model).items():
            (number,) = [c for c in spec.get("anyOf", [spec]) if c.get("type") != "null"]
            bounds = (number["minimum"], number["maximum"])
            expected = NOT_MEASUREMENTS.get(name, (-MEASUREMENT_LIMIT, MEASUREMENT_LIMIT))
            assert bounds == expected, (model.__name__, name)

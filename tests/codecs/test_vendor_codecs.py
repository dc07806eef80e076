"""Real device models' codecs, written here from each vendor's published payload format, give the
vendor's own example outputs for the vendor's example uplinks (TTN LoRaWAN Device Repository)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from devices.codecs.javascript import JsCodecCache
from pilotlab.errors import JsCodecError, JsCodecFailure

HERE = Path(__file__).parent
MODELS: list[dict[str, Any]] = yaml.safe_load((HERE / "vendor_examples.yaml").read_text())["models"]
EXAMPLES = [pytest.param(model, example, id=f"{model['model']}: {example['description']}")
            for model in MODELS for example in model["examples"]]
CACHE = JsCodecCache()


def source_of(model: dict[str, Any]) -> str:
    return (HERE / "vendor_codecs" / model["codec"]).read_text()


def test_the_examples_cover_six_models_of_the_three_kinds() -> None:
    assert len(MODELS) >= 6
    assert {model["kind"] for model in MODELS} == {"env_sensor", "smart_switch", "location_tracker"}
    for model in MODELS:
        assert model["source"].startswith("vendor/") and " @ " in model["source"]
        assert (HERE / "vendor_codecs" / model["codec"]).is_file()


@pytest.mark.parametrize(("model", "example"), EXAMPLES)
def test_our_codec_gives_the_vendors_expected_output_for_the_vendors_example_uplink(model, example) -> None:
    key = (model["model"], 1)
    expected = example["output"]
    if "errors" in expected:
        with pytest.raises(JsCodecError) as caught:
            CACHE.decode(key, source_of(model), bytes(example["bytes"]), example["fPort"])
        assert caught.value.reason is JsCodecFailure.ERRORS
        assert caught.value.detail == "; ".join(expected["errors"])
    else:
        decoded = CACHE.decode(key, source_of(model), bytes(example["bytes"]), example["fPort"])
        assert decoded.data == expected["data"]
        # == holds True == 1 and "1" != 1 apart only partly: booleans and texts keep their type too
        for name, value in expected["data"].items():
            assert isinstance(decoded.data[name], bool | str) == isinstance(value, bool | str), name


def test_the_vendor_codecs_use_each_of_the_three_entry_forms() -> None:
    forms = {CACHE.codec(("form", model["model"]), source_of(model)).form for model in MODELS}
    assert forms == {"decodeUplink", "Decoder", "Decode"}


def test_the_trackers_position_frames_built_from_the_vendors_layouts_decode_to_the_position() -> None:
    # The repository's AT101 example carries no position; these frames are ours, built from the
    # documented layouts, so the tracker codecs are checked where a reading's position comes from.
    at101 = next(model for model in MODELS if model["model"] == "Milesight AT101")
    frame = (bytes([0x01, 0x75, 87, 0x04, 0x88]) + (-33_868_800).to_bytes(4, "little", signed=True)
             + (151_209_300).to_bytes(4, "little", signed=True) + bytes([0x12]))
    assert CACHE.decode(("at101", 1), source_of(at101), frame, 85).data == {
        "battery": 87, "latitude": -33.8688, "longitude": 151.2093, "motion_status": "moving", "geofence_status": "outside"}
    oyster = next(model for model in MODELS if model["model"] == "Digital Matter Oyster")
    no_fix = ((-338_688_000).to_bytes(4, "little", signed=True) + (1_512_093_000).to_bytes(4, "little", signed=True)
              + bytes([0x02 | (16 << 2), 12, 160]))
    decoded = CACHE.decode(("oyster", 1), source_of(oyster), no_fix, 1)
    assert decoded.warnings == ["fix failed"] and "latitudeDeg" not in decoded.data
    assert decoded.data["cached"] == {"latitudeDeg": -33.8688, "longitudeDeg": 151.2093, "headingDeg": 90, "speedKmph": 12}
    assert decoded.data["batV"] == 4.0

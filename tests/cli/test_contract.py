"""The MQTT contract for firmware makers: `pilotlab contract schema` prints the JSON Schema the
payload models give, the committed copy and the README's field table are those, and the schema
accepts exactly what ingest accepts, but for the gaps the README names."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from devices.contract import decode_payload
from devices.contract_schema import contract_schema, field_table, schema_text
from devices.kinds import Channel, DeviceKind
from devices.telemetry import PAYLOAD_MODELS
from ingest.decode import EARLIEST_DEVICE_TIME
from pilotlab.errors import MessageRejected
from tests.cli.test_cli import run
from tests.ingest import payloads

REPO = Path(__file__).parents[2]
COMMITTED = REPO / "devices" / "contract-v1.schema.json"
SCHEMA = contract_schema()
BASE = {Channel.STATUS: payloads.status, Channel.EVENT: payloads.event}
TELEMETRY = {DeviceKind.SMART_SWITCH: payloads.switch, DeviceKind.LOCATION_TRACKER: payloads.tracker,
             DeviceKind.ENV_SENSOR: payloads.environment}


def _validator(kind: DeviceKind, channel: Channel) -> Draft202012Validator:
    ref = SCHEMA["x-pilotlab-payloads"][kind.value][channel.value]["$ref"]
    return Draft202012Validator({**SCHEMA, "$ref": ref})


def _ingest_accepts(kind: DeviceKind, channel: Channel, payload: Any) -> bool:
    try:
        reading = decode_payload(kind, channel, orjson.dumps(payload))
    except MessageRejected:
        return False
    return reading.ts >= EARLIEST_DEVICE_TIME and reading.ts <= datetime.now(UTC)


def test_the_schema_command_prints_the_committed_schema_which_the_models_give() -> None:
    printed = run("contract", "schema")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == schema_text() == COMMITTED.read_text(encoding="utf-8"), (
        "devices/contract-v1.schema.json is stale: `pilotlab contract schema > devices/contract-v1.schema.json`")
    Draft202012Validator.check_schema(json.loads(printed.stdout))
    assert set(SCHEMA["x-pilotlab-payloads"]) == {k.value for k in DeviceKind}


def test_the_readme_field_table_is_the_one_the_models_give() -> None:
    printed = run("contract", "table")
    assert printed.returncode == 0 and printed.stdout == field_table()
    assert field_table() in (REPO / "README.md").read_text(encoding="utf-8"), (
        "the README's field table is stale: paste `pilotlab contract table` under *Fields per kind and channel*")


def _mutations(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The payload with each field left out, given each wrong type, pushed past any range, plus an
    unknown field: every way a firmware bug shows."""
    out = [{**payload, "unknown_field": 1}]
    for field in payload:
        out.append({k: v for k, v in payload.items() if k != field})
        for wrong in ("21.5", True, None, {"a": 1}, [1], 1e13, -1e13, 1.5, 7, -1, "x" * 65, "Button", 0):
            out.append({**payload, field: wrong})
    return out


def _corpus() -> list[tuple[DeviceKind, Channel, dict[str, Any]]]:
    cases = []
    for kind in DeviceKind:
        for channel in Channel:
            base = (TELEMETRY[kind] if channel is Channel.TELEMETRY else BASE[channel])(1)
            cases += [(kind, channel, p) for p in [base, *_mutations(base)]]
    tracker, env = DeviceKind.LOCATION_TRACKER, DeviceKind.ENV_SENSOR
    cases += [(tracker, Channel.TELEMETRY, payloads.tracker(1, lon=None)),
              (tracker, Channel.TELEMETRY, {k: v for k, v in payloads.tracker(1).items() if k not in ("lat", "lon")}),
              (tracker, Channel.TELEMETRY, {k: v for k, v in payloads.tracker(1, fix_type="none").items() if k != "lat"}),
              (tracker, Channel.TELEMETRY, {k: v for k, v in payloads.tracker(1, fix_type="none").items()
                                            if k not in ("lat", "lon")}),
              (env, Channel.TELEMETRY, {"ts": payloads.now_ms(), "seq": 1, "battery_pct": 50}),
              (env, Channel.TELEMETRY, {"ts": payloads.now_ms(), "seq": 1, "co2_ppm": 400, "temperature_c": None})]
    for ts in ("2026-11-25 09:30:00Z", "2026-11-25T09:30Z", "2026-11-25T09:30:00+0900", "1764063000250",
               1764063000.25, 1764063000, "2026-11-25T09:30:00.250+09:00", "2026-11-25t09:30:00z", 946684800000):
        cases.append((DeviceKind.SMART_SWITCH, Channel.STATUS, payloads.status(1, ts=ts)))
    return cases


INTEGER_FIELDS = {name for model in SCHEMA["$defs"].values() for name, spec in model["properties"].items()
                  if "integer" in {s.get("type") for s in spec.get("anyOf", [spec])}}


def _integral_float(payload: dict[str, Any]) -> bool:
    """An integer field holding a float with no fraction (1e13, 42.0): an integer to JSON Schema,
    not to the contract."""
    return any(isinstance(payload.get(f), float) and payload[f].is_integer() for f in INTEGER_FIELDS)


def test_the_schema_accepts_exactly_what_ingest_accepts_on_every_mutation_of_every_payload() -> None:
    cases = _corpus()
    disagreements = [(kind.value, channel.value, payload) for kind, channel, payload in cases
                     if _validator(kind, channel).is_valid(payload) != _ingest_accepts(kind, channel, payload)]
    assert len(cases) > 500
    assert [d for d in disagreements if not _integral_float(d[2])] == []
    for kind, channel, payload in disagreements:  # the gap the README names, in one direction only
        assert _validator(DeviceKind(kind), Channel(channel)).is_valid(payload)
    accepted = sum(_ingest_accepts(kind, channel, payload) for kind, channel, payload in cases)
    assert 30 < accepted < len(cases) - 300  # both answers are well represented


@pytest.mark.parametrize("payload", [{"seq": 42.0}, {"uptime_s": 7.0}],
                         ids=["integer-with-a-fraction", "uptime-with-a-fraction"])
def test_an_integer_written_with_a_fraction_is_the_gap_the_readme_names(payload: dict[str, Any]) -> None:
    status = {**payloads.status(1), **payload}
    assert _validator(DeviceKind.ENV_SENSOR, Channel.STATUS).is_valid(status)
    assert not _ingest_accepts(DeviceKind.ENV_SENSOR, Channel.STATUS, status)


def test_every_readme_example_is_valid_for_the_schema_and_for_ingest() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## MQTT contract v1"):readme.index("### Dead letters")]
    examples = [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", section, re.S)]
    covered = set()
    for example in examples:
        fits = {model.__name__ for (kind, channel), model in PAYLOAD_MODELS.items()
                if _validator(kind, channel).is_valid(example) and _ingest_accepts(kind, channel, example)}
        assert fits, example
        covered |= fits
    assert covered == {model.__name__ for model in PAYLOAD_MODELS.values()}

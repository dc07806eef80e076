"""MQTT contract v1 for firmware makers: the payloads as JSON Schema (draft 2020-12) and as the
README's field table, both generated from the payload models (devices.telemetry).

`pilotlab contract schema` prints the schema, `pilotlab contract table` the table; the committed
copies (devices/contract-v1.schema.json, the README's table) are held equal to the models by a
test. Each payload model is one entry of `$defs`; `x-pilotlab-payloads` says which one a device of
each kind sends on each channel. What ingest checks beyond JSON Schema: an integer written with a
fraction (`42.0`: JSON Schema calls it an integer, the contract does not), a key repeated in an
object, and a time more than a day ahead of the platform's clock. A field's `minimum`/`maximum`
are what ingest enforces (devices.telemetry: storage and meaning); the plausible range quality
control holds a measurement to is in its description, not a constraint.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from devices.kinds import Channel, DeviceKind
from devices.telemetry import PAYLOAD_MODELS, Envelope

SCHEMA_ID = "urn:pilotlab:mqtt-contract:v1"
TOPIC = "pilotlab/v1/{pilot_id}/{device_id}/{channel}"


def _models() -> list[type[Envelope]]:
    return list(dict.fromkeys(PAYLOAD_MODELS.values()))  # each once, in kind and channel order


def contract_schema() -> dict[str, Any]:
    """The JSON Schema document of every contract payload."""
    _, generated = models_json_schema([(model, "validation") for model in _models()],
                                      ref_template="#/$defs/{model}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "pilotlab MQTT contract v1: payloads",
        "description": (f"UTF-8 JSON published at QoS 1 to {TOPIC}, at most 16 KiB. Validate a payload against "
                        "the $defs entry x-pilotlab-payloads names for the device's kind and the channel. Also "
                        "refused: integers written with a fraction (42.0), a key repeated in an object, a time "
                        "more than a day ahead. A number's minimum and maximum are what ingest enforces, for "
                        "storage and meaning only (a measurement: finite, within ±1e12; lat and lon: on Earth). "
                        "A measurement outside the plausible range its description gives is stored, not refused, "
                        "and fails quality control's gross-range test in scoring."),
        "x-pilotlab-payloads": {kind.value: {channel.value: {"$ref": f"#/$defs/{PAYLOAD_MODELS[kind, channel].__name__}"}
                                             for channel in Channel} for kind in DeviceKind},
        "$defs": generated["$defs"],
    }


def schema_text() -> str:
    """The schema as committed: stable key order, UTF-8, a final newline."""
    return json.dumps(contract_schema(), indent=2, ensure_ascii=False) + "\n"


def field_table() -> str:
    """Every field of every payload, as a Markdown table (the README's)."""
    rows = ["| payload | field | required | type | values | meaning |", "| --- | --- | --- | --- | --- | --- |"]
    envelope = list(Envelope.model_fields)
    for index, field in enumerate(envelope):
        rows.append(_row("every payload" if index == 0 else "", field, Envelope))
    for kind, channel, model in _payloads():
        label = f"`{kind}` telemetry" if kind != "*" else f"{channel} (any kind)"
        fields = [f for f in model.model_fields if f not in envelope]
        for index, field in enumerate(fields):
            rows.append(_row(label if index == 0 else "", field, model))
        for rule in model.model_json_schema().get("x-pilotlab-rules", []):
            rows.append(f"|  | *rule* |  |  |  | {rule} |")
    return "\n".join(rows) + "\n"


def _payloads() -> list[tuple[str, str, type[BaseModel]]]:
    shared = {model for (kind, channel), model in PAYLOAD_MODELS.items() if channel is not Channel.TELEMETRY}
    out: list[tuple[str, str, type[BaseModel]]] = [
        (kind.value, Channel.TELEMETRY.value, PAYLOAD_MODELS[kind, Channel.TELEMETRY]) for kind in DeviceKind]
    for channel in (Channel.STATUS, Channel.EVENT):
        model = PAYLOAD_MODELS[next(iter(DeviceKind)), channel]
        assert model in shared and all(PAYLOAD_MODELS[k, channel] is model for k in DeviceKind)
        out.append(("*", channel.value, model))
    return out


def _row(label: str, field: str, model: type[BaseModel]) -> str:
    schema = model.model_json_schema()
    spec = schema["properties"][field]
    required = "yes" if field in schema.get("required", []) else "no"
    kind, values = _type_and_values(spec)
    return f"| {label} | `{field}` | {required} | {kind} | {values} | {spec.get('description', '')} |"


def _type_and_values(spec: dict[str, Any]) -> tuple[str, str]:
    choices = [s for s in spec.get("anyOf", [spec]) if s.get("type") != "null"]
    nullable = len(choices) < len(spec.get("anyOf", [spec]))
    if len(choices) == 2 and {c.get("type") for c in choices} == {"string", "integer"}:
        return "time", "RFC 3339 text, or epoch ms"
    (one,) = choices
    kind = one.get("type", "any")
    if "enum" in one:
        kind, values = "one of", ", ".join(f"`{v}`" for v in one["enum"])
    elif "const" in one:
        kind, values = "one of", f"`{one['const']}`"
    elif kind in ("number", "integer"):
        values = _span(one)
    elif kind == "string":
        values = " ".join(part for part in (f"`{one['pattern'].strip('^$')}`" if "pattern" in one else "",
                                            f"≤ {one['maxLength']} characters" if "maxLength" in one else "") if part)
    else:
        values = ""
    if "default" in spec and spec["default"] is not None:
        values += f" (default `{spec['default']}`)"
    if nullable:
        kind += " or null"
    return kind, values


def _span(spec: dict[str, Any]) -> str:
    low, high = spec.get("minimum"), spec.get("maximum")
    shown = [f"{bound:,}" if isinstance(bound, int) or (float(bound).is_integer() and abs(bound) < 1e9)
             else f"{bound:g}".replace("e+", "e") for bound in (low, high) if bound is not None]
    if low is not None and high is not None:
        return f"{shown[0]} … {shown[1]}"
    if low is not None:
        return f"≥ {shown[0]}"
    if high is not None:
        return f"≤ {shown[0]}"
    return ""

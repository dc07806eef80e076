"""The MQTT contract v1 JSON Schema served by the API, without a key, equal to the committed file."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from fastapi.testclient import TestClient

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "devices" / "contract-v1.schema.json"


def test_the_contract_schema_is_served_without_a_key_as_committed(client: TestClient) -> None:
    answer = client.get("/contract/v1/schema", headers={"Authorization": ""})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/schema+json")
    assert answer.json() == json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    operation = client.get("/openapi.json").json()["paths"]["/contract/v1/schema"]["get"]
    assert operation["security"] == []


def test_each_kind_and_channel_has_a_schema_of_its_own_that_judges_payloads(client: TestClient) -> None:
    answer = client.get("/contract/v1/schema/smart_switch/telemetry", headers={"Authorization": ""})
    assert answer.status_code == 200
    schema = answer.json()
    validator = jsonschema.Draft202012Validator(schema)
    good = {"ts": "2024-05-01T12:00:00Z", "seq": 7, "relay_on": True, "power_w": 12.5, "energy_wh": 1000}
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "relay_on": "yes"})
    assert not validator.is_valid({k: v for k, v in good.items() if k != "relay_on"})
    status = client.get("/contract/v1/schema/env_sensor/status").json()
    assert jsonschema.Draft202012Validator(status).is_valid({"ts": 1714564800000, "seq": 1, "state": "online"})
    assert client.get("/contract/v1/schema/toaster/telemetry").status_code == 422

"""The API's role matrix: every endpoint (enumerated from the app itself) × every role, without a
key and with a bad one; and a firm never sees another firm's pilot, device, telemetry or record."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fastapi.routing
import psycopg
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from access import api_keys, credentials
from access.policy import SCOPED, ApiRole, rule_for
from api.app import create_app
from conformance.thresholds import load_thresholds
from devices.profiles import ProfileDefinition
from pilotlab.settings import Settings
from store import profiles, requirements


@dataclass(frozen=True)
class World:
    """Two firms, each with a pilot, a gateway, a device with telemetry and a record."""

    own: dict[str, str]
    foreign: dict[str, str]
    keys: dict[str, str]
    spare_key_id: str


def endpoints(app: fastapi.FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every API route, included routers flattened."""
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    routes = [(rc.original_route, rc.path) for rc in flatten(app.routes)] if flatten else [(r, r.path) for r in app.routes]
    return sorted((method, path) for route, path in routes if isinstance(route, APIRoute) for method in route.methods)


def _objects(conn: psycopg.Connection, tag: str) -> dict[str, str]:
    ids = {"firm_id": f"firm-{tag}", "pilot_id": f"pilot-{tag}", "gateway_id": f"gw-{tag}", "device_id": f"dev-{tag}",
           "record_id": f"{tag}" * 8, "profile_id": f"profile-{tag}", "run_id": f"cr_{tag * 8}",
           "report_id": f"{tag}" * 16}
    start = datetime.now(UTC) - timedelta(days=2)
    conn.execute("INSERT INTO firm (id, name) VALUES (%s, %s)", (ids["firm_id"], tag))
    conn.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at, status) VALUES (%s, %s, 'p', 's', %s, 'running')",
                 (ids["pilot_id"], ids["firm_id"], start))
    conn.execute("INSERT INTO gateway (id, pilot_id, protocol) VALUES (%s, %s, 'wifi')", (ids["gateway_id"], ids["pilot_id"]))
    conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, gateway_id, commissioned_at) "
                 "VALUES (%s, %s, 'env_sensor', 'wifi', 60, %s, %s)", (ids["device_id"], ids["pilot_id"], ids["gateway_id"], start))
    conn.execute("INSERT INTO telemetry (device_id, seq, device_time, ingest_time, channel, size_bytes, temperature_c) "
                 "VALUES (%s, 1, %s, %s, 'telemetry', 40, 21.5)", (ids["device_id"], start + timedelta(hours=1), start + timedelta(hours=1)))
    conn.execute("INSERT INTO reference_record (id, pilot_id, issued_at, rubric_version, verdict, score, key_id, document) "
                 "VALUES (%s, %s, now(), 'v1', 'eligible', 90, 'k', %s)", (ids["record_id"], ids["pilot_id"], b"{}"))
    conn.execute("INSERT INTO dead_letter (received_at, topic, payload, payload_sha256, reason, detail, pilot_id, device_id) "
                 "VALUES (now(), %s, %s, sha256('{'), 'malformed_json', 'x', %s, %s)",
                 (f"pilotlab/v1/{ids['pilot_id']}/{ids['device_id']}/telemetry", b"{", ids["pilot_id"], ids["device_id"]))
    credentials.issue(conn, "device", ids["device_id"])
    credentials.issue(conn, "gateway", ids["gateway_id"])
    profiles.create(conn, ids["profile_id"], ids["firm_id"], ProfileDefinition.model_validate(_PROFILE))
    thresholds = load_thresholds()
    conn.execute("INSERT INTO conformance_run (id, device_id, started_at, ends_at, thresholds, thresholds_digest, baseline) "
                 "VALUES (%s, %s, now(), now() + interval '1 hour', %s, %s, '{}')",  # running: read without a report
                 (ids["run_id"], ids["device_id"], Jsonb(thresholds.stored()), thresholds.digest))
    conn.execute("INSERT INTO conformance_run (id, device_id, started_at, ends_at, thresholds, thresholds_digest, baseline, "
                 "finished_at, passed, report_id) VALUES (%s, %s, now() - interval '2 hours', now() - interval '1 hour', "
                 "%s, %s, '{}', now(), false, %s)", (f"cr_{tag * 4}ffffffff", ids["device_id"], Jsonb(thresholds.stored()),
                                                      thresholds.digest, ids["report_id"]))
    conn.execute("INSERT INTO conformance_report (id, run_id, device_id, issued_at, passed, key_id, document) "
                 "VALUES (%s, %s, %s, now(), false, 'k', %s)", (ids["report_id"], f"cr_{tag * 4}ffffffff",
                                                                ids["device_id"], b"{}"))
    requirement = requirements.create(conn, name=f"req-{tag}", kind="env_sensor", min_verdict="conditional", created_by="")
    ids["requirement_id"] = str(requirement.id)
    ids["command_id"] = f"{tag * 4}-0000-4000-8000-{tag * 6}"
    conn.execute("INSERT INTO switch_command (id, device_id, relay_on, transport, topic, sent_at, expires_at) "
                 "VALUES (%s, %s, true, 'mqtt', 'x', now(), now() + interval '1 minute')",
                 (ids["command_id"], ids["device_id"]))
    return ids


_PROFILE = {"vendor": "Acme", "model": "T1", "firmware_version": "1.0", "kind": "env_sensor", "reporting_interval_s": 60,
            "measurements": ["temperature_c"]}


@pytest.fixture(scope="module")
def world(make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, World]]:
    from scoring.signing import generate_key

    url = make_database()
    key = tmp_path_factory.mktemp("roles") / "signing.pem"
    generate_key(key)
    with psycopg.connect(url, autocommit=True) as conn:
        own, foreign = _objects(conn, "aa"), _objects(conn, "bb")
        keys = {ApiRole.ADMIN: api_keys.create(conn, "admin").token,
                ApiRole.PILOT_MANAGER: api_keys.create(conn, "pilot_manager", pilot_ids=[own["pilot_id"]]).token,
                ApiRole.FIRM: api_keys.create(conn, "firm", firm_id=own["firm_id"]).token,
                ApiRole.REVIEWER: api_keys.create(conn, "reviewer").token,
                ApiRole.PROVISIONING: api_keys.create(conn, "provisioning").token,
                ApiRole.DEPARTMENT: api_keys.create(conn, "department").token}
        spare = api_keys.create(conn, "reviewer", name="revoked by the matrix").key.id
    with TestClient(create_app(Settings(database_url=url, signing_key=Path(key)))) as client:
        yield client, World(own, foreign, {k.value: v for k, v in keys.items()}, spare)


def _path(template: str, ids: dict[str, str], spare_key_id: str) -> str:
    values = {"kind": "env_sensor", "channel": "telemetry", "year": "2024", **ids, "key_id": spare_key_id}
    return re.sub(r"\{(\w+)\}", lambda m: values[m[1]], template)


def _call(client: TestClient, method: str, path: str, token: str | None, params: dict[str, str] | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    body = None if method in ("GET", "DELETE") else {}
    return client.request(method, path, headers=headers, params=params, json=body).status_code


def test_every_endpoint_declares_an_access_rule(world: tuple[TestClient, World]) -> None:
    client, _ = world
    undeclared = [f"{m} {p}" for m, p in endpoints(client.app) if rule_for(m, p) is None]  # type: ignore[arg-type]
    assert not undeclared, f"add these to access.policy.RULES: {undeclared}"
    assert len(endpoints(client.app)) >= 50  # type: ignore[arg-type]


def test_every_endpoint_times_every_role_answers_as_its_rule_says(world: tuple[TestClient, World]) -> None:
    client, w = world
    wrong: list[str] = []
    for method, template in endpoints(client.app):  # type: ignore[arg-type]
        rule = rule_for(method, template)
        assert rule is not None
        own = _path(template, w.own, w.spare_key_id)
        foreign = _path(template, w.foreign, w.spare_key_id)
        if rule.public:
            for token in (None, "plk_nonsense"):
                if _call(client, method, own, token) in (401, 403):
                    wrong.append(f"{method} {template} public, refused {token}")
            continue
        for token, expected in ((None, 401), ("plk_aaaaaaaaaaaa_" + "x" * 43, 401), ("Basic abc", 401)):
            if (got := _call(client, method, own, token)) != expected:
                wrong.append(f"{method} {template} key {token!r}: {got}, expected {expected}")
        for role in ApiRole:
            token = w.keys[role.value]
            scoped = role in SCOPED
            params: dict[str, str] | None = None
            if rule.list_scope is not None:
                params = {rule.list_scope: w.own[rule.list_scope]}
            got = _call(client, method, own, token, params)
            if role not in rule.roles:
                if got != 403:
                    wrong.append(f"{method} {template} as {role}: {got}, expected 403")
                continue
            if method == "GET" and not 200 <= got < 300:
                wrong.append(f"{method} {template} as {role} (own objects): {got}, expected 2xx")
            elif got in (401, 403, 404) or got >= 500:
                wrong.append(f"{method} {template} as {role} (own objects): {got}, expected it to be let through")
            if not scoped:
                continue
            if foreign != own and (got := _call(client, method, foreign, token)) != 404:
                wrong.append(f"{method} {template} as {role} on another firm's object: {got}, expected 404")
            if rule.list_scope is not None:
                if (got := _call(client, method, own, token)) != 403:
                    wrong.append(f"{method} {template} as {role} without ?{rule.list_scope}: {got}, expected 403")
                foreign_params = {rule.list_scope: w.foreign[rule.list_scope]}
                if (got := _call(client, method, own, token, foreign_params)) != 404:
                    wrong.append(f"{method} {template} as {role} listing another firm's: {got}, expected 404")
    assert not wrong, "\n".join(wrong)


def test_a_firm_never_sees_another_firms_pilot_device_telemetry_or_record(world: tuple[TestClient, World]) -> None:
    client, w = world
    firm = {"Authorization": f"Bearer {w.keys['firm']}"}
    for path in (f"/pilots/{w.foreign['pilot_id']}", f"/devices/{w.foreign['device_id']}",
                 f"/devices/{w.foreign['device_id']}/telemetry", f"/records/{w.foreign['record_id']}",
                 f"/pilots/{w.foreign['pilot_id']}/records", f"/gateways/{w.foreign['gateway_id']}/health",
                 f"/firms/{w.foreign['firm_id']}"):
        answer = client.get(path, headers=firm)
        assert answer.status_code == 404, path
        missing = client.get(path.replace(w.foreign["pilot_id"], "no-such").replace(w.foreign["device_id"], "no-such")
                             .replace(w.foreign["record_id"], "no-such").replace(w.foreign["gateway_id"], "no-such")
                             .replace(w.foreign["firm_id"], "no-such"), headers=firm)
        assert missing.status_code == 404  # the same answer as for something that does not exist
    assert client.get("/devices", params={"pilot_id": w.foreign["pilot_id"]}, headers=firm).status_code == 404
    assert client.get("/scores", headers=firm).status_code == 403
    own = client.get("/devices", params={"pilot_id": w.own["pilot_id"]}, headers=firm).json()
    assert [d["id"] for d in own] == [w.own["device_id"]]
    letters = client.get("/dead-letters", params={"pilot_id": w.own["pilot_id"]}, headers=firm).json()["dead_letters"]
    assert {d["device_id"] for d in letters} == {w.own["device_id"]}
    telemetry = client.get(f"/devices/{w.own['device_id']}/telemetry",
                           params={"from": (datetime.now(UTC) - timedelta(days=3)).isoformat()}, headers=firm).json()
    assert len(telemetry["readings"]) == 1


def test_a_scoped_key_cannot_create_in_another_firms_pilot(world: tuple[TestClient, World]) -> None:
    client, w = world
    manager = {"Authorization": f"Bearer {w.keys['pilot_manager']}"}
    body = {"id": "intruder-1", "kind": "env_sensor", "pilot_id": w.foreign["pilot_id"], "connectivity": "wifi",
            "reporting_interval_s": 60}
    answer = client.post("/devices", json=body, headers=manager)
    assert answer.status_code == 422 and "names no pilot" in answer.json()["detail"]
    assert client.post("/devices", json={**body, "pilot_id": w.own["pilot_id"]}, headers=manager).status_code == 201


def test_secrets_are_shown_once_and_never_again(world: tuple[TestClient, World], caplog: pytest.LogCaptureFixture) -> None:
    client, w = world
    admin = {"Authorization": f"Bearer {w.keys['admin']}"}
    issued = client.post(f"/devices/{w.own['device_id']}/credentials", headers=admin)
    assert issued.status_code == 201
    secret = issued.json()["mqtt_password"]
    created = client.post("/api-keys", json={"role": "reviewer", "name": "shown once"}, headers=admin)
    key = created.json()["key"]
    assert client.get("/api-keys", headers={"Authorization": f"Bearer {key}"}).status_code == 403  # works, as a reviewer
    later = [client.get(f"/devices/{w.own['device_id']}/credentials", headers=admin).text,
             client.get("/api-keys", headers=admin).text, client.get("/openapi.json").text]
    assert all(secret not in text and key not in text for text in later)
    assert secret not in caplog.text and key not in caplog.text
    assert "hash" not in client.get("/api-keys", headers=admin).text


def test_a_revoked_key_is_refused(world: tuple[TestClient, World]) -> None:
    client, w = world
    admin = {"Authorization": f"Bearer {w.keys['admin']}"}
    token = client.post("/api-keys", json={"role": "reviewer"}, headers=admin).json()
    reviewer = {"Authorization": f"Bearer {token['key']}"}
    assert client.get("/scores", headers=reviewer).status_code == 200
    assert client.delete(f"/api-keys/{token['id']}", headers=admin).status_code == 204
    assert client.get("/scores", headers=reviewer).status_code == 401


def test_an_oversize_body_is_413_and_counted(world: tuple[TestClient, World]) -> None:
    client, w = world
    admin = {"Authorization": f"Bearer {w.keys['admin']}"}
    answer = client.post("/firms", content=b"x" * 2_000_000, headers={**admin, "content-type": "application/json"})
    assert answer.status_code == 413
    metrics = client.get("/metrics").text
    assert 'pilotlab_api_rejected_requests_total{reason="body_too_large"} 1.0' in metrics


def test_decommissioning_revokes_the_broker_credentials(world: tuple[TestClient, World]) -> None:
    client, w = world
    provisioning = {"Authorization": f"Bearer {w.keys['provisioning']}"}
    body = {"id": "retiring-1", "kind": "env_sensor", "pilot_id": w.own["pilot_id"], "connectivity": "wifi",
            "reporting_interval_s": 60}
    assert client.post("/devices", json=body, headers=provisioning).status_code == 201
    assert client.post("/devices/retiring-1/credentials", headers=provisioning).status_code == 201
    assert client.post("/devices/retiring-1/decommission", json={"reason": "end of pilot"},
                       headers=provisioning).status_code == 200
    account = client.get("/devices/retiring-1/credentials", headers=provisioning).json()
    assert account["revoked_at"] is not None and account["revoke_reason"] == "decommissioned"
    assert client.post("/devices/retiring-1/credentials", headers=provisioning).status_code == 409


# Body fields and parameters ending in _id that name something outside pilotlab's registry.
EXTERNAL_IDS = {"application_id": "a network server's own application id"}
# A valid body of each request model that carries ids, naming the caller's own objects; the
# ownership test swaps one id at a time. A new model with an id field needs an entry here.
BASE_BODIES: dict[str, Callable[[dict[str, str]], dict[str, object]]] = {
    "PilotCreate": lambda own: {"id": "new-pilot", "firm_id": own["firm_id"], "name": "n", "site": "s",
                                "starts_at": "2024-01-01T00:00:00Z"},
    "GatewayCreate": lambda own: {"id": "new-gw", "pilot_id": own["pilot_id"], "protocol": "wifi"},
    "DeviceCreate": lambda own: {"id": "new-dev", "pilot_id": own["pilot_id"], "kind": "env_sensor",
                                 "connectivity": "wifi", "reporting_interval_s": 60, "gateway_id": own["gateway_id"]},
    "DeviceUpdate": lambda own: {"gateway_id": own["gateway_id"]},
    "NetworkServerApplication": lambda own: {"network_server": "chirpstack", "application_id": "app-own",
                                             "pilot_id": own["pilot_id"]},
    "DeviceProfileCreate": lambda own: {"id": "new-profile", "firm_id": own["firm_id"], **_PROFILE},
    "DeviceProfileRef": lambda own: {"profile_id": own["profile_id"]},
    "ApiKeyIn": lambda own: {"role": "firm", "firm_id": own["firm_id"], "pilot_ids": []},
    "ConformanceRunIn": lambda own: {"device_ids": [own["device_id"]], "duration_s": 600},
}


def _id_inputs(schema: dict, operation: dict) -> tuple[list[tuple[str, str]], str | None, list[str]]:
    """(location, name) of every parameter and body field named like an id, the body model's name."""
    found = [(p["in"], p["name"]) for p in operation.get("parameters", [])]
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    model = body.get("$ref", "").rsplit("/", 1)[-1] or None
    fields = list(schema["components"]["schemas"][model]["properties"]) if model else []
    found += [("body", f) for f in fields]
    return [(where, name) for where, name in found if name.endswith(("_id", "_ids"))], model, fields


def test_every_id_a_route_takes_answers_another_firms_key_as_if_it_did_not_exist(
        world: tuple[TestClient, World]) -> None:
    """Enumerated from the OpenAPI schema, so a future route cannot forget: for every path, query
    and body id, a firm or pilot_manager key sending another firm's object gets exactly the answer
    (status and body) it gets for an id that names nothing, and never a success."""
    from api.auth import OWNED

    client, w = world
    schema = client.app.openapi()  # type: ignore[attr-defined]
    checked, wrong = 0, []
    for template, operations in schema["paths"].items():
        for method, operation in operations.items():
            rule = rule_for(method.upper(), template)
            assert rule is not None
            if rule.public:
                continue
            inputs, model, _ = _id_inputs(schema, operation)
            for where, name in inputs:
                noun = name.removesuffix("s") if name.endswith("_ids") else name
                if name in EXTERNAL_IDS:
                    continue
                if noun not in OWNED:
                    assert not rule.roles & SCOPED, f"{method} {template} takes {name}: add it to api.auth.OWNED"
                    continue
                assert where != "body" or model in BASE_BODIES, f"{method} {template}: add {model} to BASE_BODIES"
                for role in SCOPED:
                    answers = []
                    for value in (w.foreign[noun], f"no-such-{noun.removesuffix('_id')}"):
                        ids = {**w.own, **({noun: value} if where == "path" else {})}
                        params = {rule.list_scope: w.own[rule.list_scope]} if rule.list_scope else {}
                        if where == "query":
                            params[name] = value
                        body = BASE_BODIES[model](w.own) if model in BASE_BODIES else ({} if model else None)
                        if where == "body":
                            body = {**(body or {}), name: [value] if name.endswith("_ids") else value}
                        answer = client.request(method.upper(), _path(template, ids, w.spare_key_id), params=params,
                                                json=body, headers={"Authorization": f"Bearer {w.keys[role.value]}"})
                        answers.append((answer.status_code, answer.text.replace(value, "<id>")))
                    checked += 1
                    if answers[0] != answers[1] or answers[0][0] not in (403, 404, 422):
                        wrong.append(f"{method.upper()} {template} {where} {name} as {role}: another firm's "
                                     f"{answers[0]} vs none {answers[1]}")
    assert not wrong, "\n".join(wrong)
    assert checked >= 60  # every id-taking route, both scoped roles


def test_a_pilot_manager_cannot_attach_its_device_to_another_firms_gateway_nor_learn_that_it_exists(
        world: tuple[TestClient, World]) -> None:
    client, w = world
    manager = {"Authorization": f"Bearer {w.keys['pilot_manager']}"}
    admin = {"Authorization": f"Bearer {w.keys['admin']}"}
    device = f"/devices/{w.own['device_id']}"
    foreign = client.patch(device, json={"gateway_id": w.foreign["gateway_id"]}, headers=manager)
    missing = client.patch(device, json={"gateway_id": "gw-zz"}, headers=manager)
    assert (foreign.status_code, missing.status_code) == (422, 422)
    assert foreign.json() == {"detail": f"gateway_id {w.foreign['gateway_id']!r} names no gateway; register the gateway first"}
    assert missing.json() == {"detail": "gateway_id 'gw-zz' names no gateway; register the gateway first"}
    created = client.post("/devices", headers=manager, json={
        "id": "hitchhiker-1", "kind": "env_sensor", "pilot_id": w.own["pilot_id"], "connectivity": "wifi",
        "reporting_interval_s": 60, "gateway_id": w.foreign["gateway_id"]})
    assert created.status_code == 422 and client.get("/devices/hitchhiker-1", headers=admin).status_code == 404
    health = client.get(f"/gateways/{w.foreign['gateway_id']}/health", headers=admin).json()
    assert health["devices_attached"] == [w.foreign["device_id"]]
    own = client.patch(device, json={"gateway_id": w.own["gateway_id"]}, headers=manager)
    assert own.status_code == 200 and own.json()["gateway_id"] == w.own["gateway_id"]
    assert own.json()["broker_synced"] is None  # no broker admin configured here: said, and logged

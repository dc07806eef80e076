"""The program's rolling plan over HTTP: an admin sets a year's plan, and admin and department keys
read it beside what the year's pilots achieved, figure by figure as the seeded program makes them
by construction (tests/api/program.py), as JSON and as CSV; other roles may not; bad plans are
refused with what to fix. Also `pilotlab plan`. The module has a database of its own, so the
year's pilots are the ones seeded here."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from access import api_keys
from api.app import create_app
from pilotlab.cli import main
from pilotlab.settings import Settings
from scoring.signing import generate_key
from tests.api.program import ENV_2024, PLAN_2024, SWITCH_2024, Program, seed_program


@dataclass(frozen=True)
class Seeded:
    client: TestClient
    database_url: str
    signing_key: Path
    program: Program
    keys: dict[str, dict[str, str]]  # role -> Authorization header


@pytest.fixture(scope="module")
def seeded(make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    url, root = make_database(), tmp_path_factory.mktemp("plan")
    key, foreign = root / "signing.pem", root / "foreign.pem"
    generate_key(key)
    generate_key(foreign)
    program = seed_program(url, key, foreign, uuid.uuid4().hex[:6])
    with psycopg.connect(url, autocommit=True) as conn:
        keys = {role: {"Authorization": f"Bearer {api_keys.create(conn, role, **scope).token}"}  # type: ignore[arg-type]
                for role, scope in (("admin", {}), ("department", {}), ("reviewer", {}),
                                    ("firm", {"firm_id": program.firms["acme"]}))}
    with TestClient(create_app(Settings(database_url=url, signing_key=key))) as client:
        assert client.put("/plans/2024", json=PLAN_2024, headers=keys["admin"]).status_code == 200
        yield Seeded(client, url, key, program, keys)


def test_an_admin_sets_a_years_plan_and_a_department_reads_it_beside_what_was_achieved(seeded: Seeded) -> None:
    answer = seeded.client.get("/plans/2024", headers=seeded.keys["department"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert {k: body["plan"][k] for k in PLAN_2024} == PLAN_2024
    assert body["rows"] == [
        {"measure": "pilots", "kind": None, "planned": 3, "achieved": 2, "met": False},
        {"measure": "devices", "kind": None, "planned": 4, "achieved": 4, "met": True},
        {"measure": "stage4_firms", "kind": None, "planned": 2, "achieved": 2, "met": True},
        {"measure": "availability", "kind": "env_sensor", "planned": 0.98, "achieved": round(ENV_2024[0] / ENV_2024[1], 6),
         "met": False},
        {"measure": "availability", "kind": "location_tracker", "planned": 0.9, "achieved": None, "met": False},
        {"measure": "availability", "kind": "smart_switch", "planned": 0.95, "achieved": SWITCH_2024[0] / SWITCH_2024[1],
         "met": True},
    ]
    p = seeded.program
    assert sorted(s["pilot_id"] for s in body["pilots"]) == sorted([p.pilots["acme"], p.pilots["borealis"]])
    borealis = next(s for s in body["pilots"] if s["pilot_id"] == p.pilots["borealis"])
    assert borealis["by_kind"] == {"env_sensor": {"devices": 1, "slots_hit": 440, "slots": 480},
                                   "smart_switch": {"devices": 1, "slots_hit": 480, "slots": 480}}
    assert [f["firm_id"] for f in body["stage4_firms"]] == sorted([p.firms["acme"], p.firms["delta"]])
    assert body["achieved"]["devices_by_kind"] == {"env_sensor": 3, "smart_switch": 1}


def test_the_csv_has_one_line_a_measure(seeded: Seeded) -> None:
    answer = seeded.client.get("/plans/2024/csv", headers=seeded.keys["department"])
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.text == ("year,measure,kind,planned,achieved,met\n"
                           "2024,pilots,,3,2,no\n"
                           "2024,devices,,4,4,yes\n"
                           "2024,stage4_firms,,2,2,yes\n"
                           "2024,availability,env_sensor,0.980000,0.972222,no\n"
                           "2024,availability,location_tracker,0.900000,,no\n"
                           "2024,availability,smart_switch,0.950000,1.000000,yes\n")


def test_a_year_without_a_plan_shows_what_was_achieved_and_counts_each_pilot_in_its_own_year(seeded: Seeded) -> None:
    body = seeded.client.get("/plans/2023", headers=seeded.keys["admin"]).json()
    assert body["plan"] is None
    assert [(r["measure"], r["kind"], r["planned"], r["achieved"], r["met"]) for r in body["rows"]] == [
        ("pilots", None, None, 1, None), ("devices", None, None, 1, None), ("stage4_firms", None, None, 1, None),
        ("availability", "env_sensor", None, 1.0, None)]
    # cobalt's window ends at midnight on 1 January 2024 (UTC): its last day is in 2023; delta's record, issued
    # 2023-12-31 15:30 UTC, is of 1 January 2024 in Seoul, its pilot's zone
    assert [s["pilot_id"] for s in body["pilots"]] == [seeded.program.pilots["cobalt"]]
    assert [f["firm_id"] for f in body["stage4_firms"]] == [seeded.program.firms["cobalt"]]
    assert [p["year"] for p in seeded.client.get("/plans", headers=seeded.keys["department"]).json()] == [2024]


def test_only_an_admin_writes_and_only_admins_and_departments_read(seeded: Seeded) -> None:
    client, keys = seeded.client, seeded.keys
    assert client.put("/plans/2025", json=PLAN_2024, headers=keys["department"]).status_code == 403
    for role in ("reviewer", "firm"):
        for path in ("/plans", "/plans/2024", "/plans/2024/csv"):
            assert client.get(path, headers=keys[role]).status_code == 403, (role, path)


@pytest.mark.parametrize(("year", "body", "field"), [
    (2024, {**PLAN_2024, "availability": {"env_sensor": 1.5}}, "availability.env_sensor"),
    (2024, {**PLAN_2024, "availability": {"toaster": 0.5}}, "availability.toaster"),
    (2024, {**PLAN_2024, "pilots": -1}, "pilots"),
    (1999, PLAN_2024, "year"),
])
def test_a_bad_plan_is_refused_naming_what_to_fix_and_nothing_changes(seeded: Seeded, year: int, body: dict[str, object],
                                                                     field: str) -> None:
    answer = seeded.client.put(f"/plans/{year}", json=body, headers=seeded.keys["admin"])
    assert answer.status_code == 422
    assert field.split(".")[-1] in str(answer.json()["detail"])
    assert seeded.client.get("/plans/2024", headers=seeded.keys["admin"]).json()["plan"]["availability"] == \
        PLAN_2024["availability"]


def test_the_cli_sets_a_plan_and_prints_the_same_csv(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--database-url", seeded.database_url]
    assert main(["plan", "set", "2023", "--pilots", "1", "--devices", "2", "--stage4-firms", "1",
                 "--availability", "env_sensor=0.99", *common]) == 0
    capsys.readouterr()
    assert main(["plan", "show", "2023", "--csv", "--signing-key", str(seeded.signing_key), *common]) == 0
    assert capsys.readouterr().out == ("year,measure,kind,planned,achieved,met\n"
                                       "2023,pilots,,1,1,yes\n"
                                       "2023,devices,,2,1,no\n"
                                       "2023,stage4_firms,,1,1,yes\n"
                                       "2023,availability,env_sensor,0.990000,1.000000,yes\n")
    with pytest.raises(SystemExit) as refused:
        main(["plan", "set", "2023", "--pilots", "1", "--devices", "2", "--stage4-firms", "1",
              "--availability", "env_sensor=high", *common])
    assert refused.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "'env_sensor=high' is not KIND=SHARE" in error

"""`pilotlab grafana provision` against a stand-in Grafana that checks each request against
Grafana's published OpenAPI spec: it creates the data source, a folder per pilot and the
dashboards, changes nothing on a second run, and fails with one line when Grafana is
unreachable or the token lacks rights."""

from __future__ import annotations

import socket

import pytest

from dashboards.catalog import DASHBOARDS
from dashboards.provision import stable_uid
from pilotlab.cli import main
from tests.dashboards.conftest import FilledPilot
from tests.dashboards.grafana_stub import ADMIN_TOKEN, VIEWER_TOKEN, GrafanaStub


def _provision(stub_url: str, database_url: str, token: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("PILOTLAB_GRAFANA_TOKEN", token)
    return main(["grafana", "provision", "--database-url", database_url, "--grafana-url", stub_url,
                 "--grafana-database-url", "postgresql://grafana_reader:secret@db.internal:5432/pilotlab"])


def test_provision_creates_datasource_folders_and_dashboards_with_documented_requests(
        filled_pilot: FilledPilot, database_server: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    with GrafanaStub() as grafana:
        assert _provision(grafana.url, filled_pilot.database_url, ADMIN_TOKEN, monkeypatch) == 0
        assert grafana.violations == []
        ds = grafana.datasources["pilotlab-postgres"]
        assert ds["type"] == "grafana-postgresql-datasource" and ds["url"] == "db.internal:5432"
        assert ds["jsonData"]["database"] == "pilotlab"
        assert ds["jsonData"]["timescaledb"] is (database_server == "timescaledb")  # what migrate chose
        pilot_folder = stable_uid("pilotlab", filled_pilot.pilot_id)
        assert {"pilotlab", pilot_folder} <= set(grafana.folders)
        per_pilot = [d for d in DASHBOARDS if d.per_pilot]
        for spec in per_pilot:
            stored = grafana.dashboards[stable_uid(spec.slug, filled_pilot.pilot_id)]
            assert stored["meta"]["folderUid"] == pilot_folder
            pilot_var = next(v for v in stored["dashboard"]["templating"]["list"] if v["name"] == "pilot")
            assert pilot_var["current"]["value"] == filled_pilot.pilot_id
        for spec in DASHBOARDS:
            if not spec.per_pilot:
                assert grafana.dashboards[f"pilotlab-{spec.slug}"]["meta"]["folderUid"] == "pilotlab"
    assert "created" in capsys.readouterr().out


def test_provisioning_twice_changes_nothing_the_second_time(filled_pilot: FilledPilot,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with GrafanaStub() as grafana:
        assert _provision(grafana.url, filled_pilot.database_url, ADMIN_TOKEN, monkeypatch) == 0
        versions = {uid: d["dashboard"]["version"] for uid, d in grafana.dashboards.items()}
        first_writes = len(grafana.writes)
        assert _provision(grafana.url, filled_pilot.database_url, ADMIN_TOKEN, monkeypatch) == 0
        assert grafana.violations == []
        assert {uid: d["dashboard"]["version"] for uid, d in grafana.dashboards.items()} == versions
        # Only the data source is written again: its password is write-only in Grafana.
        assert grafana.writes[first_writes:] == [("PUT", "/api/datasources/uid/pilotlab-postgres")]


def test_a_token_without_rights_ends_with_one_line_and_exit_2(filled_pilot: FilledPilot, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    with GrafanaStub() as grafana:
        assert _provision(grafana.url, filled_pilot.database_url, VIEWER_TOKEN, monkeypatch) == 2
        err = capsys.readouterr().err.strip()
        assert "lacks the rights" in err and "403" in err and len(err.splitlines()) == 1
        assert _provision(grafana.url, filled_pilot.database_url, "wrong", monkeypatch) == 2
        err = capsys.readouterr().err.strip()
        assert "refused the token (401)" in err and len(err.splitlines()) == 1


def test_an_unreachable_grafana_ends_with_one_line_and_exit_2(filled_pilot: FilledPilot, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    assert _provision(f"http://127.0.0.1:{port}", filled_pilot.database_url, ADMIN_TOKEN, monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pilotlab: cannot reach Grafana at") and len(err.splitlines()) == 1


def test_the_stub_refuses_what_grafanas_spec_does_not_document() -> None:
    import httpx

    with GrafanaStub() as grafana:
        r = httpx.post(f"{grafana.url}/api/folders", json={"title": 3}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert r.status_code == 400
        r = httpx.post(f"{grafana.url}/api/folders", json={"title": "t", "colour": "red"},
                          headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert r.status_code == 400
        r = httpx.get(f"{grafana.url}/api/nonsense", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert r.status_code == 400
        assert len(grafana.violations) == 3

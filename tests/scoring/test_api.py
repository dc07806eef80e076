"""The reviewer API: current score and verdict, per-device breakdown, records, verify, history."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from pilotlab.settings import Settings
from scoring.schedule import rescore_due
from tests.scoring.conftest import ENV_OK
from tests.support import admin_headers


@pytest.fixture(scope="module")
def client(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from scoring.signing import generate_key

    key = tmp_path_factory.mktemp("key") / "signing.pem"
    generate_key(key)
    with TestClient(create_app(Settings(database_url=database_url, signing_key=key)),
                    headers=admin_headers(database_url)) as test_client:
        yield test_client


def test_reviewer_api_scores_breaks_down_issues_fetches_and_verifies(client, db, rubric, make_pilot):
    pilot = make_pilot()
    dev = pilot.device("env")
    pilot.series(dev, "2024-01-01Z", 1440, 60, ENV_OK, skip="i BETWEEN 600 AND 629")
    score = client.get(f"/pilots/{pilot.pilot_id}/score", params={"as_of": "2024-01-05T00:00:00Z"})
    assert score.status_code == 200, score.text
    assert score.json()["verdict"] == "not_eligible" and score.json()["metrics"]["availability"] == round(470 / 480, 6)
    devices = client.get(f"/pilots/{pilot.pilot_id}/score/devices").json()
    assert devices["metrics"][0]["device_id"] == dev and devices["metrics"][0]["mttr_s"] == 1860.0

    issued = client.post(f"/pilots/{pilot.pilot_id}/records")
    assert issued.status_code == 201, issued.text
    document = client.get(issued.json()["url"]).text
    assert client.post("/records/verify", json={"document": document}).json()["valid"] is True
    public = client.get("/records/public-key").text
    tampered = document.replace('"verdict":"not_eligible"', '"verdict":"eligible"')
    answer = client.post("/records/verify", json={"document": tampered, "public_key": public}).json()
    assert answer["valid"] is False and "altered" in answer["reason"]
    assert [r["id"] for r in client.get(f"/pilots/{pilot.pilot_id}/records").json()] == [issued.json()["id"]]


def test_the_score_and_the_device_scores_show_their_breakdown(client, ingested_pilot):
    score = client.get(f"/pilots/{ingested_pilot.pilot_id}/score")
    assert score.status_code == 200, score.text
    fleet = score.json()["breakdown"]
    assert fleet["availability"] == {"numerator": 470.0, "denominator": 480.0, "value": round(470 / 480, 6),
                                     "unit": "slots", "p10": round(470 / 480, 6)}
    assert fleet["completeness"] == {"numerator": 1410.0, "denominator": 1440.0, "value": round(1410 / 1440, 6),
                                     "p10": round(1410 / 1440, 6)}
    assert fleet["deliveries"]["rejected"]["by_reason"] == {"invalid_payload": 1, "malformed_json": 2,
                                                            "timestamp_out_of_range": 1}
    assert fleet["quality_incidents"] == {"count": 1, "open": 0, "duration_s": 420.0}
    assert fleet["latency"]["method"].startswith("histogram")
    devices = client.get(f"/pilots/{ingested_pilot.pilot_id}/score/devices").json()
    [device] = devices["breakdown"]
    assert device["qc"]["tests"]["temperature_c__gross"] == {"pass": 1405, "suspect": 0, "fail": 5, "not_evaluated": 0}
    assert device["quality_incidents"]["periods"] == [{
        "start": "2024-01-01T01:39:00Z", "end": "2024-01-01T01:46:00Z", "duration_s": 420.0, "open": False,
        "tests": ["temperature_c__gross", "temperature_c__spike"]}]
    assert device["deliveries"]["duplicates"] == {"dropped_at_ingest": 3, "repeated_device_time": 1}


def test_daily_rescoring_writes_history_once_per_local_day(client, db, rubric, make_pilot):
    pilot = make_pilot(ends_at=None, status="running", timezone="Asia/Seoul")
    dev = pilot.device("env")
    pilot.series(dev, "2024-01-01Z", 3 * 1440, 60, ENV_OK)
    for day in (2, 3, 3):  # the second pass on Jan 3 finds the day done
        rescore_due(db, rubric, now=datetime(2024, 1, day, 12, tzinfo=UTC))
    history = client.get(f"/pilots/{pilot.pilot_id}/score/history").json()
    assert [h["scored_on"] for h in history] == ["2024-01-03", "2024-01-02"]
    assert history[0]["window_end"] == "2024-01-02T15:00:00Z"  # midnight in Seoul
    listed = {row["pilot_id"]: row for row in client.get("/scores").json()}
    assert listed[pilot.pilot_id]["scored_on"] == "2024-01-03"


def test_scoring_settings_reject_an_unknown_time_zone_naming_it(client, make_pilot):
    pilot = make_pilot()
    answer = client.put(f"/pilots/{pilot.pilot_id}/timezone", json={"timezone": "Mars/Olympus"})
    assert answer.status_code == 422 and "Mars/Olympus" in answer.json()["detail"]
    assert client.put(f"/pilots/{pilot.pilot_id}/timezone", json={"timezone": "Asia/Seoul"}).status_code == 200


def test_unknown_pilot_is_404(client):
    assert client.get("/pilots/no-such-pilot/score").status_code == 404




def _firm_headers(db, pilot) -> dict[str, str]:
    from access import api_keys

    firm = db.execute("SELECT firm_id FROM pilot WHERE id = %s", (pilot.pilot_id,)).fetchone()[0]
    return {"Authorization": f"Bearer {api_keys.create(db, 'firm', firm_id=firm).token}"}


def test_a_firm_asking_for_its_score_as_of_the_year_4000_gets_a_clear_422_at_once(client, db, make_pilot):
    pilot = make_pilot(ends_at=None, status="running")
    pilot.series(pilot.device("env"), "2024-01-01Z", 1440, 60, ENV_OK)
    firm = _firm_headers(db, pilot)
    for path in (f"/pilots/{pilot.pilot_id}/score", f"/pilots/{pilot.pilot_id}/score/devices"):
        started = time.monotonic()
        answer = client.get(path, params={"as_of": "4000-01-01T00:00:00Z"}, headers=firm)
        assert time.monotonic() - started < 1.0
        assert answer.status_code == 422
        assert answer.json()["detail"].startswith("as_of 4000-01-01T00:00:00+00:00 is in the future")
    issued = client.post(f"/pilots/{pilot.pilot_id}/records", params={"as_of": "4000-01-01T00:00:00Z"})
    assert issued.status_code == 422 and "in the future" in issued.json()["detail"]


def test_as_of_past_the_pilots_end_scores_up_to_the_end(client, db, make_pilot):
    pilot = make_pilot(starts_at="2024-01-01Z", ends_at="2024-01-02Z")
    pilot.series(pilot.device("env"), "2024-01-01Z", 1440, 60, ENV_OK)
    answer = client.get(f"/pilots/{pilot.pilot_id}/score", params={"as_of": "2026-01-01T00:00:00Z"},
                        headers=_firm_headers(db, pilot))
    assert answer.status_code == 200, answer.text
    assert answer.json()["window"] == {"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z"}


def test_a_window_longer_than_the_longest_scored_at_once_is_refused(client, db, make_pilot):
    from scoring.window import MAX_WINDOW

    start = datetime.now(UTC) - MAX_WINDOW - timedelta(days=2)
    pilot = make_pilot(starts_at=start.isoformat(), ends_at=None, status="running")
    pilot.device("env")
    started = time.monotonic()
    answer = client.get(f"/pilots/{pilot.pilot_id}/score", headers=_firm_headers(db, pilot))
    assert time.monotonic() - started < 1.0
    assert answer.status_code == 422 and f"at most {MAX_WINDOW.days} are scored at once" in answer.json()["detail"]

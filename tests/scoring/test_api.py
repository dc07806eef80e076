"""The reviewer API: current score and verdict, per-device breakdown, records, verify, history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

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



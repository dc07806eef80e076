"""Dead-letter listing: newest first, filters, payload as base64 and a readable preview."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def letters(db: psycopg.Connection, unique_id: Callable[[str], str]) -> dict[str, str]:
    """Four refused messages in a pilot of this test's own, a minute apart, oldest first:
    malformed JSON from dev-a, out of range from dev-a, unknown device dev-b, a long binary one."""
    pilot, dev_a, dev_b = unique_id("pilot"), unique_id("dev-a"), unique_id("dev-b")
    rows = [
        (dev_a, b"{not json", "malformed_json", "Invalid JSON"),
        (dev_a, b'{"ts": 1, "seq": 1, "humidity_pct": 140}', "out_of_range", "humidity_pct: <= 100"),
        (dev_b, b'{"ts": 1, "seq": 1}', "unknown_device", "not registered"),
        (dev_b, b"\xff\xfe" + b"x" * 500, "malformed_json", "Invalid JSON"),
    ]
    for minute, (device, payload, reason, detail) in enumerate(rows):
        db.execute(
            "INSERT INTO dead_letter (received_at, topic, payload, payload_sha256, reason, detail, pilot_id, device_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (T0 + timedelta(minutes=minute), f"pilotlab/v1/{pilot}/{device}/telemetry", payload,
             hashlib.sha256(payload).digest(), reason, detail, pilot, device))
    return {"pilot": pilot, "dev_a": dev_a, "dev_b": dev_b}


def test_dead_letters_of_a_pilot_come_newest_first(client: TestClient, letters: dict[str, str]) -> None:
    body = client.get("/dead-letters", params={"pilot_id": letters["pilot"]}).json()
    assert body["truncated"] is False
    assert [d["reason"] for d in body["dead_letters"]] == ["malformed_json", "unknown_device", "out_of_range",
                                                           "malformed_json"]
    newest_first = [d["received_at"] for d in body["dead_letters"]]
    assert newest_first == sorted(newest_first, reverse=True)


def test_the_payload_comes_back_exactly_as_base64_with_a_text_preview(client: TestClient,
                                                                      letters: dict[str, str]) -> None:
    oldest = client.get("/dead-letters", params={"pilot_id": letters["pilot"]}).json()["dead_letters"][-1]
    assert base64.b64decode(oldest["payload_base64"]) == b"{not json"
    assert oldest["payload_preview"] == "{not json"
    assert oldest["size_bytes"] == 9
    assert oldest["topic"] == f"pilotlab/v1/{letters['pilot']}/{letters['dev_a']}/telemetry"
    assert oldest["detail"] == "Invalid JSON"


def test_a_long_binary_payload_is_previewed_truncated_with_bad_bytes_replaced(client: TestClient,
                                                                             letters: dict[str, str]) -> None:
    newest = client.get("/dead-letters", params={"pilot_id": letters["pilot"]}).json()["dead_letters"][0]
    assert base64.b64decode(newest["payload_base64"]) == b"\xff\xfe" + b"x" * 500
    assert newest["payload_preview"].startswith("\ufffd\ufffdxxx")
    assert newest["payload_preview"].endswith("…")
    assert len(newest["payload_preview"]) == 201


def test_filters_by_reason_device_and_since_combine(client: TestClient, letters: dict[str, str]) -> None:
    pilot = letters["pilot"]
    by_reason = client.get("/dead-letters", params={"pilot_id": pilot, "reason": "malformed_json"}).json()
    assert len(by_reason["dead_letters"]) == 2
    by_device = client.get("/dead-letters", params={"device_id": letters["dev_a"]}).json()
    assert [d["reason"] for d in by_device["dead_letters"]] == ["out_of_range", "malformed_json"]
    since = client.get("/dead-letters", params={"pilot_id": pilot, "since": "2024-05-01T12:02:00Z"}).json()
    assert [d["reason"] for d in since["dead_letters"]] == ["malformed_json", "unknown_device"]
    both = client.get("/dead-letters", params={"device_id": letters["dev_b"], "reason": "unknown_device"}).json()
    assert [d["device_id"] for d in both["dead_letters"]] == [letters["dev_b"]]


def test_limit_truncates_and_says_so(client: TestClient, letters: dict[str, str]) -> None:
    body = client.get("/dead-letters", params={"pilot_id": letters["pilot"], "limit": 3}).json()
    assert len(body["dead_letters"]) == 3
    assert body["truncated"] is True


def test_an_unknown_reason_code_is_refused_listing_nothing(client: TestClient) -> None:
    answer = client.get("/dead-letters", params={"reason": "cosmic_rays"})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "query.reason"
    assert "malformed_json" in answer.json()["errors"][0]["message"]


def test_since_without_a_utc_offset_is_refused(client: TestClient) -> None:
    answer = client.get("/dead-letters", params={"since": "2024-05-01T12:00:00"})
    assert answer.status_code == 422
    assert answer.json()["errors"] == [{"field": "query.since", "message": "Input should have timezone info"}]

"""Commands round-trip through the real broker and a real ingest worker to simulated switches: one
that obeys (acknowledges on its ack topic), one that ignores, one that only reports its relay."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources

import numpy as np
import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient

from devices.contract import ack_topic
from pilotlab.settings import MqttEndpoint
from scoring.rubric import load_rubric_bytes
from scoring.scorer import record_body, score_pilot
from simulators.commanded_switch import CommandedSwitch, CommandMode
from tests.commands.conftest import SwitchPilot, send, settled
from tests.support import publish, wait_until

ACK_DELAY_S = 0.15


def stored(db: psycopg.Connection, device_ids: list[str]) -> list[tuple[str, str, datetime, datetime | None]]:
    """(device, state, sent_at, acked_at) of the devices' commands, straight from the table."""
    return db.execute("SELECT device_id, state, sent_at, acked_at FROM switch_command WHERE device_id = ANY(%s) "
                      "ORDER BY sent_at", (device_ids,)).fetchall()


def test_an_obeying_switch_acknowledges_every_command_an_ignoring_one_none_and_the_score_says_so_exactly(
        api: TestClient, db: psycopg.Connection, switches: SwitchPilot, mqtt_url: str,
        thread_worker: Callable[..., object]) -> None:
    thread_worker()
    endpoint = MqttEndpoint(mqtt_url)
    with CommandedSwitch(endpoint, switches.pilot_id, switches.obeying, CommandMode.OBEY, ack_delay_s=ACK_DELAY_S) as obeying, \
            CommandedSwitch(endpoint, switches.pilot_id, switches.ignoring, CommandMode.IGNORE) as ignoring:
        # one at a time, as an app would: a report of the state one command set would also
        # acknowledge a later command asking for that state (the report rule)
        answers = [settled(api, send(api, switches.obeying, relay_on, expiry_s=2)["id"])
                   for relay_on in (True, False, True, False)]
        ignored = [send(api, switches.ignoring, True, expiry_s=1) for _ in range(2)]
        assert {c["state"] for c in ignored} == {"sent"}
        answers += [settled(api, c["id"]) for c in ignored]
        assert len(ignoring.received) == 2 and obeying.relay_on is False  # the last command was "off"
    assert [(a["state"], a["ack_via"], a["reported_relay_on"]) for a in answers] == [
        ("acknowledged", "ack", True), ("acknowledged", "ack", False), ("acknowledged", "ack", True),
        ("acknowledged", "ack", False), ("expired", None, None), ("expired", None, None)]
    rows = stored(db, [switches.obeying, switches.ignoring])
    latencies = [(acked - sent).total_seconds() for device, _, sent, acked in rows if device == switches.obeying
                 if acked is not None]
    assert len(latencies) == 4 and all(ACK_DELAY_S <= latency < 2 for latency in latencies)
    assert [a["latency_s"] for a in answers[:4]] == pytest.approx(latencies, abs=1e-6)
    # the platform's own commands came back to ingest on its subscription: no dead letter of them
    assert db.execute("SELECT count(*) FROM dead_letter WHERE device_id = ANY(%s)",
                      ([switches.obeying, switches.ignoring],)).fetchone() == (0,)

    # Scored: 4 of 4 and 0 of 2 acknowledged, the fleet 4 of 6, latency percentiles over the 4
    v3 = resources.files("scoring.rubrics").joinpath("v3.yaml").read_bytes()
    rubric = load_rubric_bytes(v3.replace(b"min_commands: 10", b"min_commands: 6"), "v3 with 6 commands")
    # over a window that ends once every command has expired (only then is each outcome final)
    [(as_of,)] = db.execute("SELECT max(expires_at) FROM switch_command WHERE device_id = ANY(%s)",
                            ([switches.obeying, switches.ignoring],))
    wait_until(lambda: datetime.now(UTC) >= as_of, 5, what="the last command's expiry")
    score = score_pilot(db, switches.pilot_id, rubric, as_of=as_of)
    p50, p95 = np.percentile(latencies, [50, 95])
    fleet = score.fleet_breakdown()["commands"]
    assert fleet == {"sent": 6, "acknowledged": 4, "failed": 0, "expired": 2, "success_rate": 4 / 6,
                     "latency_p50_s": pytest.approx(p50, abs=1e-9), "latency_p95_s": pytest.approx(p95, abs=1e-9),
                     "method": "exact"}
    per_switch = {d["device_id"]: d.get("commands") for d in score.device_breakdowns()}
    assert per_switch[switches.obeying]["success_rate"] == 1.0  # type: ignore[index]
    assert per_switch[switches.obeying]["latency_p95_s"] == pytest.approx(p95, abs=1e-9)  # type: ignore[index]
    assert per_switch[switches.ignoring] == {"sent": 2, "acknowledged": 0, "failed": 0, "expired": 2,
                                             "success_rate": 0.0, "latency_p50_s": None, "latency_p95_s": None,
                                             "method": "exact"}
    assert per_switch[switches.silent]["sent"] == 0  # type: ignore[index]
    assert score.fleet.components["switch_commands"] == 4 / 6
    record = record_body(score, datetime.now(UTC))
    assert record["evidence"]["fleet_breakdown"]["commands"]["success_rate"] == round(4 / 6, 6)
    assert len(score.commands.evidence_rows()) == 6  # type: ignore[union-attr]  # in the evidence digest


def test_a_report_acknowledges_a_device_without_acks_and_an_ack_of_the_other_state_fails_the_command(
        api: TestClient, db: psycopg.Connection, switches: SwitchPilot, mqtt_url: str,
        thread_worker: Callable[..., object]) -> None:
    thread_worker()
    endpoint = MqttEndpoint(mqtt_url)
    with CommandedSwitch(endpoint, switches.pilot_id, switches.reporting, CommandMode.REPORT):
        reported = settled(api, send(api, switches.reporting, True)["id"])
    assert (reported["state"], reported["ack_via"], reported["reported_relay_on"]) == ("acknowledged", "report", True)
    [(ingest_time,)] = db.execute("SELECT ingest_time FROM telemetry WHERE device_id = %s", (switches.reporting,)).fetchall()
    assert reported["acked_at"] == ingest_time.isoformat(timespec="microseconds").replace("+00:00", "Z")

    # The silent switch's firmware answers by hand: it kept its relay open, and says so.
    refused = send(api, switches.silent, True)
    kept_open = {"correlation_id": refused["id"], "relay_on": False, "detail": "relay locked by the user"}
    malformed = {"correlation_id": refused["id"], "relay_on": "off"}
    publish(mqtt_url, [(ack_topic(switches.pilot_id, switches.silent), orjson.dumps(malformed)),
                       (ack_topic(switches.pilot_id, switches.silent), orjson.dumps(kept_open))])
    failed = settled(api, refused["id"])
    assert (failed["state"], failed["failed_by"], failed["reported_relay_on"], failed["detail"]) == (
        "failed", "device", False, "relay locked by the user")
    letters = wait_until(lambda: db.execute("SELECT reason, detail FROM dead_letter WHERE device_id = %s",
                                            (switches.silent,)).fetchall(), 5, what="the malformed ack's dead letter")
    assert letters == [("invalid_payload", "relay_on: expected true or false, got \"off\"")]
    listed = api.get(f"/devices/{switches.silent}/commands", params={"state": "failed"}).json()["commands"]
    assert [c["id"] for c in listed] == [refused["id"]]

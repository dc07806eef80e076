"""Every message a registered device delivers counts in its score and shows in its breakdown:
messages through the real ingest decoder and writer (tests/scoring/conftest.py `ingested_pilot`)
score exactly the figures known by construction, duplicates and rejected messages included."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from scoring.breakdown import HISTOGRAM
from scoring.scorer import score_pilot
from tests.scoring.conftest import INGEST_DAY


def _at(minute: int) -> datetime:
    return INGEST_DAY + timedelta(minutes=minute)


def test_an_impossible_value_is_stored_fails_qc_and_costs_no_delivery(db, rubric, ingested_pilot):
    device = score_pilot(db, ingested_pilot.pilot_id, rubric).device_breakdowns()[0]
    assert device["deliveries"]["stored"] == 1410 + 1 and device["deliveries"]["delivered"] == 1410
    assert (device["availability"]["numerator"], device["availability"]["denominator"]) == (470, 480)
    assert (device["completeness"]["numerator"], device["completeness"]["denominator"]) == (1410, 1440)
    assert (device["qc"]["counted"], device["qc"]["pass"], device["qc"]["suspect"], device["qc"]["fail"]) == (
        1410, 1403, 0, 7)
    tests = device["qc"]["tests"]
    assert tests["temperature_c__gross"] == {"pass": 1405, "suspect": 0, "fail": 5, "not_evaluated": 0}
    # the readings next to 150 °C fail the spike test too: 99, 100, 104, 105 (101..103 sit between equals)
    assert tests["temperature_c__spike"] == {"pass": 1404, "suspect": 0, "fail": 4, "not_evaluated": 2}
    assert tests["temperature_c__roc"] == {"pass": 1408, "suspect": 2, "fail": 0, "not_evaluated": 0}
    # 99..105 failed, 106 is valid again: one quality incident of 7 minutes; one outage, the silence
    assert device["quality_incidents"]["periods"] == [
        {"start": _at(99), "end": _at(106), "duration_s": 420.0, "open": False,
         "tests": ["temperature_c__gross", "temperature_c__spike"]}]
    assert device["outages"]["periods"] == [{"start": _at(899), "end": _at(930), "duration_s": 1860.0, "open": False}]


def test_duplicates_and_rejected_messages_are_counted_per_device_with_their_reasons(db, rubric, ingested_pilot):
    result = score_pilot(db, ingested_pilot.pilot_id, rubric)
    device = result.device_breakdowns()[0]
    assert device["deliveries"]["duplicates"] == {"dropped_at_ingest": 3, "repeated_device_time": 1}
    assert device["deliveries"]["rejected"] == {
        "total": 4, "by_reason": {"invalid_payload": 1, "malformed_json": 2, "timestamp_out_of_range": 1}}
    fleet = result.fleet_breakdown()
    assert fleet["deliveries"] == device["deliveries"] | {"stored": 1411, "delivered": 1410}


def test_interim_latency_percentiles_are_histogram_figures_within_one_percent_and_say_so(db, rubric, ingested_pilot):
    latency = score_pilot(db, ingested_pilot.pilot_id, rubric).device_breakdowns()[0]["latency"]
    exact = np.percentile(ingested_pilot.latencies, [50, 95])  # linear interpolation, as percentile_cont
    assert latency["method"] == HISTOGRAM
    assert (latency["p50_s"], latency["p95_s"]) == (pytest.approx(exact[0], rel=0.01), pytest.approx(exact[1], rel=0.01))


def test_scoring_before_ingest_counted_anything_reads_zero_duplicates_not_an_error(db, rubric, make_pilot):
    pilot = make_pilot()
    pilot.device("quiet")
    device = score_pilot(db, pilot.pilot_id, rubric, as_of=datetime.fromisoformat("2024-01-05T00:00Z")
                         ).device_breakdowns()[0]
    assert device["deliveries"]["duplicates"] == {"dropped_at_ingest": 0, "repeated_device_time": 0}
    assert device["deliveries"]["rejected"] == {"total": 0, "by_reason": {}}


def test_pilotlab_score_prints_the_breakdown_as_a_table_and_all_of_it_with_json(database_url, ingested_pilot):
    import json

    from tests.cli.test_cli import run

    table = run("score", ingested_pilot.pilot_id, "--database-url", database_url)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith(f"pilot {ingested_pilot.pilot_id}: score ") and "rubric v3" in lines[0]
    assert "  availability 470/480 = 0.9792 slots" in table.stdout
    assert "QC of 1410 delivered readings: 1403 pass, 0 suspect, 7 fail" in table.stdout
    assert "duplicates 3 dropped at ingest, 1 repeated device times; 4 rejected" in table.stdout
    assert f"({HISTOGRAM})" in table.stdout
    row = next(line for line in lines if line.strip().startswith(ingested_pilot.device_id))
    assert row.split()[1:5] == ["470/480", "=", "0.9792", "1410/1440"]
    assert (f"  {ingested_pilot.device_id} incident 2024-01-01T01:39:00Z to 2024-01-01T01:46:00Z, 7 min "
            "[temperature_c__gross, temperature_c__spike]") in lines
    assert "rejected by reason: invalid_payload 1, malformed_json 2, timestamp_out_of_range 1" in lines

    full = run("score", ingested_pilot.pilot_id, "--json", "--database-url", database_url)
    document = json.loads(full.stdout)
    assert document["breakdown"]["deliveries"]["duplicates"] == {"dropped_at_ingest": 3, "repeated_device_time": 1}
    [device] = document["device_breakdowns"]
    assert device["outages"]["periods"] == [{"start": "2024-01-01T14:59:00Z", "end": "2024-01-01T15:30:00Z",
                                             "duration_s": 1860.0, "open": False}]


def test_a_signed_record_carries_the_exact_latency_percentiles(db, rubric, ingested_pilot, tmp_path):
    from scoring.breakdown import EXACT
    from scoring.issuing import sign_record
    from scoring.records import verify
    from scoring.signing import generate_key

    key = generate_key(tmp_path / "signing.pem")
    issued = sign_record(db, ingested_pilot.pilot_id, rubric, key)
    record = verify(issued.document, key.public_key())
    # percentile_cont = numpy's linear interpolation, over the 1,410 delivered readings (the repeat of
    # reading 700 under another seq is no delivery; the 150 °C readings are)
    p50, p95 = np.percentile(ingested_pilot.latencies, [50, 95])
    [device] = record["evidence"]["device_breakdowns"]
    assert device["latency"] == {"p50_s": round(p50, 6), "p95_s": round(p95, 6), "method": EXACT}
    assert record["metrics"]["latency_p95_median_s"] == round(p95, 6)
    assert record["evidence"]["fleet_breakdown"]["latency"] == {
        "p50_median_s": round(p50, 6), "p95_median_s": round(p95, 6), "method": EXACT}
    # the same figures as the raw pass, the reference the rollups are held to
    raw = score_pilot(db, ingested_pilot.pilot_id, rubric, raw=True).devices[0]
    assert (raw.latency_p50_s, raw.latency_p95_s) == (pytest.approx(p50, abs=1e-9), pytest.approx(p95, abs=1e-9))


def test_under_rubric_v1_a_record_takes_its_exact_latency_from_the_raw_pass(db, ingested_pilot):
    from scoring.latency import exact_latencies
    from scoring.metrics import raw_device_metrics
    from scoring.rubric import load_rubric
    from scoring.window import load_pilot, pilot_window

    v1 = load_rubric(version="1").rubric
    window = pilot_window(db, load_pilot(db, ingested_pilot.pilot_id), v1, INGEST_DAY + timedelta(days=1))
    [raw] = raw_device_metrics(db, v1, window.scored, {})
    # v1 times valid readings only: the seven failed ones are left out
    valid = [s for i, s in enumerate(ingested_pilot.latencies) if not 99 <= _sent(i) <= 105]
    assert exact_latencies(db, v1, window.scored) == {ingested_pilot.device_id: (raw.latency_p50_s, raw.latency_p95_s)}
    assert raw.latency_p95_s == pytest.approx(float(np.percentile(valid, 95)), abs=1e-9)


def _sent(k: int) -> int:
    """The reading number of the k-th delivered reading (900..929 were not sent)."""
    return k if k < 900 else k + 30

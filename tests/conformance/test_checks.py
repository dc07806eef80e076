"""Each conformance check passes for a conformant simulated device and fails for the non-conformant
mode that breaks it, over the real broker and ingest worker (tests/conformance/conftest.py)."""

from __future__ import annotations

import pytest

from tests.conformance.conftest import RunOutcome

NATIVE_CHECKS = ("credentials", "topics", "payloads", "measurements", "interval", "clock", "sequence", "qos", "battery")
LORAWAN_CHECKS = ("payloads", "measurements", "interval", "sequence", "lorawan_session", "codec_mapping", "battery")


def test_a_conformant_device_passes_every_check_that_applies_and_its_report_passes(conformance_run: RunOutcome) -> None:
    report = conformance_run.report("ok")
    outcomes = {c["name"]: c["outcome"] for c in report["checks"]}
    assert outcomes == {**{name: "pass" for name in NATIVE_CHECKS},
                        "lorawan_session": "not_applicable", "codec_mapping": "not_applicable"}
    assert report["passed"] is True and report["summary"]["fail"] == []
    assert report["device"]["transport"] == "mqtt"


def test_a_conformant_lorawan_device_passes_its_checks_and_the_mqtt_ones_do_not_apply(conformance_run: RunOutcome) -> None:
    outcomes = {c["name"]: c["outcome"] for c in conformance_run.report("lora-ok")["checks"]}
    assert outcomes == {**{name: "pass" for name in LORAWAN_CHECKS}, "credentials": "not_applicable",
                        "topics": "not_applicable", "clock": "not_applicable", "qos": "not_applicable"}
    session = conformance_run.check("lora-ok", "lorawan_session")
    assert session["evidence"]["joins_in_run"] == 1 and session["message"].startswith("joined at")


# (device, check, words the message must hold: what was wrong and what to do)
FAILURES = [
    ("wrong-topic", "topics", ["telemetry2", "the contract topics are", "/telemetry, "]),
    ("drifting-clock", "clock", ["drifted", "NTP"]),
    ("wrong-interval", "interval", ["less often than declared", "2 s ± 10%"]),
    ("bad-payload", "payloads", ["refused", "invalid_payload", "expected a number"]),
    ("missing-measurement", "measurements", ["humidity_pct", "declared but not reported"]),
    ("no-battery", "battery", ["battery_pct", "percent"]),
    ("counter-reset", "sequence", ["went back", "non-volatile"]),
    ("qos0", "qos", ["at QoS 0", "QoS 1"]),
    ("revoked", "credentials", ["revoked", "lost"]),
    ("silent", "credentials", ["nothing from", "client id"]),
    ("lora-silent", "lorawan_session", ["no join and no uplink"]),
    ("lora-badcodec", "codec_mapping", ["unknown_fport", "fPort 1 is not in device profile"]),
]


@pytest.mark.parametrize(("device", "check", "words"), FAILURES, ids=[f"{d}-{c}" for d, c, _ in FAILURES])
def test_each_non_conformant_mode_fails_its_check_saying_what_to_fix(conformance_run: RunOutcome, device: str,
                                                                      check: str, words: list[str]) -> None:
    result = conformance_run.check(device, check)
    assert result["outcome"] == "fail", result
    for word in words:
        assert word in result["message"], (word, result["message"])
    report = conformance_run.report(device)
    assert report["passed"] is False and check in report["summary"]["fail"]


@pytest.mark.parametrize("device", ["drifting-clock", "wrong-interval", "missing-measurement", "counter-reset", "qos0"])
def test_a_mode_breaks_only_its_own_check(conformance_run: RunOutcome, device: str) -> None:
    failed = conformance_run.report(device)["summary"]["fail"]
    expected = {check for d, check, _ in FAILURES if d == device}
    assert set(failed) == expected


def test_failures_carry_their_evidence_and_at_most_three_examples(conformance_run: RunOutcome) -> None:
    topics = conformance_run.check("wrong-topic", "topics")
    assert 1 <= len(topics["examples"]) <= 3
    assert all(e["topic"].endswith("/telemetry2") and e["reason"] == "topic_invalid" for e in topics["examples"])
    clock = conformance_run.check("drifting-clock", "clock")
    assert clock["evidence"]["worst_s"] < -60  # the device's ts runs ahead of pilotlab's receive time
    interval = conformance_run.check("wrong-interval", "interval")
    assert 3.6 <= interval["evidence"]["p_s"] <= 4.4 and interval["evidence"]["declared_s"] == 2
    sequence = conformance_run.check("counter-reset", "sequence")
    assert sequence["examples"][0]["to"] == 0 and sequence["evidence"]["went_back"] == 1
    qos = conformance_run.check("qos0", "qos")
    assert qos["evidence"]["at_qos_0_until_report"] >= qos["evidence"]["messages"] > 0
    assert conformance_run.check("ok", "qos")["evidence"]["at_qos_0_until_report"] == 0


def test_checks_a_device_cannot_have_are_not_applicable(conformance_run: RunOutcome) -> None:
    for check in ("measurements", "battery"):
        assert conformance_run.check("plain", check)["outcome"] == "not_applicable"
    assert conformance_run.check("mains", "battery")["outcome"] == "not_applicable"
    assert conformance_run.check("mains", "measurements")["outcome"] == "pass"


def test_the_run_exits_1_and_prints_each_devices_checks(conformance_run: RunOutcome) -> None:
    assert conformance_run.exit_code == 1  # some devices failed
    out = conformance_run.stdout
    assert f"device {conformance_run.device['ok']}: PASSED" in out
    assert f"device {conformance_run.device['qos0']}: FAILED" in out
    assert "FAIL  qos " in out and "n/a   lorawan_session" in out

"""A device's conformance page figures: the device as a run sees it, its runs newest first (as GET
/devices/{id}/conformance lists them), and the newest report's checks read from the signed file,
each with its outcome, the message saying what to fix, its evidence and examples as text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from conformance.observations import DeviceUnderTest, load_device
from conformance.runs import Run, StoredReport, get_report, runs_of
from conformance.thresholds import load_thresholds

OUTCOME_WORDS = {"pass": "pass", "fail": "fail", "not_applicable": "not applicable"}


@dataclass(frozen=True)
class CheckView:
    name: str
    outcome: str          # pass, fail, not_applicable (the report's word)
    message: str          # what was seen and what to change
    evidence: list[tuple[str, str]]
    examples: list[str]

    @property
    def outcome_words(self) -> str:
        return OUTCOME_WORDS.get(self.outcome, self.outcome)


@dataclass(frozen=True)
class ConformanceView:
    device: DeviceUnderTest
    timezone: str
    runs: list[Run]
    report: StoredReport | None      # the newest report
    record: dict[str, Any] | None    # its signed body
    checks: list[CheckView]
    default_duration_s: int          # the conformance profile's
    shortest_s: int                  # a run lasts at least this long for this device
    now: datetime


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


def _check(found: dict[str, Any]) -> CheckView:
    return CheckView(name=found["name"], outcome=found["outcome"], message=found.get("message", ""),
                     evidence=[(k, _text(v)) for k, v in (found.get("evidence") or {}).items()],
                     examples=[", ".join(f"{k} {_text(v)}" for k, v in e.items()) for e in found.get("examples") or []])


def conformance(conn: psycopg.Connection, device_id: str) -> ConformanceView:
    device = load_device(conn, device_id)
    row = conn.execute("SELECT timezone FROM pilot WHERE id = %s", (device.pilot_id,)).fetchone()
    runs = runs_of(conn, [device_id])
    newest = next((r.report_id for r in runs if r.report_id is not None), None)
    report = get_report(conn, newest) if newest is not None else None
    # the report as signed ({"record": report, "signature": ...}: conformance.report.sign_report)
    record = json.loads(report.document)["record"] if report is not None else None
    rules = load_thresholds().thresholds.run
    return ConformanceView(device=device, timezone=(row[0] if row else None) or "UTC", runs=runs, report=report,
                           record=record, checks=[_check(c) for c in (record or {}).get("checks", [])],
                           default_duration_s=int(rules.default_duration_s),
                           shortest_s=int(rules.min_intervals * device.reporting_interval_s), now=datetime.now(UTC))

"""Conformance runs and their reports in the database: started for devices, finished into signed
reports kept per device (store/sql/0021), and the pilot flag that requires a passed report.

A run is one device observed over [started_at, ends_at) of pilotlab's receive time. Starting it
stores nothing but the run (its thresholds and ingest's counters at that moment); the device
publishes as it will in the pilot and ingest stores what arrives as always. Once `ends_at` plus the
profile's settle time has passed, `finish` reads what ingest stored (conformance.observations),
judges it (conformance.checks), signs the report with the records' key and stores it; the database
appends it to the transparency log and the tree head of the new size is signed in the same
transaction, as for reference records. Finishing twice gives the first report: the run's row is
locked while it is made.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from conformance.checks import CheckResult, evaluate
from conformance.observations import counters, load_device, observe
from conformance.report import report_body, sign_report
from conformance.thresholds import LoadedThresholds, stored_thresholds
from pilotlab.errors import Conflict, InvalidRequest, NotFound
from scoring.records import record_id
from scoring.signing import key_id
from scoring.transparency.bundle import make_bundle
from scoring.transparency.log import current_tree_head, inclusion, sign_pending, tree_head_at
from store.registry import unknown_reference

MAX_DEVICES = 100


@dataclass(frozen=True)
class Run:
    id: str
    device_id: str
    started_at: datetime
    ends_at: datetime
    settle_s: float
    finished_at: datetime | None
    passed: bool | None
    report_id: str | None

    @property
    def report_due(self) -> datetime:
        """When its report can be made: the end, and the settle time for ingest to commit."""
        return self.ends_at + timedelta(seconds=self.settle_s)

    @property
    def status(self) -> str:
        if self.finished_at is None:
            return "running"
        return "passed" if self.passed else "failed"


@dataclass(frozen=True)
class StoredReport:
    id: str
    run_id: str
    device_id: str
    issued_at: datetime
    passed: bool
    key_id: str
    document: bytes


@dataclass(frozen=True)
class Finished:
    run: Run
    report: StoredReport
    results: list[CheckResult]  # empty when the run was finished before


_RUN = ("SELECT id, device_id, started_at, ends_at, (thresholds->'run'->>'settle_s')::float8 AS settle_s, "
        "finished_at, passed, report_id FROM conformance_run")
_REPORT = "SELECT id, run_id, device_id, issued_at, passed, key_id, document FROM conformance_report"


def start(conn: psycopg.Connection, device_ids: Sequence[str], duration_s: float, thresholds: LoadedThresholds,
          now: datetime | None = None) -> list[Run]:
    """A run per device, all over the same window from now; nothing is stored if one is refused."""
    ids = list(dict.fromkeys(device_ids))
    if not ids or len(ids) > MAX_DEVICES:
        raise InvalidRequest(f"name 1-{MAX_DEVICES} devices to run (got {len(ids)})")
    rules = thresholds.thresholds.run
    devices = []
    for device_id in ids:
        try:
            devices.append(load_device(conn, device_id))
        except NotFound:
            raise unknown_reference("device_ids", device_id, "device") from None
    for device in devices:
        if device.decommissioned_at is not None:
            raise Conflict(f"device {device.id!r} is decommissioned: its messages are refused, there is nothing to run")
        shortest = rules.min_intervals * device.reporting_interval_s
        if duration_s < shortest:
            raise InvalidRequest(f"a run of {duration_s:g} s is too short for device {device.id!r}: it reports every "
                                 f"{device.reporting_interval_s} s, a run lasts at least {rules.min_intervals} intervals "
                                 f"({shortest} s)")
    started = now or datetime.now(UTC)
    ends = started + timedelta(seconds=duration_s)
    with conn.transaction():
        for device in devices:
            conn.execute("INSERT INTO conformance_run (id, device_id, started_at, ends_at, thresholds, thresholds_digest, "
                         "baseline) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                         (f"cr_{secrets.token_hex(8)}", device.id, started, ends, Jsonb(thresholds.stored()),
                          thresholds.digest, Jsonb(counters(conn, device.id))))
    return [r for r in runs_of(conn, ids) if r.started_at == started]


def get_run(conn: psycopg.Connection, run_id: str) -> Run:
    with conn.cursor(row_factory=class_row(Run)) as cur:
        found = cur.execute(_RUN + " WHERE id = %s", (run_id,)).fetchone()
    if found is None:
        raise NotFound(f"no conformance run with id {run_id!r}")
    return found


def runs_of(conn: psycopg.Connection, device_ids: Sequence[str]) -> list[Run]:
    """The devices' runs, newest first: each device's history."""
    with conn.cursor(row_factory=class_row(Run)) as cur:
        return cur.execute(_RUN + " WHERE device_id = ANY(%s) ORDER BY started_at DESC, device_id, id",
                           (list(device_ids),)).fetchall()


def get_report(conn: psycopg.Connection, report_id: str) -> StoredReport:
    with conn.cursor(row_factory=class_row(StoredReport)) as cur:
        found = cur.execute(_REPORT + " WHERE id = %s", (report_id,)).fetchone()
    if found is None:
        raise NotFound(f"no conformance report with id {report_id!r}")
    return found


def finish(conn: psycopg.Connection, run_id: str, key: Ed25519PrivateKey, now: datetime | None = None) -> Finished:
    """Judge the run, sign its report, store it and log it; the stored one if it was made before.
    Conflict while the run has not reached its report time."""
    with conn.transaction():
        row = conn.execute("SELECT device_id, started_at, ends_at, thresholds, thresholds_digest, baseline, report_id "
                           "FROM conformance_run WHERE id = %s FOR UPDATE", (run_id,)).fetchone()
        if row is None:
            raise NotFound(f"no conformance run with id {run_id!r}")
        device_id, started_at, ends_at, stored, digest, baseline, done = row
        if done is not None:
            return Finished(get_run(conn, run_id), get_report(conn, done), [])
        thresholds = stored_thresholds(stored, digest)
        due = ends_at + timedelta(seconds=thresholds.thresholds.run.settle_s)
        moment = now or datetime.now(UTC)
        issued_at = moment.replace(microsecond=0)
        if moment < due:
            raise Conflict(f"conformance run {run_id!r} ends at {ends_at.isoformat(timespec='seconds')}; its report "
                           f"is made from {due.isoformat(timespec='seconds')}")
        observations = observe(conn, load_device(conn, device_id), started_at, ends_at, baseline)
        results = evaluate(observations, thresholds.thresholds)
        body = report_body(run_id, observations, results, thresholds, issued_at)
        document = sign_report(body, key)
        report_id = record_id(document)
        conn.execute("INSERT INTO conformance_report (id, run_id, device_id, issued_at, passed, key_id, document) "
                     "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                     (report_id, run_id, device_id, issued_at, body["passed"], key_id(key.public_key()), document))
        conn.execute("UPDATE conformance_run SET finished_at = %s, passed = %s, report_id = %s WHERE id = %s",
                     (issued_at, body["passed"], report_id, run_id))
        sign_pending(conn, key)
        return Finished(get_run(conn, run_id), get_report(conn, report_id), results)


def finish_if_due(conn: psycopg.Connection, run: Run, key: Callable[[], Ed25519PrivateKey],
                  now: datetime | None = None) -> Run:
    """The run, with its report made first if it is due and not made yet."""
    if run.finished_at is not None or (now or datetime.now(UTC)) < run.report_due:
        return run
    return finish(conn, run.id, key(), now).run


def report_bundle(conn: psycopg.Connection, report_id: str, key: Callable[[], Ed25519PrivateKey],
                  tree_size: int | None = None) -> bytes:
    """The stored report with its inclusion proof and the signed tree head of `tree_size` (default:
    the newest, signed now with `key()` if leaves were appended without one)."""
    document = get_report(conn, report_id).document
    head = current_tree_head(conn, key) if tree_size is None else tree_head_at(conn, tree_size)
    return make_bundle(document, inclusion(conn, report_id, head.tree_size), head)


def has_passed(conn: psycopg.Connection, device_id: str) -> bool:
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM conformance_report WHERE device_id = %s AND passed)",
                       (device_id,)).fetchone()
    return bool(row and row[0])


def requirement(conn: psycopg.Connection, pilot_id: str) -> bool:
    """Whether the pilot requires a passed conformance report before a device is commissioned."""
    row = conn.execute("SELECT conformance_required FROM pilot WHERE id = %s", (pilot_id,)).fetchone()
    if row is None:
        raise NotFound(f"no pilot with id {pilot_id!r}")
    return bool(row[0])


def require(conn: psycopg.Connection, pilot_id: str, required: bool) -> bool:
    with conn.transaction():
        row = conn.execute("UPDATE pilot SET conformance_required = %s WHERE id = %s RETURNING conformance_required",
                           (required, pilot_id)).fetchone()
    if row is None:
        raise NotFound(f"no pilot with id {pilot_id!r}")
    return bool(row[0])


def run_json(run: Run) -> dict[str, Any]:
    """A run as the API and `conformance history` show it."""
    return {"id": run.id, "device_id": run.device_id, "status": run.status, "started_at": run.started_at,
            "ends_at": run.ends_at, "report_due": run.report_due, "finished_at": run.finished_at,
            "passed": run.passed, "report_id": run.report_id}

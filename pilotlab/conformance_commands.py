"""`pilotlab conformance`: a device checked against the contract and its profile before the pilot.

    pilotlab conformance run DEVICE… [--duration 15m] [--profile FILE] [--out DIR]
                                    observe the devices while they publish as in the pilot, then judge,
                                    sign and store a report each; exit 0 all passed, 1 one failed
    pilotlab conformance finish RUN_ID… [--out DIR]       make the reports of runs started elsewhere (API)
    pilotlab conformance history DEVICE [--json]          a device's runs and reports, newest first
    pilotlab conformance report REPORT_ID --out FILE [--tree-size N]   a stored report's bundle
    pilotlab conformance verify FILE --key PUBKEY [--tree-head STH]    exit 0 valid, 1 invalid; no database
    pilotlab conformance require PILOT [--off]            the pilot requires a passed report to commission

Reports are signed with the records' key (PILOTLAB_SIGNING_KEY) and written as bundles (the report,
its inclusion proof in the transparency log and the signed tree head). Errors are one line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pilotlab.errors import ConfigError, InvalidRequest, RecordInvalid
from pilotlab.settings import Settings

EXIT_FAILED = 1
_UNITS = {"s": 1, "m": 60, "h": 3600}
_MARK = {"pass": "pass", "fail": "FAIL", "not_applicable": "n/a "}


def add_conformance_commands(commands: Any, service_flags: Callable[..., None],
                             settings: Callable[..., Settings]) -> None:
    conformance = commands.add_parser("conformance", help="check devices against the contract before a pilot: run, "
                                                          "verify, history")
    tasks = conformance.add_subparsers(dest="conformance_command", metavar="TASK",
                                       parser_class=commands._parser_class, required=True)
    run = tasks.add_parser("run", help="observe devices publishing as in the pilot, then judge, sign and store reports")
    service_flags(run)
    run.add_argument("devices", nargs="+", metavar="DEVICE", help="registered device ids")
    run.add_argument("--duration", type=duration, help="how long to observe: 900, 90s, 15m, 1h (default: the "
                                                       "conformance profile's, 15m)")
    run.add_argument("--profile", help="conformance profile YAML (default: bundled conformance/profiles/v1.yaml)")
    run.add_argument("--out", default=".", help="directory for the reports' bundles (default: here)")
    run.add_argument("--signing-key", help="Ed25519 private key PEM (env PILOTLAB_SIGNING_KEY)")
    run.set_defaults(run=lambda args: _run(args, settings(args, signing_key="signing_key")))

    finish = tasks.add_parser("finish", help="make the reports of runs that ended (started through the API)")
    service_flags(finish)
    finish.add_argument("runs", nargs="+", metavar="RUN_ID")
    finish.add_argument("--out", default=".", help="directory for the reports' bundles (default: here)")
    finish.add_argument("--signing-key", help="Ed25519 private key PEM (env PILOTLAB_SIGNING_KEY)")
    finish.set_defaults(run=lambda args: _finish(args, settings(args, signing_key="signing_key")))

    history = tasks.add_parser("history", help="a device's conformance runs and reports, newest first")
    service_flags(history)
    history.add_argument("device", help="device id")
    history.add_argument("--json", action="store_true", help="print JSON")
    history.set_defaults(run=lambda args: _history(args, settings(args)))

    report = tasks.add_parser("report", help="write a stored report's bundle (report, inclusion proof, tree head)")
    service_flags(report)
    report.add_argument("report_id", help="the report's id (SHA-256 of its file)")
    report.add_argument("--out", required=True, help="where to write the bundle (JSON)")
    report.add_argument("--tree-size", type=int, help="prove against the signed tree head of this size (default: newest)")
    report.add_argument("--signing-key", help="Ed25519 private key PEM, to sign a tree head if none covers the log yet")
    report.set_defaults(run=lambda args: _report(args, settings(args, signing_key="signing_key")))

    verify = tasks.add_parser("verify", help="verify a conformance report or its bundle with the public key (no database)")
    verify.add_argument("file", help="the report, or its bundle (then its inclusion in the log is checked too)")
    verify.add_argument("--key", required=True, help="the signer's Ed25519 public key (PEM): the records' key")
    verify.add_argument("--tree-head", help="a signed tree head you trust: the bundle must prove against it")
    verify.set_defaults(run=_verify)

    require = tasks.add_parser("require", help="require a passed conformance report before a pilot's devices are "
                                               "commissioned (--off: no longer)")
    service_flags(require)
    require.add_argument("pilot", help="pilot id")
    require.add_argument("--off", action="store_true", help="stop requiring it")
    require.set_defaults(run=lambda args: _require(args, settings(args)))


def duration(text: str) -> float:
    """Seconds from `900`, `90s`, `15m` or `1h`."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if match is None or float(match[1]) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: give seconds or a number with s, m or h (15m)")
    return float(match[1]) * _UNITS[match[2] or "s"]


def _out_dir(given: str) -> Path:
    out = Path(given)
    if not out.is_dir():
        raise ConfigError(f"cannot write reports to {out}: it is not a directory")
    return out


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from conformance.runs import start
    from conformance.thresholds import load_thresholds
    from scoring.signing import load_private_key
    from store.connection import connect

    out = _out_dir(args.out)
    thresholds = load_thresholds(Path(args.profile) if args.profile else None)
    key = load_private_key(settings.signing_key)  # before the run: a missing key costs nothing
    seconds = args.duration or thresholds.thresholds.run.default_duration_s
    url = settings.require_database_url()
    with connect(url, autocommit=True) as conn:
        runs = start(conn, args.devices, seconds, thresholds)
    due = runs[0].report_due
    print(f"conformance run of {', '.join(r.device_id for r in runs)} for {seconds:g} s, until "
          f"{runs[0].ends_at:%H:%M:%S} UTC (conformance profile {thresholds.source}): let the devices publish as they "
          f"will in the pilot", file=sys.stderr, flush=True)
    _wait_until(due)
    with connect(url, autocommit=True) as conn:
        return _reports(conn, [r.id for r in runs], key, out)


def _wait_until(due: datetime) -> None:
    """Sleep until `due`, a countdown on stderr (Ctrl-C leaves the runs to `conformance finish`)."""
    while (left := (due - datetime.now(UTC)).total_seconds()) > 0:
        print(f"\r{left:5.0f} s left ", end="", file=sys.stderr, flush=True)
        time.sleep(min(left, 1.0))
    print("\r", end="", file=sys.stderr, flush=True)


def _finish(args: argparse.Namespace, settings: Settings) -> int:
    from scoring.signing import load_private_key
    from store.connection import connect

    out = _out_dir(args.out)
    key = load_private_key(settings.signing_key)
    with connect(settings.require_database_url(), autocommit=True) as conn:
        return _reports(conn, args.runs, key, out)


def _reports(conn: Any, run_ids: Sequence[str], key: Any, out: Path) -> int:
    """Finish each run, write its bundle into `out` and print its checks; 1 if any failed."""
    from conformance.runs import finish, report_bundle

    failed = 0
    for run_id in run_ids:
        finished = finish(conn, run_id, key)
        path = out / f"conformance-{finished.run.device_id}-{run_id}.json"
        try:
            path.write_bytes(report_bundle(conn, finished.report.id, lambda: key))
        except OSError as exc:
            raise ConfigError(f"cannot write the report to {path}: {exc.strerror}") from None
        report = json.loads(finished.report.document)["record"]
        if not report["passed"]:
            failed += 1
        print(f"device {finished.run.device_id}: {'PASSED' if report['passed'] else 'FAILED'}, report "
              f"{finished.report.id} in {path}")
        for check in report["checks"]:
            print(f"  {_MARK[check['outcome']]}  {check['name']:<16} {check['message']}")
    return EXIT_FAILED if failed else 0


def _history(args: argparse.Namespace, settings: Settings) -> int:
    from conformance.observations import load_device
    from conformance.runs import run_json, runs_of
    from scoring.records import plain
    from store.connection import connect

    with connect(settings.require_database_url(), autocommit=True) as conn:
        load_device(conn, args.device)
        runs = runs_of(conn, [args.device])
    if args.json:
        print(json.dumps([plain(run_json(r)) for r in runs], indent=2))
        return 0
    if not runs:
        print(f"device {args.device}: no conformance run yet (`pilotlab conformance run {args.device}`)")
    for r in runs:
        print(f"{r.started_at:%Y-%m-%d %H:%M:%S} {r.id} {r.status:<7} report {r.report_id or '-'}")
    return 0


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from conformance.runs import report_bundle
    from scoring.signing import load_private_key
    from store.connection import connect

    out = Path(args.out)
    with connect(settings.require_database_url(), autocommit=True) as conn:
        data = report_bundle(conn, args.report_id, lambda: load_private_key(settings.signing_key), args.tree_size)
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise ConfigError(f"cannot write the bundle to {out}: {exc.strerror}") from None
    print(f"bundle of conformance report {args.report_id} written to {out}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from conformance.report import is_bundle, verify_report
    from pilotlab.log_commands import read_source
    from scoring.signing import load_public_key
    from scoring.transparency.tree_head import read_tree_head

    public = load_public_key(Path(args.key))
    document = read_source(args.file, "the report")
    if args.tree_head and not is_bundle(document):
        raise InvalidRequest(f"{args.file} is a bare report, without an inclusion proof: verify its bundle against the "
                             "tree head (`pilotlab conformance report REPORT_ID --out FILE`)")
    try:
        trusted = read_tree_head(read_source(args.tree_head, "the tree head"), public) if args.tree_head else None
        verified = verify_report(document, public, trusted)
    except RecordInvalid as exc:
        print(f"pilotlab: conformance report {args.file} is INVALID: {exc}", file=sys.stderr)
        return EXIT_FAILED
    report = verified.report
    logged = (f"; in the log: leaf {verified.leaf_index} of the tree of {verified.tree_head.tree_size} signed "
              f"{verified.tree_head.timestamp}" if verified.tree_head is not None
              else " (signature only: its bundle also proves it is in the log)")
    print(f"conformance report {args.file} is valid: device {report['device']['id']}, "
          f"{'passed' if report['passed'] else 'failed'}, issued {report['issued_at']}{logged}")
    return 0


def _require(args: argparse.Namespace, settings: Settings) -> int:
    from conformance.runs import require
    from store.connection import connect

    with connect(settings.require_database_url(), autocommit=True) as conn:
        required = require(conn, args.pilot, not args.off)
    print(f"pilot {args.pilot}: a passed conformance report is {'now required' if required else 'not required'} "
          "before a device is commissioned")
    return 0

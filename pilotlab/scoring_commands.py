"""`pilotlab score` and `pilotlab record`: scoring a pilot and issuing / verifying signed records.

    pilotlab score PILOT [--as-of T] [--json] [--save]    score now, progress on stderr
    pilotlab score --daily [--once]                        daily rescoring of running pilots (score history)
    pilotlab record issue PILOT --out FILE [--as-of T]     score, sign with PILOTLAB_SIGNING_KEY, store
    pilotlab record verify FILE --key PUBKEY               exit 0 valid, 1 invalid (reason), no database
    pilotlab record keygen FILE                            a new Ed25519 key (FILE, FILE.pub)

Errors are one line and exit code 2, except an invalid record: exit code 1 with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pilotlab.errors import ConfigError, RecordInvalid
from pilotlab.settings import Settings

EXIT_INVALID = 1


def add_scoring_commands(commands: Any, service_flags: Callable[..., None],
                         settings: Callable[..., Settings]) -> None:
    score = commands.add_parser("score", help="score a pilot from its telemetry (or --daily: rescore every day)")
    service_flags(score)
    score.add_argument("pilot", nargs="?", help="pilot id")
    score.add_argument("--as-of", type=_when, help="window end (RFC 3339); default: start of today in the pilot's time zone")
    score.add_argument("--rubric", help="rubric YAML file (default: bundled scoring/rubrics/v1.yaml)")
    score.add_argument("--json", action="store_true", help="print the full summary as JSON")
    score.add_argument("--save", action="store_true", help="also keep it as the day's score history entry")
    score.add_argument("--daily", action="store_true", help="rescore running pilots once per local day, forever")
    score.add_argument("--once", action="store_true", help="with --daily: one pass, then exit")
    score.set_defaults(run=lambda args: _score(args, settings(args, rubric="rubric")))

    record = commands.add_parser("record", help="signed reference records: issue, verify, keygen")
    tasks = record.add_subparsers(dest="record_command", metavar="TASK", parser_class=commands._parser_class, required=True)
    issue = tasks.add_parser("issue", help="score a pilot and issue a signed reference record")
    service_flags(issue)
    issue.add_argument("pilot", help="pilot id")
    issue.add_argument("--out", required=True, help="where to write the signed record (JSON)")
    issue.add_argument("--as-of", type=_when, help="window end (RFC 3339)")
    issue.add_argument("--rubric", help="rubric YAML file")
    issue.add_argument("--signing-key", help="Ed25519 private key PEM (env PILOTLAB_SIGNING_KEY)")
    issue.set_defaults(run=lambda args: _issue(args, settings(args, rubric="rubric", signing_key="signing_key")))
    verify = tasks.add_parser("verify", help="verify a signed record with the public key (no database needed)")
    verify.add_argument("file", help="the signed record")
    verify.add_argument("--key", required=True, help="the signer's Ed25519 public key (PEM)")
    verify.set_defaults(run=_verify)
    keygen = tasks.add_parser("keygen", help="generate an Ed25519 signing key (FILE and FILE.pub)")
    keygen.add_argument("file", help="where to write the private key")
    keygen.set_defaults(run=_keygen)


def _when(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a time zone offset, e.g. Z or +09:00")
    return moment


def _progress(done: int, total: int) -> None:
    print(f"\rscoring devices {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)


def _score(args: argparse.Namespace, settings: Settings) -> int:
    from scoring.rubric import load_rubric
    from scoring.schedule import CHECK_EVERY_S, rescore_due
    from scoring.scorer import save_history, score_pilot, summary
    from store.connection import connect

    rubric = load_rubric(settings.rubric)
    url = settings.require_database_url()
    if args.daily:
        while True:
            with connect(url, autocommit=True) as conn:
                scored = rescore_due(conn, rubric)
            print(f"daily rescoring: {', '.join(scored) or 'nothing due'}", flush=True)
            if args.once:
                return 0
            time.sleep(CHECK_EVERY_S)
    if not args.pilot:
        raise ConfigError("name a pilot (pilotlab score PILOT) or pass --daily")
    started = time.monotonic()
    with connect(url, autocommit=True) as conn:
        result = score_pilot(conn, args.pilot, rubric, as_of=args.as_of, progress=_progress)
        if args.save:
            save_history(conn, result)
    elapsed = time.monotonic() - started
    if args.json:
        print(json.dumps(summary(result), indent=2))
    else:
        f = result.fleet
        print(f"pilot {args.pilot}: score {f.score:.2f}, verdict {f.verdict} "
              f"({f.fleet['scored']} devices scored, rubric v{rubric.rubric.version}, {elapsed:.2f} s)")
        for gate in f.gates:
            value = "n/a" if gate.value is None else f"{gate.value:.4g}"
            print(f"  {'pass' if gate.passed else 'FAIL'}  {gate.name}: {value} (threshold {gate.threshold:g})")
    return 0


def _issue(args: argparse.Namespace, settings: Settings) -> int:
    from scoring.issuing import sign_record, store_record
    from scoring.rubric import load_rubric
    from scoring.signing import load_private_key
    from store.connection import connect

    out = _record_path(args.out)  # before the work: a bad --out costs nothing and stores nothing
    rubric = load_rubric(settings.rubric)
    key = load_private_key(settings.signing_key)
    with connect(settings.require_database_url(), autocommit=True) as conn:
        issued = sign_record(conn, args.pilot, rubric, key, as_of=args.as_of, progress=_progress)
        _store_and_write(conn, lambda: store_record(conn, issued), issued.document, out)
    print(f"record {issued.id} for {args.pilot}: verdict {issued.verdict}, score {issued.score:.2f}, written to {out}")
    return 0


def _record_path(given: str) -> Path:
    out = Path(given)
    if out.is_dir():
        raise ConfigError(f"cannot write the record to {out}: it is a directory; give a file name")
    if not out.parent.is_dir():
        raise ConfigError(f"cannot write the record to {out}: directory {out.parent} does not exist")
    return out


def _store_and_write(conn: Any, store: Callable[[], None], document: bytes, out: Path) -> None:
    """The record both stored and written to `out`, or neither: written in full to a temporary file
    beside `out` first, which replaces `out` inside the transaction that stores the row."""
    try:
        fd, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"cannot write the record to {out}: {exc.strerror}") from None
    placed = False
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(document)
            file.flush()
            os.fsync(file.fileno())
        with conn.transaction():
            store()
            os.replace(temporary, out)
            placed = True
    except OSError as exc:
        raise ConfigError(f"cannot write the record to {out}: {exc.strerror}") from None
    except BaseException:
        if placed:  # the commit failed after the file was put in place
            out.unlink(missing_ok=True)
        raise
    finally:
        Path(temporary).unlink(missing_ok=True)


def _verify(args: argparse.Namespace) -> int:
    from scoring.records import verify
    from scoring.signing import load_public_key

    public = load_public_key(Path(args.key))
    try:
        document = Path(args.file).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the record {args.file}: {exc.strerror}") from None
    try:
        record = verify(document, public)
    except RecordInvalid as exc:
        print(f"pilotlab: record {args.file} is INVALID: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(f"record {args.file} is valid: pilot {record['pilot']['id']}, verdict {record['verdict']}, "
          f"score {record['score']}, issued {record['issued_at']}")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from scoring.signing import generate_key, key_id

    path = Path(args.file)
    key = generate_key(path)
    print(f"Ed25519 key {key_id(key.public_key())}: private {path}, public {path}.pub")
    return 0


def demo_scoring_env(data_dir: Path) -> dict[str, str]:
    """For `pilotlab demo`: a signing key generated in the data dir and the bundled demo rubric."""
    from importlib import resources

    from scoring.signing import ensure_key

    key = data_dir / "record-signing-key.pem"
    ensure_key(key)
    rubric = resources.files("scoring.rubrics").joinpath("demo.yaml")
    return {"PILOTLAB_SIGNING_KEY": str(key), "PILOTLAB_RUBRIC": str(rubric)}

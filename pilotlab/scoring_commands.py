"""`pilotlab score` and `pilotlab record`: scoring a pilot and issuing / verifying signed records.

    pilotlab score PILOT [--as-of T] [--json] [--save]    score now with its breakdown (a table; --json: all of it),
                                                           progress on stderr
    pilotlab score --daily [--once]                        daily rescoring of running pilots (score history)
    pilotlab record issue PILOT --out FILE [--as-of T] [--bundle]   score, sign with PILOTLAB_SIGNING_KEY, store
                                                           (and log); --bundle: write the record's bundle
    pilotlab record bundle RECORD_ID --out FILE [--tree-size N]     a stored record with its inclusion proof
    pilotlab record verify FILE --key PUBKEY [--tree-head STH]      exit 0 valid, 1 invalid (reason), no database;
                                                           a bundle: signature and inclusion in the log
    pilotlab record keygen FILE                            a new Ed25519 key (FILE, FILE.pub)
    pilotlab log tree-head | log audit OLD NEW             the transparency log (pilotlab.log_commands)

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
from pilotlab.log_commands import add_log_commands, read_source
from pilotlab.settings import Settings

EXIT_INVALID = 1


def add_scoring_commands(commands: Any, service_flags: Callable[..., None],
                         settings: Callable[..., Settings]) -> None:
    score = commands.add_parser("score", help="score a pilot from its telemetry (or --daily: rescore every day)")
    service_flags(score)
    score.add_argument("pilot", nargs="?", help="pilot id")
    score.add_argument("--as-of", type=_when, help="window end (RFC 3339); default: start of today in the pilot's time zone")
    score.add_argument("--rubric", help="rubric YAML file (default: bundled scoring/rubrics/v3.yaml)")
    score.add_argument("--json", action="store_true",
                       help="print the summary and every device's breakdown as JSON (default: a readable table)")
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
    issue.add_argument("--bundle", action="store_true", help="write the record's bundle (record, inclusion proof, tree head)")
    issue.set_defaults(run=lambda args: _issue(args, settings(args, rubric="rubric", signing_key="signing_key")))
    bundle = tasks.add_parser("bundle", help="a stored record with its inclusion proof and signed tree head")
    service_flags(bundle)
    bundle.add_argument("record_id", help="the record's id (SHA-256 of its file)")
    bundle.add_argument("--out", required=True, help="where to write the bundle (JSON)")
    bundle.add_argument("--tree-size", type=int, help="prove against the signed tree head of this size (default: newest)")
    bundle.add_argument("--signing-key", help="Ed25519 private key PEM, to sign a tree head if none covers the log yet")
    bundle.set_defaults(run=lambda args: _bundle(args, settings(args, signing_key="signing_key")))
    verify = tasks.add_parser("verify", help="verify a signed record or bundle with the public key (no database needed)")
    verify.add_argument("file", help="the signed record, or its bundle (then its inclusion in the log is checked too)")
    verify.add_argument("--key", required=True, help="the signer's Ed25519 public key (PEM)")
    verify.add_argument("--tree-head", help="a signed tree head you trust: the bundle must prove against it")
    verify.set_defaults(run=_verify)
    keygen = tasks.add_parser("keygen", help="generate an Ed25519 signing key (FILE and FILE.pub)")
    keygen.add_argument("file", help="where to write the private key")
    keygen.set_defaults(run=_keygen)
    add_log_commands(commands, service_flags, settings)


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
    from pilotlab.score_table import render
    from scoring.records import plain
    from scoring.rubric import load_rubric
    from scoring.schedule import CHECK_EVERY_S, daily_pass
    from scoring.scorer import score_pilot, summary
    from scoring.stored_breakdowns import save_score
    from store.connection import connect

    rubric = load_rubric(settings.rubric)
    url = settings.require_database_url()
    if args.daily:
        while True:
            with connect(url, autocommit=True) as conn:
                scored = daily_pass(conn, rubric, settings.feedback_client_retention_days)
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
            save_score(conn, result)
    elapsed = time.monotonic() - started
    found, devices = summary(result), plain(result.device_breakdowns())
    if args.json:
        print(json.dumps({**found, "device_breakdowns": devices}, indent=2))
    else:
        print("\n".join(render(found, devices, elapsed)))
    return 0


def _issue(args: argparse.Namespace, settings: Settings) -> int:
    from scoring.issuing import sign_record, store_record
    from scoring.rubric import load_rubric
    from scoring.signing import load_private_key
    from scoring.transparency.bundle import make_bundle
    from scoring.transparency.log import inclusion
    from store.connection import connect

    out = _record_path(args.out)  # before the work: a bad --out costs nothing and stores nothing
    rubric = load_rubric(settings.rubric)
    key = load_private_key(settings.signing_key)
    with connect(settings.require_database_url(), autocommit=True) as conn:
        issued = sign_record(conn, args.pilot, rubric, key, as_of=args.as_of, progress=_progress)

        def store() -> bytes:
            head = store_record(conn, issued, key)
            if not args.bundle:
                return issued.document
            return make_bundle(issued.document, inclusion(conn, issued.id, head.tree_size), head)

        _store_and_write(conn, store, out)
    written = "its bundle" if args.bundle else "written"
    print(f"record {issued.id} for {args.pilot}: verdict {issued.verdict}, score {issued.score:.2f}, {written} to {out}")
    return 0


def _bundle(args: argparse.Namespace, settings: Settings) -> int:
    from scoring.signing import load_private_key
    from scoring.transparency.bundle import bundle_of
    from store.connection import connect

    out = _record_path(args.out)
    with connect(settings.require_database_url(), autocommit=True) as conn:
        data = bundle_of(conn, args.record_id, lambda: load_private_key(settings.signing_key), args.tree_size)
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise ConfigError(f"cannot write the bundle to {out}: {exc.strerror}") from None
    print(f"bundle of record {args.record_id} written to {out}")
    return 0


def _record_path(given: str) -> Path:
    out = Path(given)
    if out.is_dir():
        raise ConfigError(f"cannot write the record to {out}: it is a directory; give a file name")
    if not out.parent.is_dir():
        raise ConfigError(f"cannot write the record to {out}: directory {out.parent} does not exist")
    return out


def _store_and_write(conn: Any, store: Callable[[], bytes], out: Path) -> None:
    """The record both stored and written to `out` (what `store` returns), or neither: written in
    full to a temporary file beside `out`, which replaces `out` inside the transaction that stores
    the row."""
    try:
        fd, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"cannot write the record to {out}: {exc.strerror}") from None
    placed = False
    try:
        with os.fdopen(fd, "wb") as file, conn.transaction():
            file.write(store())
            file.flush()
            os.fsync(file.fileno())
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
    from scoring.transparency.bundle import is_bundle, verify_bundle
    from scoring.transparency.tree_head import read_tree_head

    public = load_public_key(Path(args.key))
    document = read_source(args.file, "the record")
    given_head = read_source(args.tree_head, "the tree head") if args.tree_head else None
    if given_head is not None and not is_bundle(document):
        raise ConfigError(f"{args.file} is a bare record, without an inclusion proof: verify its bundle against "
                          f"the tree head (`pilotlab record bundle ID`, or GET /records/ID?bundle=true)")
    try:
        if is_bundle(document):
            trusted = read_tree_head(given_head, public) if given_head is not None else None
            verified = verify_bundle(document, public, trusted)
            record, logged = verified.record, (f"; in the log: leaf {verified.leaf_index} of the tree of "
                                               f"{verified.tree_head.tree_size} signed {verified.tree_head.timestamp}")
        else:
            record, logged = verify(document, public), " (signature only: its bundle also proves it is in the log)"
    except RecordInvalid as exc:
        print(f"pilotlab: record {args.file} is INVALID: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(f"record {args.file} is valid: pilot {record['pilot']['id']}, verdict {record['verdict']}, "
          f"score {record['score']}, issued {record['issued_at']}{logged}")
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

"""`pilotlab log`: the records' transparency log, for its operator and for auditors.

    pilotlab log tree-head [--tree-size N] [--out FILE]    the signed tree head, from the database
    pilotlab log audit OLD NEW --key PUBKEY [--api URL]    NEW extends OLD: exit 0, else 1 (reason)

OLD and NEW are signed tree head files or URLs (https://host/log/tree-head?tree_size=N). The
consistency proof comes from the API (`--api`, default the server NEW or OLD was fetched from) or,
without one, from the database (--database-url / PILOTLAB_DATABASE_URL); either way it is checked
here, against the two signed roots, so a log that removed, reordered or altered a leaf between
them fails. Errors are one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pilotlab.errors import ConfigError, InvalidRequest, RecordInvalid, ServiceUnavailable
from pilotlab.settings import Settings

EXIT_INVALID = 1
_TREE_HEAD_PATH = "/log/tree-head"


def add_log_commands(commands: Any, service_flags: Callable[..., None], settings: Callable[..., Settings]) -> None:
    log = commands.add_parser("log", help="the records' transparency log: tree heads, audit")
    tasks = log.add_subparsers(dest="log_command", metavar="TASK", parser_class=commands._parser_class, required=True)
    head = tasks.add_parser("tree-head", help="the log's signed tree head (newest, or of --tree-size)")
    service_flags(head)
    head.add_argument("--tree-size", type=int, help="the tree head of this size (default: newest)")
    head.add_argument("--out", help="write it to this file (default: standard output)")
    head.add_argument("--signing-key", help="Ed25519 private key PEM, to sign a tree head if none covers the log yet")
    head.set_defaults(run=lambda args: _tree_head(args, settings(args, signing_key="signing_key")))
    audit = tasks.add_parser("audit", help="check that a newer signed tree head extends an older one")
    service_flags(audit)
    audit.add_argument("old", help="the older signed tree head (file or URL)")
    audit.add_argument("new", help="the newer signed tree head (file or URL)")
    audit.add_argument("--key", required=True, help="the log's Ed25519 public key (PEM): the records' key")
    audit.add_argument("--api", help="pilotlab API base URL to ask for the consistency proof (default: where OLD or "
                                     "NEW came from, else the database)")
    audit.set_defaults(run=lambda args: _audit(args, settings))


def read_source(source: str, what: str) -> bytes:
    """The bytes of a file, or of an http(s) URL's answer."""
    if urlsplit(source).scheme in ("http", "https"):
        return _get(source, what).content
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {source}: {exc.strerror}") from None


def _get(url: str, what: str, params: dict[str, int] | None = None, refused: type[Exception] = ConfigError) -> Any:
    """The answer to a GET; a 4xx raises `refused`, other failures ConfigError or ServiceUnavailable."""
    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request on the auditor's terminal
    try:
        answer = httpx.get(url, params=params, timeout=30)
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(f"cannot get {what} from {url}: {exc}") from None
    if answer.status_code != 200:
        try:
            detail = answer.json().get("detail", answer.text)
        except ValueError:
            detail = answer.text
        error = refused if 400 <= answer.status_code < 500 else ConfigError
        raise error(f"{what}: {url} answered {answer.status_code}: {str(detail)[:200]}")
    return answer


def _tree_head(args: argparse.Namespace, settings: Settings) -> int:
    from scoring.signing import load_private_key
    from scoring.transparency.log import current_tree_head, tree_head_at
    from store.connection import connect

    with connect(settings.require_database_url(), autocommit=True) as conn:
        head = current_tree_head(conn, lambda: load_private_key(settings.signing_key)) if args.tree_size is None \
            else tree_head_at(conn, args.tree_size)
    if args.out is None:
        sys.stdout.write(head.document.decode() + "\n")
        return 0
    try:
        Path(args.out).write_bytes(head.document)
    except OSError as exc:
        raise ConfigError(f"cannot write the tree head to {args.out}: {exc.strerror}") from None
    print(f"tree head of size {head.tree_size} (root {head.root_hash.hex()}, {head.timestamp}) written to {args.out}")
    return 0


def _audit(args: argparse.Namespace, settings: Callable[..., Settings]) -> int:
    from scoring.signing import load_public_key
    from scoring.transparency.log import LogDamaged
    from scoring.transparency.merkle import verify_consistency
    from scoring.transparency.tree_head import read_tree_head

    public = load_public_key(Path(args.key))
    documents = [read_source(args.old, "the older tree head"), read_source(args.new, "the newer tree head")]
    try:
        old, new = (read_tree_head(d, public) for d in documents)
        if old.tree_size > new.tree_size:
            raise ConfigError(f"{args.old} (size {old.tree_size}) is newer than {args.new} (size {new.tree_size}): "
                              "give the older tree head first")
        proof = _consistency(args, settings, old.tree_size, new.tree_size)
        verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash, proof)
    except (RecordInvalid, LogDamaged) as exc:
        print(f"pilotlab: log audit FAILED: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(f"log audit passed: the tree head of size {new.tree_size} ({new.timestamp}) extends the one of size "
          f"{old.tree_size} ({old.timestamp})")
    return 0


def _consistency(args: argparse.Namespace, settings: Callable[..., Settings], first: int, second: int) -> list[bytes]:
    api = args.api or _api_of(args.new) or _api_of(args.old)
    if api is not None:
        answer = _get(f"{api.rstrip('/')}/log/consistency", "the consistency proof", {"first": first, "second": second},
                      refused=RecordInvalid)  # e.g. a log now shorter than a tree head it signed
        try:
            return [bytes.fromhex(h) for h in answer.json()["proof"]]
        except (ValueError, KeyError, TypeError):
            raise RecordInvalid(f"{api} sent no consistency proof of hex hashes") from None
    from scoring.transparency.log import consistency
    from store.connection import connect

    with connect(settings(args).require_database_url(), autocommit=True) as conn:
        try:
            return consistency(conn, first, second)
        except InvalidRequest as exc:  # a log now shorter than a tree head it signed
            raise RecordInvalid(f"the log cannot prove it: {exc}") from None


def _api_of(source: str) -> str | None:
    """The API base URL a tree head URL (…/log/tree-head) points into, if it is one."""
    parts = urlsplit(source)
    if parts.scheme not in ("http", "https") or not parts.path.endswith(_TREE_HEAD_PATH):
        return None
    return urlunsplit((parts.scheme, parts.netloc, parts.path[: -len(_TREE_HEAD_PATH)], "", ""))

"""Issuing reference records (score, sign, keep byte for byte) and fetching them back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pilotlab.errors import NotFound
from scoring.records import record_id, sign
from scoring.rubric import LoadedRubric
from scoring.scorer import Progress, record_body, score_pilot
from scoring.signing import key_id
from scoring.transparency.log import sign_pending
from scoring.transparency.tree_head import TreeHead


@dataclass(frozen=True)
class IssuedRecord:
    id: str
    pilot_id: str
    issued_at: datetime
    rubric_version: str
    verdict: str
    score: float
    key_id: str
    document: bytes


def sign_record(conn: psycopg.Connection, pilot_id: str, rubric: LoadedRubric, key: Ed25519PrivateKey, *,
                as_of: datetime | None = None, progress: Progress | None = None) -> IssuedRecord:
    """Score the pilot (latency percentiles exact: scoring.latency) and sign its record; nothing is
    stored until `store_record`."""
    score = score_pilot(conn, pilot_id, rubric, as_of=as_of, progress=progress, exact=True)
    issued_at = datetime.now(UTC).replace(microsecond=0)
    document = sign(record_body(score, issued_at), key)
    return IssuedRecord(record_id(document), pilot_id, issued_at, rubric.rubric.version, score.fleet.verdict,
                        round(score.fleet.score, 6), key_id(key.public_key()), document)


def store_record(conn: psycopg.Connection, issued: IssuedRecord, key: Ed25519PrivateKey) -> TreeHead:
    """Keep a signed record byte for byte (within the caller's transaction, if any). The database
    appends it to the transparency log; the tree head of the log's new size is signed with `key`
    in the same transaction and returned."""
    conn.execute(
        "INSERT INTO reference_record (id, pilot_id, issued_at, rubric_version, verdict, score, key_id, document) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
        (issued.id, issued.pilot_id, issued.issued_at, issued.rubric_version, issued.verdict, issued.score,
         issued.key_id, issued.document))
    return sign_pending(conn, key)


def issue_record(conn: psycopg.Connection, pilot_id: str, rubric: LoadedRubric, key: Ed25519PrivateKey, *,
                 as_of: datetime | None = None, progress: Progress | None = None) -> IssuedRecord:
    """Score, sign and store a record."""
    issued = sign_record(conn, pilot_id, rubric, key, as_of=as_of, progress=progress)
    with conn.transaction():
        store_record(conn, issued, key)
    return issued


_COLUMNS = "id, pilot_id, issued_at, rubric_version, verdict, score, key_id, document"


def get_record(conn: psycopg.Connection, record_id_: str) -> IssuedRecord:
    row = conn.execute(f"SELECT {_COLUMNS} FROM reference_record WHERE id = %s", (record_id_,)).fetchone()
    if row is None:
        raise NotFound(f"no reference record with id {record_id_!r}")
    return _record(row)


def list_records(conn: psycopg.Connection, pilot_id: str) -> list[IssuedRecord]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM reference_record WHERE pilot_id = %s ORDER BY issued_at DESC, id",
                        (pilot_id,)).fetchall()
    return [_record(row) for row in rows]


def _record(row: tuple[Any, ...]) -> IssuedRecord:
    return IssuedRecord(id=row[0], pilot_id=row[1], issued_at=row[2], rubric_version=row[3], verdict=row[4],
                        score=row[5], key_id=row[6], document=bytes(row[7]))

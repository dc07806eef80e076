"""API keys: `plk_<id>_<secret>`, shown once; the registry keeps the id and a SHA-256 of the key.

A key is 256 random bits, so a fast hash is as safe as a slow one (nothing to guess) and keeps
each request's check to one indexed lookup and one SHA-256; hmac.compare_digest compares in
constant time. The id is public (lists, logs, revocation), the secret never leaves `create`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from access.policy import ApiRole
from pilotlab.errors import Conflict, NotFound

PREFIX = "plk"
_TOKEN = re.compile(r"^plk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True)
class ApiKey:
    id: str
    role: str
    firm_id: str | None
    pilot_ids: list[str]
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    token: str

    def __repr__(self) -> str:
        return f"IssuedKey(id={self.key.id!r}, token=<hidden>)"


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: the key's role and scope."""

    key_id: str
    role: ApiRole
    firm_id: str | None = None
    pilot_ids: frozenset[str] = field(default_factory=frozenset)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


_COLUMNS = "id, role, firm_id, pilot_ids, name, created_at, last_used_at, revoked_at"


def create(conn: psycopg.Connection, role: ApiRole | str, *, firm_id: str | None = None,
           pilot_ids: Sequence[str] = (), name: str = "") -> IssuedKey:
    """A new key. firm needs `firm_id`, pilot_manager `pilot_ids`; the others take neither."""
    role = ApiRole(role)
    if (role is ApiRole.FIRM) != (firm_id is not None):
        raise Conflict("a firm key needs --firm, and only a firm key takes one")
    if (role is ApiRole.PILOT_MANAGER) != bool(pilot_ids):
        raise Conflict("a pilot_manager key needs its pilots, and only a pilot_manager key takes them")
    if firm_id is not None and conn.execute("SELECT 1 FROM firm WHERE id = %s", (firm_id,)).fetchone() is None:
        raise NotFound(f"no firm with id {firm_id!r}")
    for pilot in pilot_ids:
        if conn.execute("SELECT 1 FROM pilot WHERE id = %s", (pilot,)).fetchone() is None:
            raise NotFound(f"no pilot with id {pilot!r}")
    key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
    token = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    with conn.transaction(), conn.cursor(row_factory=class_row(ApiKey)) as cur:
        row = cur.execute(
            f"INSERT INTO api_key (id, secret_hash, role, firm_id, pilot_ids, name) VALUES (%s, %s, %s, %s, %s, %s) "
            f"RETURNING {_COLUMNS}", (key_id, _digest(token), role.value, firm_id, list(pilot_ids), name)).fetchone()
    assert row is not None
    return IssuedKey(row, token)


def authenticate(conn: psycopg.Connection, token: str) -> Principal | None:
    """The principal of a valid, unrevoked key; None for anything else."""
    found = _TOKEN.fullmatch(token)
    if found is None:
        return None
    row = conn.execute("SELECT secret_hash, role, firm_id, pilot_ids FROM api_key WHERE id = %s AND revoked_at IS NULL",
                       (found[1],)).fetchone()
    if row is None or not hmac.compare_digest(bytes(row[0]), _digest(token)):
        return None
    # last use, at most once a minute per key: an audit trail without a write per request
    conn.execute("UPDATE api_key SET last_used_at = now() WHERE id = %s "
                 "AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')", (found[1],))
    return Principal(found[1], ApiRole(row[1]), row[2], frozenset(row[3]))


def list_keys(conn: psycopg.Connection) -> list[ApiKey]:
    with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        return cur.execute(f"SELECT {_COLUMNS} FROM api_key ORDER BY created_at, id").fetchall()


def revoke(conn: psycopg.Connection, key_id: str) -> ApiKey:
    with conn.transaction(), conn.cursor(row_factory=class_row(ApiKey)) as cur:
        row = cur.execute(f"UPDATE api_key SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s RETURNING {_COLUMNS}",
                          (key_id,)).fetchone()
    if row is None:
        raise NotFound(f"no API key with id {key_id!r}")
    return row


def create_demo_key(database_url: str) -> str:
    """A fresh admin key for `pilotlab demo` (each run prints a new one; the demo broker stays anonymous)."""
    from store.connection import connect

    with connect(database_url, autocommit=True) as conn:
        return create(conn, ApiRole.ADMIN, name="pilotlab demo").token

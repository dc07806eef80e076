"""Page sessions: an API key exchanged for a cookie, kept server-side in `page_session`.

Server-side rather than a signed cookie: signing out, or revoking the key, ends the session at
once (a signed cookie stays good until it expires, unless the server keeps a deny-list, which is
server state all the same); the session's CSRF token lives beside it; and there is no cookie
signing secret to configure and rotate. The cookie holds 256 random bits; the table keeps their
SHA-256 (as api_key does), so a database reader cannot take over a session.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import psycopg

from access.api_keys import Principal
from access.policy import ApiRole

SESSION_COOKIE = "pilotlab_session"
SESSION_LIFETIME = timedelta(hours=12)  # absolute: a session is not extended by use


@dataclass(frozen=True)
class PageSession:
    principal: Principal
    key_name: str
    csrf_token: str


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def start(conn: psycopg.Connection, key_id: str) -> str:
    """A new session of the (unrevoked) key `key_id`; returns the cookie's value. Expired sessions
    are swept here, so the table holds no more than the sessions started in one lifetime."""
    token = secrets.token_urlsafe(32)
    with conn.transaction():
        conn.execute("DELETE FROM page_session WHERE expires_at < now()")
        conn.execute("INSERT INTO page_session (token_hash, key_id, csrf_token, expires_at) VALUES (%s, %s, %s, now() + %s)",
                     (digest(token), key_id, secrets.token_urlsafe(32), SESSION_LIFETIME))
    return token


def find(conn: psycopg.Connection, token: str) -> PageSession | None:
    """The live session of a cookie's value: unexpired, its key unrevoked; else None."""
    row = conn.execute(
        "SELECT k.id, k.role, k.firm_id, k.pilot_ids, k.name, s.csrf_token FROM page_session s "
        "JOIN api_key k ON k.id = s.key_id WHERE s.token_hash = %s AND s.expires_at > now() AND k.revoked_at IS NULL",
        (digest(token),)).fetchone()
    if row is None:
        return None
    key_id, role, firm_id, pilot_ids, name, csrf = row
    return PageSession(Principal(key_id, ApiRole(role), firm_id, frozenset(pilot_ids)), name, csrf)


def end(conn: psycopg.Connection, token: str) -> None:
    conn.execute("DELETE FROM page_session WHERE token_hash = %s", (digest(token),))

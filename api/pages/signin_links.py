"""One-time sign-in links (`/ui/signin/link/<token>`): the demo prints one that signs its admin in.

Opening the link shows a page with a Sign in button; the button's POST spends the link. A GET
that signed in would be spent (or sign someone in) by any link previewer, mail scanner or chat
app that fetches the URL first. A link is good once, until it expires, and only while its key is
unrevoked; the table keeps the token's SHA-256.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import psycopg

from api.pages.sessions import digest

LINK_LIFETIME = timedelta(hours=24)


def create(conn: psycopg.Connection, key_id: str, lifetime: timedelta = LINK_LIFETIME) -> str:
    """A new link token for the key `key_id` (its path: /ui/signin/link/<token>)."""
    token = secrets.token_urlsafe(32)
    with conn.transaction():
        conn.execute("DELETE FROM page_signin_link WHERE expires_at < now()")
        conn.execute("INSERT INTO page_signin_link (token_hash, key_id, expires_at) VALUES (%s, %s, now() + %s)",
                     (digest(token), key_id, lifetime))
    return token


def holder(conn: psycopg.Connection, token: str) -> tuple[str, str, str] | None:
    """(key id, key name, role) of a live link, without spending it; None if it is not live."""
    row = conn.execute(
        "SELECT k.id, k.name, k.role FROM page_signin_link l JOIN api_key k ON k.id = l.key_id "
        "WHERE l.token_hash = %s AND l.expires_at > now() AND k.revoked_at IS NULL", (digest(token),)).fetchone()
    return (row[0], row[1], row[2]) if row else None


def spend(conn: psycopg.Connection, token: str) -> str | None:
    """The key id of a live link, which is spent (deleted) here; None if it is not live."""
    row = conn.execute(
        "DELETE FROM page_signin_link l USING api_key k WHERE l.token_hash = %s AND k.id = l.key_id "
        "AND l.expires_at > now() AND k.revoked_at IS NULL RETURNING k.id", (digest(token),)).fetchone()
    return str(row[0]) if row else None


def demo_link(database_url: str, api_key: str, base_url: str) -> str:
    """The demo's sign-in link for its admin key (`plk_<id>_<secret>`: the id is the key's)."""
    from store.connection import connect

    key_id = api_key.split("_")[1]
    with connect(database_url, autocommit=True) as conn:
        return f"{base_url}/ui/signin/link/{create(conn, key_id)}"

"""Who sent a resident's feedback, without keeping who: a salted hash of the client address, its salt
rotated every retention period, and the purge that erases both (the `feedback_salt` table and
`feedback.client_hash`, migration 0023).

- The address is reduced first: an IPv4 address whole, an IPv6 address to its /64 (one household or
  phone gets a /64 and picks addresses inside it at will), so a client cannot escape its limits by
  hopping within its own prefix.
- hash = HMAC-SHA256(salt of the period, reduced address). Periods are `retention_days` long,
  counted from 1970-01-01 UTC; each has a random 256-bit salt, made by the first submission of the
  period (all API processes share it through the database).
- `purge` erases every client hash older than `retention_days` and drops the salt of every period
  that is over, so a hash can neither be joined to one of another period (other salt) nor be
  recomputed from an address once its period is over (no salt). Rate limits and duplicates look back
  at most a day, so they restart at a period's turn.

Only hashes and salts live here; the feedback itself (rating, category, moderated comment) is kept.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg

EPOCH = date(1970, 1, 1)


def period_start(now: datetime, retention_days: int) -> date:
    """The first day (UTC) of the retention-long period `now` falls in."""
    day = now.astimezone(UTC).date()
    return EPOCH + timedelta(days=(day - EPOCH).days // retention_days * retention_days)


def reduced_address(address: str) -> bytes:
    """The part of a client address that is hashed: IPv4 whole, IPv6 its /64 prefix; anything else
    (a proxy that gives no address) as its text."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address.encode("utf-8", "replace")
    if isinstance(ip, ipaddress.IPv6Address):
        return ip.ipv4_mapped.packed if ip.ipv4_mapped is not None else ip.packed[:8]
    return ip.packed


def _salt(conn: psycopg.Connection, start: date) -> bytes:
    conn.execute("INSERT INTO feedback_salt (period_start, salt) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                 (start, secrets.token_bytes(32)))
    row = conn.execute("SELECT salt FROM feedback_salt WHERE period_start = %s", (start,)).fetchone()
    assert row is not None
    return bytes(row[0])


def client_hash(conn: psycopg.Connection, address: str, retention_days: int, now: datetime | None = None) -> bytes:
    """HMAC-SHA256 of the reduced address with the salt of the current period (made if missing)."""
    salt = _salt(conn, period_start(now or datetime.now(UTC), retention_days))
    return hmac.new(salt, reduced_address(address), hashlib.sha256).digest()


@dataclass(frozen=True)
class Purged:
    hashes_erased: int
    salts_dropped: int


def purge(conn: psycopg.Connection, retention_days: int, now: datetime | None = None) -> Purged:
    """Erase client hashes older than the retention and the salts of periods that are over."""
    now = now or datetime.now(UTC)
    with conn.transaction():
        erased = conn.execute("UPDATE feedback SET client_hash = NULL WHERE client_hash IS NOT NULL AND submitted_at < %s",
                              (now - timedelta(days=retention_days),)).rowcount
        dropped = conn.execute("DELETE FROM feedback_salt WHERE period_start <> %s",
                               (period_start(now, retention_days),)).rowcount
    return Purged(erased, dropped)

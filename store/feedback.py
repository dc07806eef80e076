"""Residents' feedback (tables `feedback_code` and `feedback`, migration 0023): the codes in the QR
stickers, what residents send through them, its limits, the moderation of comments, and the tallies
scoring reads.

A code belongs to a pilot (device None) or to one of its devices: 128 random bits, URL-safe. A
submission is a rating (1-5), a category (CATEGORIES) and an optional comment (at most
COMMENT_MAX_CHARS). Whether it is stored is decided under a lock per code and per client, in order:

    duplicate       the same client sent the same content through the same code within
                    `duplicate_window_h`: not stored again (counted once)
    client_limited  the client (its salted address hash: store.client_hashes) already sent
                    `per_client_per_hour` responses in the last hour, through any code
    code_limited    the code already took `per_code_per_hour` responses in the last hour
    accepted        stored; the rating counts at once, a comment waits for moderation

Only the client's hash is kept, never its address.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import psycopg
from psycopg.rows import class_row

from pilotlab.errors import NotFound
from store import client_hashes

CATEGORIES = ("works_well", "not_working", "privacy", "noise_light", "placement", "other")
COMMENT_MAX_CHARS = 500
_LOCKS = 0x6662  # advisory lock class of feedback submissions ("fb")


@dataclass(frozen=True)
class FeedbackLimits:
    per_client_per_hour: int
    per_code_per_hour: int
    duplicate_window_h: float
    retention_days: int


@dataclass(frozen=True)
class FeedbackTarget:
    """What a code names: a pilot, or one of its devices."""

    code: str
    pilot_id: str
    pilot_name: str
    site: str
    timezone: str
    device_id: str | None
    device_kind: str | None


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    CLIENT_LIMITED = "client_limited"
    CODE_LIMITED = "code_limited"


_TARGET = ("SELECT c.code, p.id AS pilot_id, p.name AS pilot_name, p.site, p.timezone, d.id AS device_id, "
           "d.kind AS device_kind FROM feedback_code c JOIN pilot p ON p.id = c.pilot_id "
           "LEFT JOIN device d ON d.id = c.device_id ")


def _new_code() -> str:
    return secrets.token_urlsafe(16)


def pilot_codes(conn: psycopg.Connection, pilot_id: str) -> list[FeedbackTarget]:
    """The codes of the pilot and of each of its devices not decommissioned (made where missing):
    the pilot's first, then the devices' by id."""
    with conn.transaction():
        conn.execute("INSERT INTO feedback_code (code, pilot_id, device_id) VALUES (%s, %s, NULL) ON CONFLICT DO NOTHING",
                     (_new_code(), pilot_id))
        devices = conn.execute("SELECT d.id FROM device d WHERE d.pilot_id = %s AND d.decommissioned_at IS NULL AND "
                               "NOT EXISTS (SELECT 1 FROM feedback_code c WHERE c.device_id = d.id)", (pilot_id,)).fetchall()
        for (device_id,) in devices:
            conn.execute("INSERT INTO feedback_code (code, pilot_id, device_id) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                         (_new_code(), pilot_id, device_id))
    with conn.cursor(row_factory=class_row(FeedbackTarget)) as cur:
        return cur.execute(_TARGET + "WHERE c.pilot_id = %s AND (d.id IS NULL OR d.decommissioned_at IS NULL) "
                           "ORDER BY c.device_id NULLS FIRST", (pilot_id,)).fetchall()


def rotate(conn: psycopg.Connection, pilot_id: str, device_id: str | None) -> str:
    """A new code for the pilot (device None) or one of its devices; the old one stops working."""
    row = conn.execute("UPDATE feedback_code SET code = %s, created_at = now() WHERE pilot_id = %s "
                       "AND device_id IS NOT DISTINCT FROM %s RETURNING code", (_new_code(), pilot_id, device_id)).fetchone()
    if row is None:
        raise NotFound(f"pilot {pilot_id!r} has no feedback code for {'the pilot' if device_id is None else device_id!r}")
    return str(row[0])


def target(conn: psycopg.Connection, code: str) -> FeedbackTarget:
    with conn.cursor(row_factory=class_row(FeedbackTarget)) as cur:
        found = cur.execute(_TARGET + "WHERE c.code = %s", (code,)).fetchone()
    if found is None:
        raise NotFound("this feedback code is not in use (its sticker may have been replaced by a new one)")
    return found


def normalised_comment(comment: str | None) -> str | None:
    """The comment as stored: stripped, runs of spaces and tabs made one space; None if empty."""
    text = re.sub(r"[ \t]+", " ", (comment or "").replace("\r\n", "\n")).strip()
    return text or None


def _content_sha256(rating: int, category: str, comment: str | None) -> bytes:
    words = " ".join((comment or "").casefold().split())
    return hashlib.sha256(f"{rating}\x1f{category}\x1f{words}".encode()).digest()


def submit(conn: psycopg.Connection, to: FeedbackTarget, rating: int, category: str, comment: str | None,
           client_address: str, limits: FeedbackLimits) -> Outcome:
    """Store a resident's response unless it is a duplicate or over a limit (module docstring)."""
    comment = normalised_comment(comment)
    client_hashes.purge(conn, limits.retention_days)  # nothing past its retention stays, even without a daily purge
    client = client_hashes.client_hash(conn, client_address, limits.retention_days)
    content = _content_sha256(rating, category, comment)
    where = "pilot_id = %s AND coalesce(device_id, '') = %s"
    target_key = (to.pilot_id, to.device_id or "")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCKS, f"code:{to.pilot_id}/{to.device_id or ''}"))
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCKS, f"client:{client.hex()}"))
        if conn.execute(f"SELECT 1 FROM feedback WHERE {where} AND client_hash = %s AND content_sha256 = %s "
                        "AND submitted_at > now() - %s * interval '1 hour' LIMIT 1",
                        (*target_key, client, content, limits.duplicate_window_h)).fetchone():
            return Outcome.DUPLICATE
        row = conn.execute("SELECT count(*) FROM feedback WHERE client_hash = %s AND submitted_at > now() - interval '1 hour'",
                           (client,)).fetchone()
        if row is not None and row[0] >= limits.per_client_per_hour:
            return Outcome.CLIENT_LIMITED
        row = conn.execute(f"SELECT count(*) FROM feedback WHERE {where} AND submitted_at > now() - interval '1 hour'",
                           target_key).fetchone()
        if row is not None and row[0] >= limits.per_code_per_hour:
            return Outcome.CODE_LIMITED
        conn.execute("INSERT INTO feedback (pilot_id, device_id, rating, category, comment, comment_status, client_hash, "
                     "content_sha256) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                     (to.pilot_id, to.device_id, rating, category, comment, None if comment is None else "pending",
                      client, content))
    return Outcome.ACCEPTED


@dataclass(frozen=True)
class Comment:
    id: int
    pilot_id: str
    pilot_name: str
    timezone: str
    device_id: str | None
    submitted_at: datetime
    rating: int
    category: str
    comment: str
    comment_status: str


_COMMENTS = ("SELECT f.id, f.pilot_id, p.name AS pilot_name, p.timezone, f.device_id, f.submitted_at, f.rating, "
             "f.category, f.comment, f.comment_status FROM feedback f JOIN pilot p ON p.id = f.pilot_id ")


def pending_comments(conn: psycopg.Connection, limit: int = 100) -> list[Comment]:
    """The moderation queue: comments waiting, oldest first."""
    with conn.cursor(row_factory=class_row(Comment)) as cur:
        return cur.execute(_COMMENTS + "WHERE f.comment_status = 'pending' ORDER BY f.submitted_at, f.id LIMIT %s",
                           (limit,)).fetchall()


def approved_comments(conn: psycopg.Connection, pilot_id: str, limit: int = 100) -> list[Comment]:
    """A pilot's approved comments, newest first."""
    with conn.cursor(row_factory=class_row(Comment)) as cur:
        return cur.execute(_COMMENTS + "WHERE f.pilot_id = %s AND f.comment_status = 'approved' "
                           "ORDER BY f.submitted_at DESC, f.id DESC LIMIT %s", (pilot_id, limit)).fetchall()


def moderate(conn: psycopg.Connection, feedback_id: int, approve: bool, by: str) -> None:
    """Approve a pending comment (shown from then on) or reject it (its text erased)."""
    row = conn.execute("UPDATE feedback SET comment_status = %s, comment = CASE WHEN %s THEN comment END, "
                       "moderated_at = now(), moderated_by = %s WHERE id = %s AND comment_status = 'pending' RETURNING id",
                       ("approved" if approve else "rejected", approve, by, feedback_id)).fetchone()
    if row is None:
        raise NotFound(f"no comment waiting for moderation with id {feedback_id}")


@dataclass(frozen=True)
class Tally:
    """Feedback of a pilot: ratings by value (1..5), by category, and comments by moderation status."""

    ratings: dict[int, int]
    categories: dict[str, int]
    comments: dict[str, int]

    @property
    def count(self) -> int:
        return sum(self.ratings.values())

    @property
    def mean(self) -> float | None:
        return sum(stars * n for stars, n in self.ratings.items()) / self.count if self.count else None


def tally(conn: psycopg.Connection, pilot_id: str, start: datetime | None = None, end: datetime | None = None) -> Tally:
    """The pilot's feedback submitted in [start, end) (None: unbounded)."""
    rows = conn.execute("SELECT rating, category, comment_status, count(*) FROM feedback WHERE pilot_id = %(p)s "
                        "AND (%(s)s::timestamptz IS NULL OR submitted_at >= %(s)s) "
                        "AND (%(e)s::timestamptz IS NULL OR submitted_at < %(e)s) GROUP BY 1, 2, 3",
                        {"p": pilot_id, "s": start, "e": end}).fetchall()
    ratings, categories = dict.fromkeys(range(1, 6), 0), dict.fromkeys(CATEGORIES, 0)
    comments = dict.fromkeys(("pending", "approved", "rejected"), 0)
    for rating, category, status, n in rows:
        ratings[rating] += n
        categories[category] += n
        if status is not None:
            comments[status] += n
    return Tally(ratings, categories, comments)


@dataclass(frozen=True)
class TargetRatings:
    device_id: str | None  # None: the pilot's own code
    ratings: int
    mean: float


def ratings_by_target(conn: psycopg.Connection, pilot_id: str) -> list[TargetRatings]:
    """Ratings and their mean per device (and for the pilot itself), the pilot's first."""
    with conn.cursor(row_factory=class_row(TargetRatings)) as cur:
        return cur.execute("SELECT device_id, count(*)::int AS ratings, avg(rating)::float8 AS mean FROM feedback "
                           "WHERE pilot_id = %s GROUP BY device_id ORDER BY device_id NULLS FIRST", (pilot_id,)).fetchall()

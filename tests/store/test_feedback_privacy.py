"""Residents' feedback keeps no address: a client is an HMAC-SHA256 of its address (IPv6: its /64)
with the salt of a retention-long period, so two periods' hashes cannot be joined; the purge erases
hashes past the retention and drops the salts of periods that are over (`pilotlab feedback purge`)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from scoring.rubric import load_rubric
from scoring.schedule import daily_pass
from store import client_hashes
from tests.cli.test_cli import run

DAYS = 90
NOW = datetime(2031, 6, 1, 12, tzinfo=UTC)  # day 22,431 since 1970-01-01: period 249 starts on day 22,410
PERIOD = date(2031, 5, 11)


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


def test_a_period_is_retention_long_and_counted_from_1970() -> None:
    assert client_hashes.period_start(NOW, DAYS) == PERIOD == date(1970, 1, 1) + timedelta(days=249 * DAYS)
    assert client_hashes.period_start(datetime(2031, 5, 10, 23, 59, tzinfo=UTC), DAYS) == PERIOD - timedelta(days=DAYS)


def test_a_client_is_its_address_hashed_with_the_periods_salt_and_unrelated_across_periods(db: psycopg.Connection) -> None:
    first = client_hashes.client_hash(db, "198.51.100.7", DAYS, NOW)
    salt = db.execute("SELECT salt FROM feedback_salt WHERE period_start = %s", (PERIOD,)).fetchone()
    assert salt is not None and len(salt[0]) == 32
    assert first == hmac.new(bytes(salt[0]), ipaddress.ip_address("198.51.100.7").packed, hashlib.sha256).digest()
    assert client_hashes.client_hash(db, "198.51.100.7", DAYS, NOW + timedelta(days=20)) == first  # same period
    assert client_hashes.client_hash(db, "198.51.100.8", DAYS, NOW) != first
    # one household's /64: every address in it is one client; the next /64 is another
    home = client_hashes.client_hash(db, "2001:db8:1:2::10", DAYS, NOW)
    assert client_hashes.client_hash(db, "2001:db8:1:2:abcd::99", DAYS, NOW) == home
    assert client_hashes.client_hash(db, "2001:db8:1:3::10", DAYS, NOW) != home
    assert client_hashes.client_hash(db, "::ffff:198.51.100.7", DAYS, NOW) == first
    # the next period has a salt of its own
    assert client_hashes.client_hash(db, "198.51.100.7", DAYS, NOW + timedelta(days=DAYS)) != first


def _pilot_with_feedback_91_and_89_days_old(db: psycopg.Connection, unique_id: Callable[[str], str]) -> str:
    firm, pilot = unique_id("firm"), unique_id("pilot")
    db.execute("INSERT INTO firm (id, name) VALUES (%s, 'Acme')", (firm,))
    db.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at) VALUES (%s, %s, 'Air', 'Old Town', %s)",
               (pilot, firm, NOW - timedelta(days=200)))
    ages = (DAYS + 1, DAYS - 1)  # days before NOW
    for age in ages:
        db.execute("INSERT INTO feedback (pilot_id, submitted_at, rating, category, client_hash, content_sha256) "
                   "VALUES (%s, %s, 4, 'works_well', %s, %s)",
                   (pilot, NOW - timedelta(days=age), client_hashes.client_hash(db, "198.51.100.9", DAYS,
                                                                                NOW - timedelta(days=age)),
                    hashlib.sha256(str(age).encode()).digest()))
    db.execute("INSERT INTO feedback_salt (period_start, salt) VALUES (%s, %s) ON CONFLICT DO NOTHING",
               (PERIOD, b"\x01" * 32))
    return pilot


def test_the_purge_erases_hashes_past_the_retention_and_the_salts_of_past_periods(
        db: psycopg.Connection, unique_id: Callable[[str], str]) -> None:
    pilot = _pilot_with_feedback_91_and_89_days_old(db, unique_id)
    done = client_hashes.purge(db, DAYS, NOW)
    assert done.hashes_erased >= 1 and done.salts_dropped >= 1
    erased = db.execute("SELECT client_hash IS NULL FROM feedback WHERE pilot_id = %s ORDER BY submitted_at",
                        (pilot,)).fetchall()
    assert erased == [(True,), (False,)]  # the 91-day-old hash erased, the 89-day-old one kept
    assert [r[0] for r in db.execute("SELECT period_start FROM feedback_salt")] == [PERIOD]
    assert db.execute("SELECT count(*) FROM feedback WHERE pilot_id = %s", (pilot,)).fetchone() == (2,)  # feedback stays


def test_the_purge_command_says_what_it_erased(database_url: str) -> None:
    result = run("feedback", "purge", "--database-url", database_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("feedback: erased ") and "older than 90 days" in result.stdout


def test_the_daily_pass_purges_too_so_the_retention_holds_when_no_resident_writes(
        db: psycopg.Connection, unique_id: Callable[[str], str]) -> None:
    pilot = _pilot_with_feedback_91_and_89_days_old(db, unique_id)
    daily_pass(db, load_rubric(), DAYS, NOW)
    erased = db.execute("SELECT client_hash IS NULL FROM feedback WHERE pilot_id = %s ORDER BY submitted_at",
                        (pilot,)).fetchall()
    assert erased == [(True,), (False,)]
    assert [r[0] for r in db.execute("SELECT period_start FROM feedback_salt")] == [PERIOD]

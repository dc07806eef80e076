"""What each reading counts for, under the rubric: delivery, data quality, latency, values.

Per reading, over the QC flag columns of scoring.quality (`ts__duplicate` 4: the reading repeats
the previous reading's device time under another seq; `ts__future` 4: its device time is ahead of
its ingest time):

| rubric `delivery.counts`   | `arrived` (v2)                       | `valid` (v1)                   |
| -------------------------- | ------------------------------------ | ------------------------------ |
| reading flag (`qc`)        | worst of the tests but the duplicate | worst of every test            |
| *delivered* (availability, completeness, outages, heartbeats) | not a repeat of the previous device time | flag not fail |
| *QC-counted* (QC shares, per-test counts) | delivered               | every stored reading           |
| *valid* (battery, fix rate, accuracy)     | delivered and flag not fail | flag not fail             |
| *timed* (latency)          | delivered, device time not in the future | valid                      |

So under v2 a reading that arrived on time with an impossible value is delivered (it costs no
availability, completeness or outage) and fails QC (it costs data quality); a repeated device
time is a duplicate delivery, counted apart and in neither. Under v1 a failed reading is absent
for delivery, as v1 records were scored. Every SQL expression here reads the columns of one row.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from scoring.quality import reading_flag_sql
from scoring.rubric import Rubric

DUPLICATE_TEST = "ts__duplicate"


@dataclass(frozen=True)
class Counting:
    """SQL boolean expressions (and the flag) over a reading's flag columns."""

    tests: list[str]            # the tests the reading's flag is made of, in column order
    flag: sql.Composable        # the reading's flag: 4 fail, 3 suspect, else 1
    delivered: sql.Composable
    qc_counted: sql.Composable
    valid: sql.Composable
    timed: sql.Composable

    def columns(self) -> sql.Composable:
        """`qc, dv, qb, ok, tm` for a select list."""
        return sql.SQL("{f} AS qc, {d} AS dv, {q} AS qb, {v} AS ok, {t} AS tm").format(
            f=self.flag, d=self.delivered, q=self.qc_counted, v=self.valid, t=self.timed)


def arrived(rubric: Rubric) -> bool:
    return rubric.delivery.counts == "arrived"


def counted_tests(rubric: Rubric, flag_names: list[str]) -> list[str]:
    """The tests that make a reading's flag (and are counted per test)."""
    return [n for n in flag_names if n != DUPLICATE_TEST] if arrived(rubric) else list(flag_names)


def counting(rubric: Rubric, flag_names: list[str]) -> Counting:
    tests = counted_tests(rubric, flag_names)
    flag = reading_flag_sql(tests)
    if arrived(rubric):
        delivered = sql.SQL("({} <> 4)").format(sql.Identifier(DUPLICATE_TEST))
        return Counting(tests, flag, delivered, delivered,
                        sql.SQL("({d} AND {f} < 4)").format(d=delivered, f=flag),
                        sql.SQL("({d} AND ts__future <> 4)").format(d=delivered))
    valid = sql.SQL("({} < 4)").format(flag)
    return Counting(tests, flag, valid, sql.SQL("true"), valid, valid)


def failed_tests_mask(tests: list[str]) -> sql.Composable:
    """A bigint whose bit i is set when tests[i] failed (4) on the reading."""
    if not tests:
        return sql.SQL("0::bigint")
    return sql.SQL("({})").format(sql.SQL(" | ").join(
        sql.SQL("CASE WHEN {c} = 4 THEN {b}::bigint ELSE 0 END").format(c=sql.Identifier(t), b=sql.Literal(1 << i))
        for i, t in enumerate(tests)))


def mask_names(mask: sql.Composable, tests: list[str]) -> sql.Composable:
    """The names of the tests set in `mask` (failed_tests_mask), as a jsonb array in test order."""
    return sql.SQL("(SELECT coalesce(jsonb_agg(n ORDER BY i), '[]') FROM unnest({names}::text[]) "
                   "WITH ORDINALITY AS u(n, i) WHERE ({m}) & (1::bigint << (i::int - 1)) <> 0)").format(
        names=sql.Literal(tests), m=mask)


def qc_test_counts(tests: list[str]) -> sql.Composable:
    """Per test, over QC-counted readings: [suspect, fail, not evaluated (2 or 9)] as a jsonb object;
    a test with all three 0 is left out (its readings all passed)."""
    if not tests:
        return sql.SQL("'{}'::jsonb")
    parts = []
    for t in tests:
        c = sql.Identifier(t)
        counts = [sql.SQL("count(*) FILTER (WHERE qb AND {c} = 3)").format(c=c),
                  sql.SQL("count(*) FILTER (WHERE qb AND {c} = 4)").format(c=c),
                  sql.SQL("count(*) FILTER (WHERE qb AND {c} IN (2, 9))").format(c=c)]
        # the same three aggregates in the test and the array: PostgreSQL computes each once
        parts.append(sql.SQL("{n}, CASE WHEN {total} > 0 THEN jsonb_build_array({counts}) END").format(
            n=sql.Literal(t), total=sql.SQL(" + ").join(counts), counts=sql.SQL(", ").join(counts)))
    return sql.SQL("jsonb_strip_nulls(jsonb_build_object({}))").format(sql.SQL(", ").join(parts))

"""Write one decoded batch in one transaction: COPY rows, keep dead letters, commit.

Rows go through binary COPY into a per-connection temporary staging table and then
`INSERT … SELECT … ON CONFLICT DO NOTHING` into `telemetry`: COPY is the fast path, and the
conflict clause makes a redelivered message (same device, seq and device time) add nothing.

A batch the database refuses for its data (ingest.refusal decides: a value PostgreSQL cannot
take, a constraint, a trigger, a value too large for an index) is written again with every part in
a savepoint: rows the COPY refused are retried one by one and those still refused become dead
letters (`store_rejected`), so one poison message never blocks the rest. The fast path pays for
no savepoint. Anything else (a lost connection, a server that cannot serve) propagates: nothing
was committed, and the caller retries the same batch.

Dead letters are bounded here, whatever produced them, so that keeping one can never fail for its
data: the topic and payload are keyed by the SHA-256 of their full bytes (store/sql/0008) and only
bounded prefixes are stored (`dead_letter_prefix_bytes` of the payload), beside its true size.

The same transaction adds the batch's duplicates and the rejections charged to registered devices
to `delivery_day`, and its contract messages that came at QoS 0 to `qos0_day` (ingest.tally); a
batch of new rows at QoS 1 and no dead letters pays for nothing there.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from ingest import tally
from ingest.adapters.records import write_link_records
from ingest.handoff import Inbound
from ingest.refusal import describe, is_refusal
from ingest.rows import (
    COLUMNS,
    JSON_COLUMNS,
    MAX_DETAIL_CHARS,
    STAGE_TYPES,
    DeadLetter,
    DecodedBatch,
    Sender,
    contract_sender,
    dead_letter,
)
from pilotlab.errors import RejectReason

log = logging.getLogger(__name__)

_CREATE_STAGE = sql.SQL(
    "CREATE TEMP TABLE IF NOT EXISTS telemetry_stage ({}) ON COMMIT DELETE ROWS"
).format(sql.SQL(", ").join(
    sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in zip(COLUMNS, STAGE_TYPES, strict=True)
))
_COPY_STAGE = sql.SQL("COPY telemetry_stage ({}) FROM STDIN (FORMAT BINARY)").format(
    sql.SQL(", ").join(map(sql.Identifier, COLUMNS)))
_SELECT_LIST = sql.SQL(", ").join(
    sql.SQL("{}::jsonb").format(sql.Identifier(c)) if c in JSON_COLUMNS else sql.Identifier(c) for c in COLUMNS
)
_COLUMN_LIST = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
_MOVE_STAGE = sql.SQL(
    "INSERT INTO telemetry ({}) SELECT {} FROM telemetry_stage ON CONFLICT DO NOTHING"
).format(_COLUMN_LIST, _SELECT_LIST)
_INSERT_ONE = sql.SQL(
    "INSERT INTO telemetry ({}) VALUES ({}) ON CONFLICT DO NOTHING"
).format(_COLUMN_LIST, sql.SQL(", ").join(
    sql.SQL("%s::jsonb") if c in JSON_COLUMNS else sql.SQL("%s") for c in COLUMNS))
_INSERT_DEAD = (
    "INSERT INTO dead_letter (received_at, topic, topic_sha256, payload, payload_sha256, payload_size, reason, "
    "detail, pilot_id, device_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (topic_sha256, payload_sha256) DO NOTHING"
)

# A topic is at most 65,535 bytes (MQTT); contract and network-server topics are under 160
# characters, so this keeps every real one whole and only cuts a device's oversized last level.
MAX_TOPIC_CHARS = 1_024
MAX_ID_CHARS = 128  # pilot and device ids in a dead letter (registered ids are at most 64)
TRUNCATED = "…"


@dataclass
class WriteResult:
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    poisoned: int = 0
    unkept: int = 0  # dead letters the database refused even alone (logged; none is expected)


class BatchWriter:
    """Owns one connection (not autocommit); one batch = one transaction."""

    def __init__(self, conn: psycopg.Connection, *, dead_letter_prefix_bytes: int = 4_096) -> None:
        self.conn = conn
        self.dead_letter_prefix_bytes = dead_letter_prefix_bytes
        conn.execute(_CREATE_STAGE)
        conn.commit()

    def write(self, batch: DecodedBatch) -> WriteResult:
        try:
            return self._write(batch, careful=False)
        except psycopg.Error as exc:
            if not is_refusal(exc, self.conn):
                raise
            log.info("the database refused part of a batch (%s); writing it again row by row", describe(exc))
            self.conn.rollback()
            return self._write(batch, careful=True)

    def _write(self, batch: DecodedBatch, *, careful: bool) -> WriteResult:
        result = WriteResult()
        conn = self.conn
        rows, dead_letters = batch.rows, batch.dead_letters
        counts: tally.Tally | None = None  # duplicates found one by one
        if careful:
            # Open the transaction first: on an idle connection psycopg's transaction() would not
            # make a savepoint but a transaction of its own, committed at the end of the block.
            conn.execute("SELECT 1")
        if rows:
            if careful:
                try:
                    with conn.transaction():
                        result.stored = self._copy_rows(rows)
                except psycopg.Error as exc:
                    if not is_refusal(exc, conn):
                        raise
                    result.stored, poisoned, counts = self._insert_one_by_one(rows, batch.sources)
                    dead_letters = dead_letters + poisoned
                    result.poisoned = len(poisoned)
            else:
                result.stored = self._copy_rows(rows)
        result.duplicates = len(rows) - result.stored - result.poisoned
        if result.duplicates and counts is None:  # the rows went through the staging table
            counts = tally.staged_duplicates(conn, {tally.day_of(row[2]) for row in rows})
        if dead_letters:
            result.unkept = self._keep_dead_letters(dead_letters, careful=careful)
            counts = tally.rejections(dead_letters) + (counts or tally.Tally())
        result.dead_lettered = len(dead_letters) - result.unkept
        if batch.link:
            write_link_records(conn, batch.link)
        if counts:
            tally.record(conn, counts)
        tally.record_qos0(conn, tally.qos0_readings(rows, batch.sources))
        conn.commit()
        return result

    def _copy_rows(self, rows: list[tuple[Any, ...]]) -> int:
        with self.conn.cursor() as cur:
            with cur.copy(_COPY_STAGE) as copy:
                copy.set_types(STAGE_TYPES)
                write_row = copy.write_row
                for row in rows:
                    write_row(row)
            cur.execute(_MOVE_STAGE)
            return cur.rowcount

    def _insert_one_by_one(
        self, rows: list[tuple[Any, ...]], sources: list[Inbound]
    ) -> tuple[int, list[DeadLetter], tally.Tally]:
        """(rows stored, dead letters of the rows refused, duplicates by device and day)."""
        stored = 0
        poisoned: list[DeadLetter] = []
        duplicates: tally.Tally = tally.Tally()
        with self.conn.cursor() as cur:
            for row, source in zip(rows, sources, strict=True):
                try:
                    with self.conn.transaction():
                        cur.execute(_INSERT_ONE, row)
                except psycopg.Error as exc:
                    if not is_refusal(exc, self.conn):
                        raise
                    # row[0] is the device the row is of (a gateway's or network server's topic names none)
                    poisoned.append(dead_letter(source, RejectReason.STORE_REJECTED,
                                                f"database refused the row: {describe(exc)}",
                                                contract_sender(source.topic) or Sender(None, row[0])))
                    continue
                stored += cur.rowcount
                if cur.rowcount == 0:
                    duplicates[tally.duplicate(row[0], row[2])] += 1
        return stored, poisoned, duplicates

    def _keep_dead_letters(self, dead_letters: list[DeadLetter], *, careful: bool) -> int:
        """Insert the dead letters; returns how many the database refused even one by one."""
        rows = [self._dead_letter_row(d) for d in dead_letters]
        with self.conn.cursor() as cur:
            if not careful:
                cur.executemany(_INSERT_DEAD, rows)
                return 0
            try:
                with self.conn.transaction():
                    cur.executemany(_INSERT_DEAD, rows)
                return 0
            except psycopg.Error as exc:
                if not is_refusal(exc, self.conn):
                    raise
            unkept = 0
            for row in rows:
                try:
                    with self.conn.transaction():
                        cur.execute(_INSERT_DEAD, row)
                except psycopg.Error as exc:
                    if not is_refusal(exc, self.conn):
                        raise
                    unkept += 1
                    log.error("dead letter for topic sha256 %s (%s) refused by the database: %s",
                              row[2].hex(), row[6], describe(exc))
        return unkept

    def _dead_letter_row(self, d: DeadLetter) -> tuple[Any, ...]:
        topic = d.topic.replace("\x00", "")
        topic_sha256 = hashlib.sha256(topic.encode("utf-8", "surrogatepass")).digest()
        if len(topic) > MAX_TOPIC_CHARS:
            topic = topic[:MAX_TOPIC_CHARS] + TRUNCATED
        payload = d.payload
        kept = payload[: self.dead_letter_prefix_bytes]
        detail = d.detail.replace("\x00", "\\0")
        if len(detail) > MAX_DETAIL_CHARS:
            detail = detail[:MAX_DETAIL_CHARS] + TRUNCATED
        return (d.received_at, _printable(topic), topic_sha256, kept, hashlib.sha256(payload).digest(),
                len(payload), d.reason.value, _printable(detail), _bounded_id(d.pilot_id), _bounded_id(d.device_id))


def _bounded_id(value: str | None) -> str | None:
    if value is None or len(value) <= MAX_ID_CHARS:
        return value
    return value[:MAX_ID_CHARS] + TRUNCATED


def _printable(text: str) -> str:
    """Text PostgreSQL takes as UTF-8: lone surrogates (never from paho, but cheap to rule out) replaced."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")

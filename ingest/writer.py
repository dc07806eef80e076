"""Write one decoded batch in one transaction: COPY rows, keep dead letters, commit.

Rows go through binary COPY into a per-connection temporary staging table and then
`INSERT … SELECT … ON CONFLICT DO NOTHING` into `telemetry`: COPY is the fast path, and the
conflict clause makes a redelivered message (same device, seq and device time) add nothing.

A batch the database refuses for its data (a value PostgreSQL cannot take) is split: each row is
retried in its own savepoint and the ones still refused become dead letters (`store_rejected`),
so one poison message never blocks the rest. Connection failures are not handled here: they
propagate, nothing was committed, and the caller retries the same batch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from ingest.adapters.records import write_link_records
from ingest.decode import COLUMNS, STAGE_TYPES, DeadLetter, DecodedBatch, dead_letter
from ingest.handoff import Inbound
from pilotlab.errors import RejectReason

_CREATE_STAGE = sql.SQL(
    "CREATE TEMP TABLE IF NOT EXISTS telemetry_stage ({}) ON COMMIT DELETE ROWS"
).format(sql.SQL(", ").join(
    sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in zip(COLUMNS, STAGE_TYPES, strict=True)
))
_COPY_STAGE = sql.SQL("COPY telemetry_stage ({}) FROM STDIN (FORMAT BINARY)").format(
    sql.SQL(", ").join(map(sql.Identifier, COLUMNS)))
_SELECT_LIST = sql.SQL(", ").join(
    sql.SQL("{}::jsonb").format(sql.Identifier(c)) if c == "detail" else sql.Identifier(c) for c in COLUMNS
)
_COLUMN_LIST = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
_MOVE_STAGE = sql.SQL(
    "INSERT INTO telemetry ({}) SELECT {} FROM telemetry_stage ON CONFLICT DO NOTHING"
).format(_COLUMN_LIST, _SELECT_LIST)
_INSERT_ONE = sql.SQL(
    "INSERT INTO telemetry ({}) VALUES ({}) ON CONFLICT DO NOTHING"
).format(_COLUMN_LIST, sql.SQL(", ").join(
    sql.SQL("%s::jsonb") if c == "detail" else sql.SQL("%s") for c in COLUMNS))
_INSERT_DEAD = (
    "INSERT INTO dead_letter (received_at, topic, payload, payload_sha256, reason, detail, pilot_id, device_id) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (topic, payload_sha256) DO NOTHING"
)


# Errors that say "this data", not "this connection": isolate the row, don't retry the batch.
_REFUSED_DATA = (psycopg.DataError, psycopg.IntegrityError, psycopg.errors.InternalError_,
                 psycopg.errors.RaiseException)  # a trigger refusing the row (P0001), e.g. a recall rule


@dataclass
class WriteResult:
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    poisoned: int = 0


class BatchWriter:
    """Owns one connection (not autocommit); one batch = one transaction."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        conn.execute(_CREATE_STAGE)
        conn.commit()

    def write(self, batch: DecodedBatch) -> WriteResult:
        result = WriteResult()
        conn = self.conn
        rows, dead_letters = batch.rows, batch.dead_letters
        try:
            if rows:
                result.stored = self._copy_rows(rows)
        except _REFUSED_DATA:
            conn.rollback()
            result.stored, poisoned = self._insert_one_by_one(rows, batch.sources)
            dead_letters = dead_letters + poisoned
            result.poisoned = len(poisoned)
        result.duplicates = len(rows) - result.stored - result.poisoned
        if dead_letters:
            self._keep_dead_letters(dead_letters)
        result.dead_lettered = len(dead_letters)
        if batch.link:
            write_link_records(conn, batch.link)
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
    ) -> tuple[int, list[DeadLetter]]:
        stored = 0
        poisoned: list[DeadLetter] = []
        with self.conn.cursor() as cur:
            for row, source in zip(rows, sources, strict=True):
                try:
                    with self.conn.transaction():
                        cur.execute(_INSERT_ONE, row)
                        stored += cur.rowcount
                except _REFUSED_DATA as exc:
                    reason = exc.diag.message_primary or type(exc).__name__
                    poisoned.append(dead_letter(source, RejectReason.STORE_REJECTED,
                                                f"database refused the row: {reason}"))
        return stored, poisoned

    def _keep_dead_letters(self, dead_letters: list[DeadLetter]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(_INSERT_DEAD, [
                (d.received_at, d.topic, d.payload, hashlib.sha256(d.payload).digest(),
                 d.reason.value, d.detail, d.pilot_id, d.device_id)
                for d in dead_letters
            ])


"""Registry queries: firms, pilots, gateways and devices: created, read, changed, retired, deleted.

One generic set of functions (`create`, `get`, `list_rows`, `update`, `delete`, `decommission`)
works on the four tables through their `Table` descriptions (`FIRMS`, `PILOTS`, `GATEWAYS`,
`DEVICES`). Database rule violations come back as pilotlab errors with a message that says what
to fix, never as raw psycopg errors:

- `NotFound`           the id names no row;
- `Conflict`           the id is taken, the row is still referenced, or it is already retired;
- `UnknownReference`   a field names a firm, pilot or gateway that does not exist;
- `InvalidValue`       values break a cross-field rule (e.g. `ends_at` not after `starts_at`).

A pilot may require a passed conformance report (conformance/, issue 17) before a device is
commissioned: registering a device, or moving its `commissioned_at`, to a time not in the future
is then refused (`Conflict`) until the device has one.

Writes run inside `conn.transaction()`: they commit on an autocommit connection and become a
savepoint inside a caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Generic, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.rows import class_row

from pilotlab.errors import Conflict, InvalidRequest, NotFound


class UnknownReference(InvalidRequest):
    """A field names a firm, pilot or gateway that does not exist (HTTP 422)."""


class InvalidValue(InvalidRequest):
    """Values that break a rule the schema enforces across fields (HTTP 422)."""


def unknown_reference(field: str, value: object, target: str) -> UnknownReference:
    """The one answer for a field naming a `target` that does not exist, or that the caller may not
    see (api.auth): the two must read the same, or the difference tells what exists."""
    return UnknownReference(f"{field} {value!r} names no {target}; register the {target} first")


@dataclass(frozen=True)
class Firm:
    id: str
    name: str
    contact: str | None
    created_at: datetime


@dataclass(frozen=True)
class Pilot:
    id: str
    firm_id: str
    name: str
    site: str
    stage: int
    starts_at: datetime
    ends_at: datetime | None
    status: str
    created_at: datetime


@dataclass(frozen=True)
class Gateway:
    id: str
    pilot_id: str
    protocol: str
    description: str | None
    commissioned_at: datetime
    decommissioned_at: datetime | None
    decommission_reason: str | None
    created_at: datetime


@dataclass(frozen=True)
class Device:
    id: str
    pilot_id: str
    kind: str
    connectivity: str
    reporting_interval_s: int
    gateway_id: str | None
    model: str | None
    commissioned_at: datetime
    decommissioned_at: datetime | None
    decommission_reason: str | None
    created_at: datetime
    profile_id: str | None  # the device profile its payloads are decoded by (store.profiles.assign)


R = TypeVar("R", Firm, Pilot, Gateway, Device)


@dataclass(frozen=True)
class Referrer:
    """A table whose rows point at another table's rows, named as a reader would say it."""

    table: str
    column: str
    noun: str  # plural, e.g. "devices"


@dataclass(frozen=True)
class Table(Generic[R]):
    name: str
    row: type[R]
    referrers: tuple[Referrer, ...]

    @property
    def columns(self) -> list[str]:
        return [f.name for f in fields(self.row)]


FIRMS = Table("firm", Firm, (Referrer("pilot", "firm_id", "pilots"),
                             Referrer("device_profile", "firm_id", "device profiles")))
PILOTS = Table("pilot", Pilot, (Referrer("gateway", "pilot_id", "gateways"),
                                Referrer("device", "pilot_id", "devices")))
GATEWAYS = Table("gateway", Gateway, (Referrer("device", "gateway_id", "devices"),))
DEVICES = Table("device", Device, (Referrer("telemetry", "device_id", "telemetry rows"),))

# Foreign keys by constraint name: (field in the request, table it must name).
_FOREIGN_KEYS = {
    "pilot_firm_id_fkey": ("firm_id", "firm"),
    "gateway_pilot_id_fkey": ("pilot_id", "pilot"),
    "device_pilot_id_fkey": ("pilot_id", "pilot"),
    "device_gateway_id_fkey": ("gateway_id", "gateway"),
}

# Cross-field checks by constraint name (single-field ranges are validated before SQL).
_CHECKS = {
    "pilot_check": "ends_at must be after starts_at",
    "device_check": "decommissioned_at and decommission_reason are set together",
    "gateway_check": "decommissioned_at and decommission_reason are set together",
    "device_check1": "decommissioned_at cannot be before commissioned_at",
}


@contextmanager
def _rules(table: Table[Any], row_id: str, values: Mapping[str, object]) -> Iterator[None]:
    """Turn the database's integrity errors into pilotlab errors that say what to fix."""
    try:
        yield
    except pg_errors.UniqueViolation:
        raise Conflict(f"{table.name} {row_id!r} already exists") from None
    except pg_errors.ForeignKeyViolation as exc:
        known = _FOREIGN_KEYS.get(exc.diag.constraint_name or "")
        if known is None:
            raise Conflict(f"{table.name} {row_id!r}: {exc.diag.message_primary}") from None
        field, target = known
        raise unknown_reference(field, values.get(field), target) from None
    except pg_errors.CheckViolation as exc:
        message = _CHECKS.get(exc.diag.constraint_name or "")
        if message is None:
            message = f"a value breaks the rule {exc.diag.constraint_name}"
        raise InvalidValue(f"{table.name} {row_id!r}: {message}") from None
    except pg_errors.NotNullViolation as exc:
        raise InvalidValue(f"{table.name} {row_id!r}: {exc.diag.column_name} cannot be null") from None


def _select(table: Table[Any]) -> sql.Composed:
    return sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(map(sql.Identifier, table.columns)), sql.Identifier(table.name)
    )


def _returning(table: Table[Any]) -> sql.Composed:
    return sql.SQL(" RETURNING {}").format(sql.SQL(", ").join(map(sql.Identifier, table.columns)))


def _checked_columns(table: Table[Any], names: Iterable[str]) -> list[str]:
    columns = list(names)
    unknown = set(columns) - set(table.columns)
    if unknown:  # a programming error: the API models and the tables disagree
        raise ValueError(f"{table.name} has no column(s) {sorted(unknown)}")
    return columns


def create(conn: psycopg.Connection, table: Table[R], values: Mapping[str, object]) -> R:
    """Insert one row; `values` must hold `id` and may omit columns that have defaults."""
    columns = _checked_columns(table, values)
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table.name),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder(c) for c in columns),
    ) + _returning(table)
    row_id = str(values.get("id"))
    with _rules(table, row_id, values), conn.transaction():
        if table is DEVICES:
            _check_commissioning(conn, row_id, values.get("pilot_id"), values.get("commissioned_at"))
        with conn.cursor(row_factory=class_row(table.row)) as cur:
            created = cur.execute(query, dict(values)).fetchone()
    assert created is not None
    return created


def find(conn: psycopg.Connection, table: Table[R], row_id: str) -> R | None:
    with conn.cursor(row_factory=class_row(table.row)) as cur:
        return cur.execute(_select(table) + sql.SQL(" WHERE id = %s"), (row_id,)).fetchone()


def get(conn: psycopg.Connection, table: Table[R], row_id: str) -> R:
    found = find(conn, table, row_id)
    if found is None:
        raise NotFound(f"no {table.name} with id {row_id!r}")
    return found


def list_rows(conn: psycopg.Connection, table: Table[R], filters: Mapping[str, object | None],
              *, limit: int, offset: int = 0) -> list[R]:
    """Rows in id order whose columns equal every non-None filter value."""
    given = {k: v for k, v in filters.items() if v is not None}
    conditions = [sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder(c))
                  for c in _checked_columns(table, given)]
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")
    query = _select(table) + where + sql.SQL(" ORDER BY id LIMIT {} OFFSET {}").format(
        sql.Literal(limit), sql.Literal(offset))
    with conn.cursor(row_factory=class_row(table.row)) as cur:
        return cur.execute(query, given).fetchall()


def update(conn: psycopg.Connection, table: Table[R], row_id: str, changes: Mapping[str, object]) -> R:
    """Set the given columns of one row; an empty `changes` returns the row unchanged."""
    if not changes:
        return get(conn, table, row_id)
    columns = _checked_columns(table, changes)
    query = sql.SQL("UPDATE {} SET {} WHERE id = {}").format(
        sql.Identifier(table.name),
        sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder(c)) for c in columns),
        sql.Placeholder("__id"),
    ) + _returning(table)
    with _rules(table, row_id, changes), conn.transaction():
        if table is DEVICES and "commissioned_at" in changes:
            _check_commissioning(conn, row_id, None, changes["commissioned_at"])
        with conn.cursor(row_factory=class_row(table.row)) as cur:
            updated = cur.execute(query, {**changes, "__id": row_id}).fetchone()
    if updated is None:
        raise NotFound(f"no {table.name} with id {row_id!r}")
    return updated


def _check_commissioning(conn: psycopg.Connection, device_id: str, pilot_id: object, commissioned_at: object) -> None:
    """Refuse to commission a device (commissioned_at, default now, not in the future) of a pilot that
    requires a passed conformance report, until the device has one (store/sql/0021)."""
    row = conn.execute(
        "SELECT p.id, p.conformance_required, now(), EXISTS (SELECT 1 FROM conformance_report r "
        "WHERE r.device_id = %(device)s AND r.passed) FROM pilot p "
        "WHERE p.id = coalesce(%(pilot)s, (SELECT pilot_id FROM device WHERE id = %(device)s))",
        {"device": device_id, "pilot": pilot_id}).fetchone()
    if row is None or not row[1]:
        return
    pilot, _, now, passed = row
    if passed or (isinstance(commissioned_at, datetime) and commissioned_at > now):
        return
    raise Conflict(f"pilot {pilot!r} requires a passed conformance report before a device is commissioned and device "
                   f"{device_id!r} has none: give commissioned_at a future time, pass `pilotlab conformance run "
                   f"{device_id}`, then set commissioned_at")


def delete(conn: psycopg.Connection, table: Table[Any], row_id: str) -> None:
    """Delete one row that nothing references; otherwise Conflict naming what still refers to it."""
    with conn.transaction():
        locked = conn.execute(
            sql.SQL("SELECT 1 FROM {} WHERE id = %s FOR UPDATE").format(sql.Identifier(table.name)),
            (row_id,),
        ).fetchone()
        if locked is None:
            raise NotFound(f"no {table.name} with id {row_id!r}")
        held = [f"{n} {ref.noun}" for ref in table.referrers if (n := _count_referrers(conn, ref, row_id))]
        if held:
            advice = ("decommission it instead" if table is DEVICES
                      else "delete or reassign them first")
            raise Conflict(f"{table.name} {row_id!r} is referenced by {' and '.join(held)}; {advice}")
        try:
            conn.execute(sql.SQL("DELETE FROM {} WHERE id = %s").format(sql.Identifier(table.name)),
                         (row_id,))
        except pg_errors.ForeignKeyViolation as exc:  # a referrer appeared since the count
            raise Conflict(f"{table.name} {row_id!r} is still referenced: {exc.diag.message_detail}") from None


_REFERRER_CAP = 10_000  # "10000+ telemetry rows" is enough to say why; never count a whole table


def _count_referrers(conn: psycopg.Connection, ref: Referrer, row_id: str) -> str:
    query = sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} = %s LIMIT {}) AS r").format(
        sql.Identifier(ref.table), sql.Identifier(ref.column), sql.Literal(_REFERRER_CAP + 1))
    row = conn.execute(query, (row_id,)).fetchone()
    n = int(row[0]) if row else 0
    if n == 0:
        return ""
    return f"{_REFERRER_CAP}+" if n > _REFERRER_CAP else str(n)


def decommission(conn: psycopg.Connection, table: Table[R], row_id: str, reason: str,
                 at: datetime | None = None) -> R:
    """Retire a device or gateway at `at` (default: now). Its history stays; new data is refused."""
    if table is not DEVICES and table is not GATEWAYS:
        raise ValueError(f"{table.name} rows are not decommissioned")
    with conn.transaction():
        current = conn.execute(
            sql.SQL("SELECT commissioned_at, decommissioned_at, now() FROM {} WHERE id = %s FOR UPDATE")
            .format(sql.Identifier(table.name)), (row_id,)).fetchone()
        if current is None:
            raise NotFound(f"no {table.name} with id {row_id!r}")
        commissioned_at, decommissioned_at, now = current
        if decommissioned_at is not None:
            raise Conflict(f"{table.name} {row_id!r} was already decommissioned at {decommissioned_at.isoformat()}")
        when = at or now
        if when < commissioned_at:
            raise InvalidValue(f"{table.name} {row_id!r}: decommission time {when.isoformat()} is before "
                               f"its commissioning at {commissioned_at.isoformat()}")
        return update(conn, table, row_id, {"decommissioned_at": when, "decommission_reason": reason})

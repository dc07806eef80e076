"""Expand a panel's SQL the way Grafana's PostgreSQL data source does, so tests can run it.

Grafana turns a panel's `rawSql` into the statement it sends in three steps, reproduced here in
the same order:

1. **Template variables**, in the browser: `TemplateSrv.replace(rawSql, scopedVars,
   SqlDatasource.interpolateVariable)` (grafana/grafana
   `public/app/features/templating/template_srv.ts` and
   `public/app/features/plugins/sql/datasource/SqlDatasource.ts`). Variables are found with
   Grafana's variable regex (`$name`, `${name}`, `[[name]]`); a value that is a single string of
   a variable that is neither multi-value nor has *All* is inserted raw with `'` doubled; a
   string of a multi-value or *All* variable is quoted (`'v'`); a list is quoted and joined with
   `,`. *All* selects every option's value (a list) unless the variable has a custom
   `allValue`, which is inserted as-is ("skip formatting of custom all values").
   `$__interval` and `$__interval_ms` are scoped variables of the panel's query here.
2. **Global substitutions**, in the backend (`pkg/tsdb/.../sqleng/sql_engine.go`, `Interpolate`):
   `$__interval_ms`, `$__interval` (gtime.FormatInterval), `$__unixEpochFrom()`, `$__unixEpochTo()`.
3. **PostgreSQL macros** (`pkg/tsdb/grafana-postgresql-datasource/macros.go`), matched by
   `\\$([_a-zA-Z0-9]+)\\(([^\\)]*)\\)`: `$__time`, `$__timeEpoch`, `$__timeFilter` (`col BETWEEN
   '<from RFC 3339>' AND '<to>'`), `$__timeFrom()`, `$__timeTo()`, `$__timeGroup(col, interval)`
   (`time_bucket('<s>.000s',col)` when the data source's `timescaledb` option is on, else
   `floor(extract(epoch from col)/<s>)*<s>`), `$__timeGroupAlias` (the same `AS "time"`, also
   what `$__timeGroup` becomes when a `,` follows it, for pre-5.3 dashboards),
   `$__unixEpochFilter`, `$__unixEpochNanoFilter/From/To`, `$__unixEpochGroup(Alias)`.

Fill modes (`$__timeGroup(col, 1m, NULL)`) are refused: pilotlab's panels do not use them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

ALL = "$__all"

# Grafana's variableRegex (public/app/features/variables/utils.ts).
_VARIABLE = re.compile(r"\$(\w+)|\[\[(\s*\w+\s*?)(?::(\w+))?\]\]|\${(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?}")
# macros.go: sExpr
_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class ExpansionError(ValueError):
    """The SQL uses something Grafana would refuse, or this expander does not model."""


@dataclass(frozen=True)
class Variable:
    """What of a dashboard variable matters to interpolation."""

    name: str
    multi: bool = False
    include_all: bool = False
    all_value: str | None = None
    options: Sequence[str] = field(default_factory=tuple)  # every option's value, for *All*


@dataclass(frozen=True)
class QueryContext:
    """A panel query's time range and interval, as Grafana computes them for the request."""

    time_from: datetime
    time_to: datetime
    interval: timedelta
    timescaledb: bool = False


def parse_interval(text: str) -> timedelta:
    """gtime.ParseInterval for the units pilotlab uses (ms, s, m, h, d, w)."""
    match = _INTERVAL.match(text.strip().strip("'"))
    if not match:
        raise ExpansionError(f"error parsing interval {text}")
    return timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])


def format_interval(interval: timedelta) -> str:
    """gtime.FormatInterval: the largest whole unit (y, d, h, m, s, ms)."""
    ms = int(interval / timedelta(milliseconds=1))
    for unit, size in (("y", 365 * 86_400_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        if ms >= size:
            return f"{ms // size}{unit}"
    return "1ms"


def go_float(value: float) -> str:
    """Go's `%v` for a float64: shortest digits, exponent form when exp < -4 or >= 21."""
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    digits = Decimal(repr(value))
    exponent = digits.adjusted()
    if exponent < -4 or exponent >= 21:
        mantissa, exp = f"{value:e}".split("e")
        mantissa = repr(float(mantissa))
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exp):+03d}"
    return repr(value)


def rfc3339_nano(moment: datetime) -> str:
    """Go's time.RFC3339Nano of a UTC time: trailing zeros of the fraction dropped, 'Z'."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def interpolate_variables(sql: str, variables: Mapping[str, Variable],
                          current: Mapping[str, str | Sequence[str]], scoped: Mapping[str, str] | None = None) -> str:
    """Step 1: the browser's TemplateSrv.replace with SqlDatasource.interpolateVariable."""
    scoped = scoped or {}

    def format_value(value: str | Sequence[str], variable: Variable | None) -> str:
        if isinstance(value, str):
            if variable is not None and (variable.multi or variable.include_all):
                return _quote(value)
            return value.replace("'", "''")
        return ",".join(_quote(v) for v in value)

    def replace(match: re.Match[str]) -> str:
        name = (match.group(1) or match.group(2) or match.group(4) or "").strip()
        if match.group(3) or match.group(5) or match.group(6):
            raise ExpansionError(f"variable formats and field paths are not modelled: {match.group(0)}")
        if name in scoped:
            return format_value(scoped[name], None)
        variable = variables.get(name)
        if variable is None:
            return match.group(0)  # not a variable (e.g. a macro name): left for the backend
        value = current[name]
        if value == ALL or (not isinstance(value, str) and list(value)[:1] == [ALL]):
            if variable.all_value is not None:
                return interpolate_variables(variable.all_value, variables, current, scoped)
            value = list(variable.options)
        return format_value(value, variable)

    return _VARIABLE.sub(replace, sql)


def interpolate_globals(sql: str, ctx: QueryContext) -> str:
    """Step 2: sqleng.Interpolate."""
    sql = sql.replace("$__interval_ms", str(int(ctx.interval / timedelta(milliseconds=1))))
    sql = sql.replace("$__interval", format_interval(ctx.interval))
    sql = sql.replace("$__unixEpochFrom()", str(int(ctx.time_from.timestamp())))
    return sql.replace("$__unixEpochTo()", str(int(ctx.time_to.timestamp())))


def _time_group(args: list[str], ctx: QueryContext, name: str) -> str:
    if len(args) < 2:
        raise ExpansionError(f"macro {name} needs time column and interval and optional fill value")
    if len(args) == 3:
        raise ExpansionError("fill modes of $__timeGroup are not modelled")
    seconds = parse_interval(args[1]).total_seconds()
    if name == "__unixEpochGroup":
        return f"floor(({args[0]})/{go_float(seconds)})*{go_float(seconds)}"
    if ctx.timescaledb:
        return f"time_bucket('{seconds:.3f}s',{args[0]})"
    return f"floor(extract(epoch from {args[0]})/{go_float(seconds)})*{go_float(seconds)}"


def _macro(name: str, args: list[str], ctx: QueryContext) -> str:
    start, end = rfc3339_nano(ctx.time_from), rfc3339_nano(ctx.time_to)
    needs_column = {"__time", "__timeEpoch", "__timeFilter", "__unixEpochFilter", "__unixEpochNanoFilter"}
    if name in needs_column and (not args or args == [""]):
        raise ExpansionError(f"missing time column argument for macro {name}")
    if name == "__time":
        return f'{args[0]} AS "time"'
    if name == "__timeEpoch":
        return f'extract(epoch from {args[0]}) as "time"'
    if name == "__timeFilter":
        return f"{args[0]} BETWEEN '{start}' AND '{end}'"
    if name == "__timeFrom":
        return f"'{start}'"
    if name == "__timeTo":
        return f"'{end}'"
    if name in ("__timeGroup", "__unixEpochGroup"):
        return _time_group(args, ctx, name)
    if name in ("__timeGroupAlias", "__unixEpochGroupAlias"):
        return _time_group(args, ctx, name.removesuffix("Alias")) + ' AS "time"'
    if name == "__unixEpochFilter":
        return f"{args[0]} >= {int(ctx.time_from.timestamp())} AND {args[0]} <= {int(ctx.time_to.timestamp())}"
    nano_from, nano_to = int(ctx.time_from.timestamp() * 1e6) * 1000, int(ctx.time_to.timestamp() * 1e6) * 1000
    if name == "__unixEpochNanoFilter":
        return f"{args[0]} >= {nano_from} AND {args[0]} <= {nano_to}"
    if name == "__unixEpochNanoFrom":
        return str(nano_from)
    if name == "__unixEpochNanoTo":
        return str(nano_to)
    raise ExpansionError(f'unknown macro "{name}"')


def interpolate_macros(sql: str, ctx: QueryContext) -> str:
    """Step 3: postgresMacroEngine.Interpolate."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "__timeGroup":
            # macros.go looks for the first occurrence of the same text in the whole query.
            index = sql.find(match.group(0))
            if index >= 0 and sql[index + len(match.group(0)): index + len(match.group(0)) + 1] == ",":
                name = "__timeGroupAlias"
        args = [arg.strip(" ") for arg in match.group(2).split(",")]
        return _macro(name, args, ctx)

    return _MACRO.sub(replace, sql)


def expand(sql: str, ctx: QueryContext, variables: Mapping[str, Variable] | None = None,
           current: Mapping[str, str | Sequence[str]] | None = None) -> str:
    """The statement Grafana's PostgreSQL data source would execute for this panel SQL.

    SQL comments are refused: recent Grafana strips them before expanding macros, older versions
    do not, so a panel with comments could run differently by version."""
    if "--" in sql or "/*" in sql:
        raise ExpansionError("panel SQL must carry no comments (Grafana versions strip them differently)")
    scoped = {"__interval": format_interval(ctx.interval),
              "__interval_ms": str(int(ctx.interval / timedelta(milliseconds=1)))}
    sql = interpolate_variables(sql, variables or {}, current or {}, scoped)
    sql = interpolate_globals(sql, ctx)
    return interpolate_macros(sql, ctx)

"""The expander reproduces Grafana's PostgreSQL data source: the expected strings are those of
Grafana's own tests (pkg/tsdb/grafana-postgresql-datasource/macros_test.go) and of the
browser-side variable formatting (SqlDatasource.interpolateVariable, TemplateSrv)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboards.grafana_sql import (
    ALL,
    ExpansionError,
    QueryContext,
    Variable,
    expand,
    format_interval,
    interpolate_macros,
    interpolate_variables,
)

FROM = datetime(2018, 4, 12, 18, 0, tzinfo=UTC)
CTX = QueryContext(FROM, FROM + timedelta(minutes=5), timedelta(minutes=10))
TS = QueryContext(FROM, FROM + timedelta(minutes=5), timedelta(minutes=10), timescaledb=True)


@pytest.mark.parametrize(("sql", "expected"), [
    ("select $__time(time_column)", 'select time_column AS "time"'),
    ("WHERE $__timeFilter(time_column)", "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'"),
    ("select $__timeFrom()", "select '2018-04-12T18:00:00Z'"),
    ("select $__timeTo()", "select '2018-04-12T18:05:00Z'"),
    ("SELECT $__timeGroup(time_column,'5m'), value", 'SELECT floor(extract(epoch from time_column)/300)*300 AS "time", value'),
    ("SELECT $__timeGroup(time_column,'5m') as time, value", "SELECT floor(extract(epoch from time_column)/300)*300 as time, value"),
    ("SELECT $__timeGroupAlias(time_column,'5m')", 'SELECT floor(extract(epoch from time_column)/300)*300 AS "time"'),
    ("$__timeGroup(time_column , '5m')", "floor(extract(epoch from time_column)/300)*300"),
    ("SELECT $__unixEpochGroup(time_column+time_adjustment,'5m')", "SELECT floor((time_column+time_adjustment)/300)*300"),
    ("select $__unixEpochFilter(time)", f"select time >= {int(FROM.timestamp())} AND time <= {int(FROM.timestamp()) + 300}"),
])
def test_macros_expand_as_in_grafanas_macro_tests(sql: str, expected: str) -> None:
    assert interpolate_macros(sql, CTX) == expected


@pytest.mark.parametrize(("sql", "expected"), [
    ("GROUP BY $__timeGroup(time_column,'5m')", "GROUP BY time_bucket('300.000s',time_column)"),
    ("GROUP BY $__timeGroup(time_column , '12d')", "GROUP BY time_bucket('1036800.000s',time_column)"),
    ("GROUP BY $__timeGroup(time_column , '20ms')", "GROUP BY time_bucket('0.020s',time_column)"),
])
def test_time_group_uses_time_bucket_when_the_datasource_says_timescaledb(sql: str, expected: str) -> None:
    assert interpolate_macros(sql, TS) == expected


def test_interval_is_replaced_before_macros_as_the_backend_does() -> None:
    assert expand("SELECT $__interval", CTX) == "SELECT 10m"
    assert expand("SELECT $__timeGroupAlias(t, $__interval), $__interval_ms", CTX) == \
        'SELECT floor(extract(epoch from t)/600)*600 AS "time", 600000'
    assert format_interval(timedelta(hours=36)) == "1d"


def test_fractional_times_are_formatted_as_rfc3339_nano() -> None:
    ctx = QueryContext(datetime(1960, 2, 1, 7, 0, 0, 500000, tzinfo=UTC), datetime(1980, 2, 3, 8, 0, 0, 500000, tzinfo=UTC),
                       timedelta(minutes=1))
    assert interpolate_macros("$__timeFilter(c)", ctx) == "c BETWEEN '1960-02-01T07:00:00.5Z' AND '1980-02-03T08:00:00.5Z'"


def test_variables_are_quoted_only_when_multi_value_or_all() -> None:
    single = {"p": Variable("p")}
    multi = {"p": Variable("p", multi=True, options=("a", "b'c"))}
    assert interpolate_variables("x = '$p'", single, {"p": "o'k"}) == "x = 'o''k'"
    assert interpolate_variables("x IN ($p)", multi, {"p": "a"}) == "x IN ('a')"
    assert interpolate_variables("x IN (${p})", multi, {"p": ["a", "b'c"]}) == "x IN ('a','b''c')"
    assert interpolate_variables("x IN ([[p]])", multi, {"p": ALL}) == "x IN ('a','b''c')"


def test_all_with_a_custom_all_value_is_inserted_unformatted() -> None:
    variables = {"p": Variable("p", multi=True, include_all=True, all_value="SELECT id FROM pilot", options=("a",))}
    assert interpolate_variables("x IN ($p)", variables, {"p": [ALL]}) == "x IN (SELECT id FROM pilot)"


def test_unknown_names_are_left_for_the_backend_and_unknown_macros_fail() -> None:
    assert interpolate_variables("$__timeFilter(t) AND $other", {}, {}) == "$__timeFilter(t) AND $other"
    with pytest.raises(ExpansionError, match="unknown macro"):
        interpolate_macros("$__nope(t)", CTX)
    with pytest.raises(ExpansionError, match="comments"):
        expand("SELECT 1 -- note", CTX)

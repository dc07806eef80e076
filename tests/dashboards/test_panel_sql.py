"""Every panel's SQL, expanded as Grafana's PostgreSQL data source expands it, runs against a
database filled through the real broker and ingest, and returns rows with the panel's columns."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from dashboards.catalog import DASHBOARDS
from dashboards.grafana_sql import ALL, QueryContext, Variable, expand, parse_interval
from dashboards.model import DashboardSpec, PanelSpec
from devices.kinds import DeviceKind
from tests.dashboards.conftest import FilledPilot

PANELS = [pytest.param(d, p, id=f"{d.slug}:{p.title}") for d in DASHBOARDS for p in d.panels]
DEFAULT_INTERVAL = timedelta(minutes=1)


def _missing(conn: psycopg.Connection, panel: PanelSpec) -> list[str]:
    missing = []
    for req in panel.requires:
        found = {row[0] for row in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
            (req.table,))}
        if not found:
            missing.append(f"table {req.table}: {req.made_by}")
        elif absent := [c for c in req.columns if c not in found]:
            missing.append(f"columns {req.table}.{', '.join(absent)} ({req.made_by})")
    return missing


def _contexts(spec: DashboardSpec, pilot: FilledPilot) -> list[dict[str, str | list[str]]]:
    """The variable selections to try: the test pilot (and *All* where allowed); each device kind."""
    names = {v.name for v in spec.variables}
    base: dict[str, str | list[str]] = {}
    selections = []
    if "pilot" in names:
        pilot_var = next(v for v in spec.variables if v.name == "pilot")
        base["pilot"] = [pilot.pilot_id] if pilot_var.multi else pilot.pilot_id
        selections.append(dict(base))
        if pilot_var.include_all:
            selections.append({**base, "pilot": ALL})
    if "gateway" in names:
        selections = [{**s, "gateway": ALL} for s in selections] + [{**base, "gateway": [pilot.gateway_id]}]
    if "device" in names:
        selections = [{**s, "device": pilot.device_of(kind)} for s in selections for kind in DeviceKind]
    return selections or [{}]


def _variables(conn: psycopg.Connection, spec: DashboardSpec, ctx: QueryContext,
               current: dict[str, str | list[str]]) -> dict[str, Variable]:
    """Options come from running each variable's own query, expanded with the variables before it."""
    variables: dict[str, Variable] = {}
    for v in spec.variables:
        rows = conn.execute(expand(v.query, ctx, variables, current)).fetchall()  # type: ignore[call-overload]
        variables[v.name] = v.for_expansion([str(r[0]) for r in rows])
    return variables


@pytest.mark.parametrize(("spec", "panel"), PANELS)
def test_panel_sql_returns_rows_with_the_panels_columns(filled_pilot: FilledPilot, spec: DashboardSpec,
                                                        panel: PanelSpec) -> None:
    interval = max(DEFAULT_INTERVAL, parse_interval(panel.min_interval) if panel.min_interval else DEFAULT_INTERVAL)
    ctx = QueryContext(filled_pilot.time_from, filled_pilot.time_to, interval, timescaledb=False)
    with psycopg.connect(filled_pilot.database_url) as conn:
        if missing := _missing(conn, panel):
            pytest.skip("needs " + "; ".join(missing))
        answered = []
        for current in _contexts(spec, filled_pilot):
            variables = _variables(conn, spec, ctx, current)
            statement = expand(panel.sql, ctx, variables, current)
            assert "$" not in statement.replace("$__", ""), statement
            assert "$__" not in statement, f"unexpanded macro in {statement}"
            cur = conn.execute(statement)  # type: ignore[call-overload]
            rows = cur.fetchall()
            columns = tuple(c.name for c in cur.description or ())
            assert columns == panel.columns, f"{panel.title} with {current}: {columns}"
            if panel.format == "time_series":
                assert columns[0] == "time", "Grafana's time series format needs a time column"
            answered.append(bool(rows))
        # A device panel may be empty for a kind without that measurement (a switch has no battery),
        # never for every selection.
        assert any(answered), f"{panel.title} returned no rows for any selection"


def test_every_variable_query_lists_the_test_pilots_values(filled_pilot: FilledPilot) -> None:
    ctx = QueryContext(filled_pilot.time_from, filled_pilot.time_to, DEFAULT_INTERVAL)
    with psycopg.connect(filled_pilot.database_url) as conn:
        for spec in DASHBOARDS:
            for current in _contexts(spec, filled_pilot):
                variables = _variables(conn, spec, ctx, current)
                if "pilot" in variables:
                    assert filled_pilot.pilot_id in variables["pilot"].options
                if "device" in variables:
                    assert {d.id for d in filled_pilot.devices} <= set(variables["device"].options)
                if "gateway" in variables:
                    assert variables["gateway"].options == (filled_pilot.gateway_id, f"{filled_pilot.gateway_id}-2")

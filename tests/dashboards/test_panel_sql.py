"""Every panel's SQL, expanded as Grafana's PostgreSQL data source expands it, runs against a
database filled through the real broker and ingest, and returns rows with the panel's columns."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from dashboards.catalog import DASHBOARDS, FLEET
from dashboards.grafana_sql import ALL, QueryContext, Variable, expand, parse_interval
from dashboards.model import DashboardSpec, PanelSpec
from devices.kinds import DeviceKind
from store.timeseries import read_capabilities
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
    with psycopg.connect(filled_pilot.database_url) as conn:
        # as provisioned: Grafana emits time_bucket when the data source says TimescaleDB
        ctx = QueryContext(filled_pilot.time_from, filled_pilot.time_to, interval,
                           timescaledb=read_capabilities(conn).timescaledb)
        if missing := _missing(conn, panel):
            pytest.skip("needs " + "; ".join(missing))
        answered = []
        for current in _contexts(spec, filled_pilot):
            variables = _variables(conn, spec, ctx, current)
            statement = expand(panel.sql, ctx, variables, current)
            assert "$" not in statement.replace("$__", ""), statement
            assert "$__" not in statement, f"unexpanded macro in {statement}"
            assert ("time_bucket(" in statement) is (ctx.timescaledb and "$__timeGroup" in panel.sql)
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


def _fleet_panel(database_url: str, title: str, pilot_id: str) -> list[tuple[object, ...]]:
    """The rows of a Fleet overview panel with only `pilot_id` selected, as Grafana would run it."""
    panel = next(p for p in FLEET.panels if p.title == title)
    now = datetime.now(UTC)
    ctx = QueryContext(now - timedelta(hours=1), now + timedelta(minutes=5), DEFAULT_INTERVAL)
    with psycopg.connect(database_url) as conn:
        variables = _variables(conn, FLEET, ctx, {"pilot": [pilot_id]})
        cur = conn.execute(expand(panel.sql, ctx, variables, {"pilot": [pilot_id]}))  # type: ignore[call-overload]
        assert tuple(c.name for c in cur.description or ()) == panel.columns
        return cur.fetchall()


def test_a_reading_stamped_ahead_does_not_make_a_reporting_device_look_offline_in_grafana(database_url: str) -> None:
    """Arrival decides "online" in Grafana as in the API (store/readings.py): a reading stamped
    20 h ahead (ingest accepts up to a day of clock error) is the newest by device time for a day,
    but the normal readings that arrive after it are what say the device is reporting."""
    name = f"ahead-{uuid.uuid4().hex[:6]}"
    pilot_id, glitch, silent, ahead_only = f"{name}-pilot", f"{name}-glitch", f"{name}-silent", f"{name}-ahead"
    now = datetime.now(UTC).replace(microsecond=0)
    ago = lambda seconds: now - timedelta(seconds=seconds)  # noqa: E731
    arrivals = [ago(540 - 60 * i) for i in range(9)]  # every minute as declared, the last 60 s ago
    rows = [(glitch, 0, now + timedelta(hours=20), ago(600)),  # the clock glitch, received 10 minutes ago
            *[(glitch, 1 + i, at, at) for i, at in enumerate(arrivals)],
            *[(silent, i, ago(1200 - 60 * i), ago(1200 - 60 * i)) for i in range(11)],  # last heard 10 minutes ago
            (ahead_only, 0, now + timedelta(hours=20), ago(600))]  # stamped ahead, then nothing
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO firm (id, name) VALUES (%s, %s)", (f"{name}-firm", name))
        conn.execute("INSERT INTO pilot (id, firm_id, name, site, starts_at, status) "
                     "VALUES (%s, %s, %s, 'lab', %s, 'running')", (pilot_id, f"{name}-firm", name, ago(86_400)))
        for device in (glitch, silent, ahead_only):
            conn.execute("INSERT INTO device (id, pilot_id, kind, connectivity, reporting_interval_s, commissioned_at) "
                         "VALUES (%s, %s, 'env_sensor', 'wifi', 60, %s)", (device, pilot_id, ago(86_400)))
        conn.cursor().executemany(
            "INSERT INTO telemetry (device_id, seq, device_time, ingest_time, channel, size_bytes, temperature_c) "
            "VALUES (%s, %s, %s, %s, 'telemetry', 40, 20.0)", rows)

    assert _fleet_panel(database_url, "Devices online", pilot_id) == [(1, 2)]
    table = {r[1]: r for r in _fleet_panel(database_url, "Devices", pilot_id)}
    assert {device: (r[3], r[4]) for device, r in table.items()} == {
        glitch: (True, arrivals[-1]),  # online, last seen when its latest message arrived
        silent: (False, ago(600)),
        ahead_only: (False, ago(600)),  # last seen when it arrived, not 20 h from now
    }
    assert list(table)[-1] == glitch, "offline devices are listed first"

"""What a pilotlab dashboard is made of, and how it becomes Grafana's dashboard JSON.

A `DashboardSpec` lists `PanelSpec`s: a visualization, the SQL it runs (with Grafana's macros
and `$pilot`/`$device` variables), the columns that SQL returns, and the tables it needs. The
JSON comes from grafana-foundation-sdk's builders (`build_dashboard`); `SqlQuery` is the
PostgreSQL data source's query model, which the SDK does not ship, registered as a dataquery
variant so the SDK's own `Dashboard.from_json` decodes it back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import geomap, heatmap, piechart, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders.common import MapLayerOptions
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import (
    Dashboard,
    DashboardCursorSync,
    DataSourceRef,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from dashboards.grafana_sql import Variable

DATASOURCE_TYPE = "grafana-postgresql-datasource"  # Grafana ≥ 10.3; `postgres` before
DATASOURCE_UID = "pilotlab-postgres"
Visual = Literal["timeseries", "stat", "table", "heatmap", "piechart", "state-timeline", "geomap"]
Format = Literal["time_series", "table"]


class SqlQuery(cogvariants.Dataquery):
    """A raw-SQL query of Grafana's PostgreSQL data source (its frontend's SQLQuery model)."""

    def __init__(self, ref_id: str = "A", raw_sql: str = "", format: str = "time_series",
                 datasource: DataSourceRef | None = None) -> None:
        self.ref_id, self.raw_sql, self.format, self.datasource = ref_id, raw_sql, format, datasource

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {"refId": self.ref_id, "rawSql": self.raw_sql, "format": self.format,
                                      "rawQuery": True, "editorMode": "code"}
        if self.datasource is not None:
            payload["datasource"] = self.datasource.to_json()
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        unknown = set(data) - {"refId", "rawSql", "format", "rawQuery", "editorMode", "datasource"}
        if unknown:
            raise ValueError(f"unknown SQL query fields {sorted(unknown)}")
        ds = data.get("datasource")
        return cls(data.get("refId", "A"), data.get("rawSql", ""), data.get("format", "time_series"),
                   DataSourceRef.from_json(ds) if ds else None)


class SqlQueryBuilder(Builder[cogvariants.Dataquery]):
    def __init__(self, query: SqlQuery) -> None:
        self._internal = query

    def build(self) -> cogvariants.Dataquery:
        return self._internal


register_default_plugins()  # the SDK's panel plugins, so from_json decodes their options
cogruntime.register_dataquery_variant(cogruntime.DataqueryConfig(identifier=DATASOURCE_TYPE,
                                                                 from_json_hook=SqlQuery.from_json))


@dataclass(frozen=True)
class Requirement:
    """A table (or view) and the columns a panel's SQL reads from it, and which migration makes it."""

    table: str
    columns: tuple[str, ...] = ()
    made_by: str = ""


@dataclass(frozen=True)
class PanelSpec:
    title: str
    visual: Visual
    sql: str
    columns: tuple[str, ...]  # what the SQL returns, in order
    format: Format = "time_series"
    unit: str | None = None
    width: int = 12
    height: int = 8
    min_interval: str | None = None  # the panel's "min interval": a floor for $__interval
    description: str = ""
    requires: tuple[Requirement, ...] = ()
    tweak: Callable[[Any], Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class VariableSpec:
    name: str
    label: str
    query: str
    multi: bool = False
    include_all: bool = False

    def for_expansion(self, options: Sequence[str]) -> Variable:
        return Variable(self.name, self.multi, self.include_all, None, tuple(options))


@dataclass(frozen=True)
class DashboardSpec:
    slug: str  # stable: the uid is derived from it
    title: str
    description: str
    variables: tuple[VariableSpec, ...]
    panels: tuple[PanelSpec, ...]
    per_pilot: bool  # provisioned once per pilot folder (else once, in the pilotlab folder)
    time_from: str = "now-6h"
    tags: tuple[str, ...] = ("pilotlab",)


def datasource_ref(uid: str = DATASOURCE_UID) -> DataSourceRef:
    return DataSourceRef(type_val=DATASOURCE_TYPE, uid=uid)


def _panel_builder(spec: PanelSpec) -> Any:
    """The SDK builder of the panel's plugin, with explicit options (Grafana stores `null` otherwise)."""
    from grafana_foundation_sdk.builders.common import ReduceDataOptions, VizLegendOptions, VizTooltipOptions
    from grafana_foundation_sdk.models.common import LegendDisplayMode, LegendPlacement, TooltipDisplayMode, VisibilityMode

    def tooltip() -> VizTooltipOptions:
        return VizTooltipOptions().mode(TooltipDisplayMode.MULTI)

    def legend() -> VizLegendOptions:
        return VizLegendOptions().display_mode(LegendDisplayMode.LIST).placement(LegendPlacement.BOTTOM).show_legend(True)

    def every_row(calc: str) -> ReduceDataOptions:
        return ReduceDataOptions().values(True).calcs([calc])

    builders: dict[str, Callable[[], Any]] = {
        "timeseries": lambda: timeseries.Panel().tooltip(tooltip()).legend(legend()),
        "stat": lambda: stat.Panel().reduce_options(every_row("lastNotNull")),
        "table": lambda: table.Panel().show_header(True),
        "heatmap": heatmap.Panel,
        "piechart": lambda: piechart.Panel().reduce_options(every_row("sum")).tooltip(tooltip()),
        "state-timeline": lambda: statetimeline.Panel().show_value(VisibilityMode.AUTO).tooltip(tooltip()),
        "geomap": geomap.Panel,
    }
    return builders[spec.visual]()


def _variable(spec: VariableSpec, ds: DataSourceRef, current: str | None) -> dash.QueryVariable:
    variable = (dash.QueryVariable(spec.name).label(spec.label).query(spec.query).datasource(ds)
                .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(VariableSort.ALPHABETICAL_ASC)
                .multi(spec.multi).include_all(spec.include_all))
    if current is not None:
        variable = variable.current(VariableOption(text=current, value=current, selected=True))
    return variable


def build_dashboard(spec: DashboardSpec, *, uid: str | None = None, title: str | None = None,
                    datasource_uid: str = DATASOURCE_UID, pilot_id: str | None = None) -> Dashboard:
    """The SDK model of a dashboard; `pilot_id` preselects the pilot variable (per-pilot folders)."""
    ds = datasource_ref(datasource_uid)
    builder = (dash.Dashboard(title or spec.title).uid(uid or f"pilotlab-{spec.slug}").description(spec.description)
               .tags(list(spec.tags)).time(spec.time_from, "now").refresh("1m").timezone("browser")
               .tooltip(DashboardCursorSync.CROSSHAIR).editable())
    for variable in spec.variables:
        builder = builder.with_variable(_variable(variable, ds, pilot_id if variable.name == "pilot" else None))
    for number, panel in enumerate(spec.panels, start=1):
        p = (_panel_builder(panel).id(number).title(panel.title).datasource(ds).span(panel.width).height(panel.height)
             .with_target(SqlQueryBuilder(SqlQuery("A", panel.sql, panel.format, ds))))
        if panel.description:
            p = p.description(panel.description)
        if panel.unit:
            p = p.unit(panel.unit)
        if panel.min_interval:
            p = p.interval(panel.min_interval)
        if panel.tweak is not None:
            p = panel.tweak(p)
        builder = builder.with_panel(p)
    return builder.build()


def dashboard_json(model: Dashboard) -> dict[str, Any]:
    """Plain JSON (what Grafana stores and the HTTP API takes as `dashboard`), in the SDK's
    canonical form: encoded, decoded by the SDK's own models (which fill each panel plugin's
    field-config defaults) and encoded again, so decoding it once more changes nothing."""
    first = json.loads(json.dumps(model, cls=JSONEncoder))
    result: dict[str, Any] = json.loads(json.dumps(Dashboard.from_json(first), cls=JSONEncoder))
    return result


def geomap_layers(*layers: tuple[str, str]) -> Callable[[Any], Any]:
    """A tweak adding marker layers (name, color) to a geomap panel, located by lat/lon fields."""

    def tweak(panel: Any) -> Any:
        built = [MapLayerOptions().type("markers").name(name).tooltip(True)
                 .config({"style": {"color": {"fixed": color}, "size": {"fixed": 6}}, "showLegend": True})
                 .location(_latlon()) for name, color in layers]
        from grafana_foundation_sdk.builders.geomap import MapViewConfig

        return (panel.layers(built).basemap(MapLayerOptions().type("osm-standard").name("OpenStreetMap"))
                .view(MapViewConfig().id("fit").zoom(14)))

    return tweak


def _latlon() -> Any:
    from grafana_foundation_sdk.builders.common import FrameGeometrySource
    from grafana_foundation_sdk.models.common import FrameGeometrySourceMode

    return FrameGeometrySource().mode(FrameGeometrySourceMode.COORDS).latitude("lat").longitude("lon")


def variable_names(specs: Sequence[VariableSpec]) -> list[str]:
    return [v.name for v in specs]

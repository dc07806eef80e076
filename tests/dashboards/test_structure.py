"""Every dashboard passes a structural check against grafana-foundation-sdk's models: the SDK
decodes it and encodes it back unchanged (so every field is one its models know), each panel type
is a panel plugin the SDK has a model for and its options decode into that model, and each query
decodes as a PostgreSQL SQL query. The shipped files under deploy/grafana/dashboards are exactly
what the code builds."""

from __future__ import annotations

import json
from typing import Any

import pytest
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard, Panel

from dashboards.catalog import DASHBOARDS
from dashboards.files import DEPLOY_DASHBOARDS, rendered
from dashboards.model import DATASOURCE_TYPE, SqlQuery, build_dashboard, dashboard_json

register_default_plugins()
cogruntime.register_dataquery_variant(cogruntime.DataqueryConfig(identifier=DATASOURCE_TYPE, from_json_hook=SqlQuery.from_json))

SHIPPED = sorted(DEPLOY_DASHBOARDS.glob("*.json"))


def _round_trip(data: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(Dashboard.from_json(data), cls=JSONEncoder))
    return result


def _check(data: dict[str, Any]) -> None:
    assert _round_trip(data) == data, "the SDK's Dashboard model does not reproduce this dashboard"
    assert data["panels"], "no panels"
    ids = [p["id"] for p in data["panels"] if "id" in p]
    assert len(ids) == len(set(ids))
    for raw in data["panels"]:
        panel = Panel.from_json(raw)
        config = cogruntime.panelcfg_config(panel.type_val)
        assert config is not None, f"{panel.type_val} is not a panel plugin the SDK models"
        if config.options_from_json_hook is not None and raw.get("options"):
            options = config.options_from_json_hook(raw["options"])
            assert not isinstance(options, dict), f"{panel.title}: options did not decode into the plugin's model"
            assert json.loads(json.dumps(options, cls=JSONEncoder)) == raw["options"], f"{panel.title}: options changed"
        assert panel.targets, f"{panel.title} has no query"
        for target in panel.targets:
            assert isinstance(target, SqlQuery), f"{panel.title}: query is not a PostgreSQL SQL query"
            assert target.raw_sql.strip() and target.format in ("time_series", "table")
            assert target.datasource is not None and target.datasource.type_val == DATASOURCE_TYPE
    for variable in data.get("templating", {}).get("list", []):
        assert variable["type"] == "query" and variable["datasource"]["type"] == DATASOURCE_TYPE


@pytest.mark.parametrize("spec", DASHBOARDS, ids=lambda s: s.slug)
def test_built_dashboard_matches_the_sdk_models(spec: Any) -> None:
    _check(dashboard_json(build_dashboard(spec)))
    _check(dashboard_json(build_dashboard(spec, uid="x", title="t", pilot_id="some-pilot")))


def test_shipped_dashboard_files_are_what_the_code_builds() -> None:
    expected = rendered()
    assert sorted(p.name for p in SHIPPED) == sorted(expected), "run `pilotlab grafana export`"
    for path in SHIPPED:
        assert path.read_text(encoding="utf-8") == expected[path.name], f"{path.name} is stale: run `pilotlab grafana export`"
        _check(json.loads(path.read_text(encoding="utf-8")))


def test_dashboard_uids_are_unique_and_fit_grafanas_limit() -> None:
    uids = [dashboard_json(build_dashboard(s))["uid"] for s in DASHBOARDS]
    assert len(set(uids)) == len(uids) and all(len(u) <= 40 for u in uids)

"""File provisioning: the dashboard JSON files Grafana loads from deploy/grafana/dashboards/.

They are build output of the catalog (`pilotlab grafana export`), kept in the repository so the
compose stack needs no Python to provision Grafana; a test fails when they drift from the code.
Files hold the catalog's dashboards once each, with the pilot chosen in the dashboard's variable
(per-pilot folders are what `pilotlab grafana provision` adds on top).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dashboards.catalog import DASHBOARDS
from dashboards.model import build_dashboard, dashboard_json

DEPLOY_DASHBOARDS = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards"


def rendered() -> dict[str, str]:
    """File name → JSON text of every dashboard, as file provisioning ships it."""
    out = {}
    for spec in DASHBOARDS:
        model: dict[str, Any] = dashboard_json(build_dashboard(spec))
        out[f"{spec.slug}.json"] = json.dumps(model, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    return out


def export(directory: Path = DEPLOY_DASHBOARDS) -> list[Path]:
    """Write every dashboard's JSON into `directory`; remove stale pilotlab files there."""
    directory.mkdir(parents=True, exist_ok=True)
    files = rendered()
    for stale in directory.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written

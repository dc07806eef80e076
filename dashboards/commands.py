"""`pilotlab grafana provision` and `pilotlab grafana export`, wired into the CLI by pilotlab/cli.py."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pilotlab.settings import Settings


def add_grafana_commands(commands: Any, service_flags: Callable[..., None], settings: Callable[..., Settings]) -> None:
    grafana = commands.add_parser("grafana", help="Grafana dashboards: provision over HTTP, export files")
    tasks = grafana.add_subparsers(dest="grafana_command", metavar="TASK", parser_class=type(grafana), required=True)
    provision = tasks.add_parser("provision", help="create or update the data source, a folder per pilot and the dashboards")
    service_flags(provision)
    provision.add_argument("--grafana-url", help="Grafana base URL (env PILOTLAB_GRAFANA_URL, default http://127.0.0.1:3000)")
    provision.add_argument("--grafana-database-url",
                           help="PostgreSQL URL as Grafana reaches it (env PILOTLAB_GRAFANA_DATABASE_URL; default --database-url)")

    def run_provision(args: argparse.Namespace) -> int:
        from dashboards.provision import provision as do_provision

        s = settings(args, grafana_url="grafana_url", grafana_database_url="grafana_database_url")
        report = do_provision(s.grafana_url, s.grafana_token.get_secret_value() if s.grafana_token else None,
                              s.require_database_url(), s.grafana_database_url)
        print(f"grafana at {s.grafana_url}: {report.summary()}")
        return 0

    provision.set_defaults(run=run_provision)

    export = tasks.add_parser("export", help="write the dashboards' JSON for file provisioning (deploy/grafana/dashboards)")
    export.add_argument("--out", type=Path, help="directory (default: deploy/grafana/dashboards of this tree)")

    def run_export(args: argparse.Namespace) -> int:
        from dashboards.files import DEPLOY_DASHBOARDS
        from dashboards.files import export as do_export

        written = do_export(args.out or DEPLOY_DASHBOARDS)
        print(f"{len(written)} dashboards written to {args.out or DEPLOY_DASHBOARDS}")
        return 0

    export.set_defaults(run=run_export)

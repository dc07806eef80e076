"""The `pilotlab` command: one entry point, subcommands per service.

Bad arguments and unreachable services end with one line on stderr and exit code 2; only a bug
shows a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from pydantic import ValidationError

from pilotlab import __version__
from pilotlab.errors import PilotlabError, answer_for
from pilotlab.settings import Settings

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"pilotlab: {message} (see `{self.prog} --help`)\n")


def _service_flags(parser: argparse.ArgumentParser, *, database: bool = True, mqtt: bool = False) -> None:
    if database:
        parser.add_argument("--database-url", help="PostgreSQL URL (env PILOTLAB_DATABASE_URL)")
    if mqtt:
        parser.add_argument("--mqtt-url", help="broker URL mqtt://host:port (env PILOTLAB_MQTT_URL)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pilotlab", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"pilotlab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    demo = commands.add_parser("demo", help="run the whole stack on embedded defaults (Ctrl-C stops it)")
    _service_flags(demo, mqtt=True)
    demo.add_argument("--api-port", type=int, help="API port (default 8000)")
    demo.add_argument("--devices-per-kind", type=int, default=3, help="simulated devices of each kind")
    demo.add_argument("--broker", choices=["auto", "mosquitto", "iotcore"], default="auto",
                      help="embedded broker when no --mqtt-url: mosquitto if on PATH, else iotcore")
    demo.add_argument("--data-dir", help="where embedded services keep their state (default .pilotlab)")
    demo.set_defaults(run=_demo)

    ingest = commands.add_parser("ingest", help="run one ingest worker (MQTT → PostgreSQL)")
    _service_flags(ingest, mqtt=True)
    ingest.add_argument("--worker-id", help="stable id of this worker within the share group")
    ingest.add_argument("--share-group", help="MQTT v5 shared-subscription group name")
    ingest.add_argument("--drain", action="store_true",
                        help="scale-down: take what the broker holds for this worker id, store it, "
                             "then end the session and exit")
    ingest.set_defaults(run=_ingest)

    api = commands.add_parser("api", help="serve the HTTP API")
    _service_flags(api)
    api.add_argument("--host", help="bind address (default 127.0.0.1)")
    api.add_argument("--port", type=int, help="port (default 8000)")
    api.set_defaults(run=_api)

    sim = commands.add_parser("simulate", help="publish a simulated fleet of a registered pilot")
    _service_flags(sim, mqtt=True)
    sim.add_argument("--pilot", required=True, help="pilot id whose registered devices to simulate")
    sim.add_argument("--speed", type=float, default=1.0,
                     help="time compression: 10 makes every device report 10× as often")
    sim.add_argument("--duration", type=float, help="stop after this many seconds")
    sim.add_argument("--seed", type=int, default=1, help="random seed")
    sim.add_argument("--device", action="append", default=[], metavar="ID",
                     help="simulate only this device of the pilot (repeat for more)")
    sim.add_argument("--misbehave", choices=_misbehaviours(), metavar="MODE",
                     help="make every simulated device non-conformant on purpose, to see a conformance check fail: "
                          + ", ".join(_misbehaviours()))
    sim.add_argument("--omit", metavar="MEASUREMENT", help="with --misbehave missing-measurement: the one left out")
    sim.set_defaults(run=_simulate)

    db = commands.add_parser("db", help="database tasks")
    db_commands = db.add_subparsers(dest="db_command", metavar="TASK", parser_class=_Parser, required=True)
    migrate = db_commands.add_parser("migrate", help="create or update the schema (detects TimescaleDB)")
    _service_flags(migrate)
    migrate.set_defaults(run=_migrate)
    seed = db_commands.add_parser("seed-demo", help="register the demo firm, pilot and devices")
    _service_flags(seed)
    seed.add_argument("--devices-per-kind", type=int, default=3)
    seed.set_defaults(run=_seed_demo)

    contract = commands.add_parser("contract", help="the MQTT contract for firmware makers: JSON Schema, field table")
    contract_tasks = contract.add_subparsers(dest="contract_command", metavar="TASK", parser_class=_Parser,
                                             required=True)
    contract_tasks.add_parser("schema", help="print the JSON Schema of every payload (as in "
                                             "devices/contract-v1.schema.json)").set_defaults(run=_contract_schema)
    contract_tasks.add_parser("table", help="print the fields of every kind and channel as a Markdown table "
                                            "(as in the README)").set_defaults(run=_contract_table)

    from pilotlab.scoring_commands import add_scoring_commands  # `score` and `record`

    add_scoring_commands(commands, _service_flags, _settings)

    from dashboards.commands import add_grafana_commands  # `grafana provision` and `grafana export`

    add_grafana_commands(commands, _service_flags, _settings)

    from access.commands import add_access_commands  # `credentials`, `apikey`, `broker` (issue 6)

    add_access_commands(commands, _service_flags, _settings)

    from pilotlab.profile_commands import add_profile_commands  # `profile` (issue 14)

    add_profile_commands(commands, _service_flags, _settings)

    from pilotlab.conformance_commands import add_conformance_commands  # `conformance` (issue 17)

    add_conformance_commands(commands, _service_flags, _settings)
    from pilotlab.feedback_commands import add_feedback_commands  # `feedback purge`: residents' feedback (issue 18)

    add_feedback_commands(commands, _service_flags, _settings)
    from pilotlab.plan_commands import add_plan_commands  # `plan`: the program's rolling plan (issue 18)

    add_plan_commands(commands, _service_flags, _settings)
    return parser


def _misbehaviours() -> list[str]:
    from simulators.nonconformant import Misbehaviour

    return [m.value for m in Misbehaviour]


def _settings(args: argparse.Namespace, *, running_demo: bool = True, **mapping: str) -> Settings:
    """Settings, most specific first: the flags given, then PILOTLAB_* variables, then (unless the
    command names a database) the demo running in the data dir (pilotlab.demo_state), then defaults."""
    overrides: dict[str, Any] = {}
    for flag in ("database_url", "mqtt_url", "worker_id", "share_group", "data_dir"):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[flag] = value
    for flag, field_name in mapping.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides[field_name] = value
    settings = Settings(**overrides)
    if not running_demo or settings.database_url is not None:
        return settings
    from pilotlab.demo_state import running_demo as find_demo

    demo = find_demo(settings.data_dir)
    if demo is None:
        return settings
    print(f"pilotlab: using the demo running in {settings.data_dir} (pid {demo.pid}): its database, broker, "
          f"rubric and signing key, unless given", file=sys.stderr)
    from_demo = {name: value for name, value in demo.settings().items() if name not in settings.model_fields_set}
    return Settings(**{**overrides, **from_demo})


def _demo(args: argparse.Namespace) -> int:
    from pilotlab.demo import run_demo

    return run_demo(_settings(args, running_demo=False, api_port="api_port"), devices_per_kind=args.devices_per_kind,
                    broker=args.broker)


def _ingest(args: argparse.Namespace) -> int:
    from ingest.worker import run_worker

    return run_worker(_settings(args), drain=args.drain)


def _api(args: argparse.Namespace) -> int:
    from api.server import serve

    return serve(_settings(args, host="api_host", port="api_port"))


def _simulate(args: argparse.Namespace) -> int:
    from simulators.fleet import run_simulation
    from simulators.nonconformant import Misbehaviour

    return run_simulation(_settings(args), pilot_id=args.pilot, speed=args.speed, duration_s=args.duration,
                          seed=args.seed, device_ids=args.device,
                          misbehaviour=Misbehaviour(args.misbehave) if args.misbehave else None, omit=args.omit)


def _migrate(args: argparse.Namespace) -> int:
    from store.migrate import migrate

    report = migrate(_settings(args).require_database_url())
    applied = ", ".join(report.applied) or "none (schema up to date)"
    print(f"migrations applied: {applied}")
    print(report.capabilities.note)
    return 0


def _seed_demo(args: argparse.Namespace) -> int:
    from simulators.seed import seed_demo_pilot

    pilot = seed_demo_pilot(_settings(args).require_database_url(), devices_per_kind=args.devices_per_kind)
    print(f"demo pilot {pilot.pilot_id} with {len(pilot.device_ids)} devices")
    return 0


def _contract_schema(args: argparse.Namespace) -> int:
    from devices.contract_schema import schema_text

    sys.stdout.write(schema_text())
    return 0


def _contract_table(args: argparse.Namespace) -> int:
    from devices.contract_schema import field_table

    sys.stdout.write(field_table())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
    if run is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return run(args)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        print(f"pilotlab: invalid setting {where}: {err['msg']}", file=sys.stderr)
        return EXIT_USAGE
    except PilotlabError as exc:
        print(f"pilotlab: {exc}", file=sys.stderr)
        return answer_for(exc).exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

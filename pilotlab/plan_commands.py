"""`pilotlab plan`: the program's rolling plan, set per year and shown beside what pilots achieved.

    pilotlab plan set YEAR --pilots N --devices N --stage4-firms N [--availability KIND=SHARE …] [--note TEXT]
                                          set (replace) the year's plan, as PUT /plans/{year}
    pilotlab plan show YEAR [--csv]       the plan beside what the year's pilots achieved, as GET
                                          /plans/{year}[/csv]; needs the records' key (stage 4 counts
                                          signed records that verify)
    pilotlab plan list                    the years planned

What "achieved" means: api.program_plan and README, *Rolling plan*. Errors are one line, exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from pilotlab.settings import Settings


def add_plan_commands(commands: Any, service_flags: Callable[..., None], settings: Callable[..., Settings]) -> None:
    plan = commands.add_parser("plan", help="the program's rolling plan per year, beside what pilots achieved")
    tasks = plan.add_subparsers(dest="plan_command", metavar="TASK", parser_class=commands._parser_class, required=True)
    put = tasks.add_parser("set", help="set (replace) a year's plan")
    service_flags(put)
    put.add_argument("year", type=_year)
    put.add_argument("--pilots", type=_count, required=True, help="pilots expected to run in the year")
    put.add_argument("--devices", type=_count, required=True, help="devices expected to be scored in them")
    put.add_argument("--stage4-firms", type=_count, required=True, help="firms expected to reach stage 4")
    put.add_argument("--availability", type=_target, action="append", default=[], metavar="KIND=SHARE",
                     help="target availability of a device kind, a share 0-1 (repeat per kind): env_sensor=0.95")
    put.add_argument("--note", default="", help="a note kept with the plan")
    put.set_defaults(run=lambda args: _set(args, settings(args)))
    show = tasks.add_parser("show", help="a year's plan beside what its pilots achieved")
    service_flags(show)
    show.add_argument("year", type=_year)
    show.add_argument("--csv", action="store_true", help="print CSV (as GET /plans/{year}/csv)")
    show.add_argument("--rubric", help="rubric YAML file of the stored scores (default: the bundled file of their version)")
    show.add_argument("--signing-key", help="the records' Ed25519 private key PEM (env PILOTLAB_SIGNING_KEY)")
    show.set_defaults(run=lambda args: _show(args, settings(args, rubric="rubric", signing_key="signing_key")))
    listing = tasks.add_parser("list", help="the years planned")
    service_flags(listing)
    listing.set_defaults(run=lambda args: _list(settings(args)))


def _year(text: str) -> int:
    if not text.isdigit() or not 2000 <= int(text) <= 2100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a year from 2000 to 2100")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 0")
    return int(text)


def _target(text: str) -> tuple[str, float]:
    from devices.kinds import DeviceKind

    kind, _, share = text.partition("=")
    kinds = [k.value for k in DeviceKind]
    try:
        value = float(share)
    except ValueError:
        value = -1.0
    if kind not in kinds or not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not KIND=SHARE with KIND one of {', '.join(kinds)} and SHARE "
                                         "from 0 to 1 (env_sensor=0.95)")
    return kind, value


def _set(args: argparse.Namespace, settings: Settings) -> int:
    from store import program_plans
    from store.connection import connect

    with connect(settings.require_database_url(), autocommit=True) as conn:
        plan = program_plans.put(conn, args.year, pilots=args.pilots, devices=args.devices,
                                 stage4_firms=args.stage4_firms, availability=dict(args.availability), note=args.note,
                                 updated_by="pilotlab plan set")
    targets = ", ".join(f"{k} {v:.1%}" for k, v in plan.availability.items()) or "no availability targets"
    print(f"plan {plan.year}: {plan.pilots} pilots, {plan.devices} devices, {plan.stage4_firms} firms at stage 4; {targets}")
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    from api.program_plan import as_csv, compare, rubric_chooser
    from scoring.rubric import load_rubric
    from scoring.signing import load_private_key
    from store.connection import connect

    public = load_private_key(settings.signing_key).public_key()
    choose = rubric_chooser(load_rubric(settings.rubric).rubric)
    with connect(settings.require_database_url(), autocommit=True) as conn:
        comparison = compare(conn, args.year, public, choose)
    if args.csv:
        sys.stdout.write(as_csv(comparison))
        return 0
    if comparison.plan is None:
        print(f"no plan for {args.year}: what its pilots achieved")
    for r in comparison.rows:
        share = r.measure == "availability"
        shown = [("–" if v is None else f"{v:.1%}" if share else f"{v:g}") for v in (r.planned, r.achieved)]
        met = "" if r.met is None else ("met" if r.met else "NOT MET")
        print(f"{r.measure + (' ' + r.kind if r.kind else ''):<32} planned {shown[0]:>8}  achieved {shown[1]:>8}  {met}")
    return 0


def _list(settings: Settings) -> int:
    from store import program_plans
    from store.connection import connect

    with connect(settings.require_database_url(), autocommit=True) as conn:
        for plan in program_plans.all_plans(conn):
            print(f"{plan.year}  {plan.pilots} pilots, {plan.devices} devices, {plan.stage4_firms} firms at stage 4")
    return 0

"""`pilotlab profile`: device profiles in the registry, straight on the database (the operator's tool).

    pilotlab profile create FILE [--id ID] [--firm FIRM]   version 1 from a JSON or YAML definition
    pilotlab profile list [--vendor V] [--kind K] [--firm FIRM] [--json]
    pilotlab profile show ID [--version N]                 the definition as stored (JSON)
    pilotlab profile update ID FILE                        the file becomes the next version

FILE holds the definition's fields (README "Device profiles"); `id` and `firm_id` may be in it
too. Without a firm a profile is public: every firm's devices may use it. A definition that breaks
a rule, or whose JavaScript codec does not load (a syntax error, no entry point), is one line naming
every problem, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from devices.contract import ID_PATTERN
from pilotlab.errors import InvalidRequest
from pilotlab.settings import Settings


def add_profile_commands(commands: Any, service_flags: Callable[..., None],
                         settings: Callable[..., Settings]) -> None:
    profile = commands.add_parser("profile", help="device profiles: create, list, show, update (versions)")
    tasks = profile.add_subparsers(dest="profile_command", metavar="TASK", parser_class=commands._parser_class,
                                   required=True)
    create = tasks.add_parser("create", help="create a device profile (version 1) from a JSON or YAML file")
    service_flags(create)
    create.add_argument("file", help="the definition, JSON or YAML")
    create.add_argument("--id", help="the profile's id (default: the file's `id`)")
    create.add_argument("--firm", help="the owning firm (default: the file's `firm_id`; none: a public profile)")
    create.set_defaults(run=lambda args: _create(args, settings(args)))

    listing = tasks.add_parser("list", help="list device profiles (their current versions)")
    service_flags(listing)
    listing.add_argument("--vendor", help="only this vendor's (case-insensitive)")
    listing.add_argument("--kind", choices=["smart_switch", "location_tracker", "env_sensor"])
    listing.add_argument("--firm", help="the profiles this firm may use: its own and the public ones")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=lambda args: _list(args, settings(args)))

    show = tasks.add_parser("show", help="print a device profile's definition (current version, or --version)")
    service_flags(show)
    show.add_argument("id", help="profile id")
    show.add_argument("--version", type=int, help="an earlier version")
    show.set_defaults(run=lambda args: _show(args, settings(args)))

    update = tasks.add_parser("update", help="store a changed definition as the profile's next version")
    service_flags(update)
    update.add_argument("id", help="profile id")
    update.add_argument("file", help="the whole new definition, JSON or YAML")
    update.set_defaults(run=lambda args: _update(args, settings(args)))


def _read(path: str) -> dict[str, Any]:
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidRequest(f"{path} is not valid {'JSON' if path.endswith('.json') else 'YAML'}: "
                             f"{str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"{path} must hold one object (the profile's fields)")
    return data


def _definition(path: str, data: dict[str, Any], settings: Settings) -> Any:
    """The validated definition, its JavaScript codecs loaded under ingest's limits."""
    from devices.profile_codecs import check_codecs, js_codec_limits
    from devices.profiles import ProfileDefinition

    try:
        definition = ProfileDefinition.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            where = ".".join(str(p) for p in err["loc"])
            message = err["msg"].removeprefix("Value error, ")  # pydantic's prefix for a validator's own message
            problems.append(f"{where}: {message}" if where else message)
        raise InvalidRequest(f"{path}: invalid device profile: {'; '.join(problems)}") from None
    check_codecs(definition, js_codec_limits(settings), where=f"{path}: ")
    return definition


def _summary(stored: Any) -> str:
    definition = stored.definition
    owner = f"firm {stored.firm_id}" if stored.firm_id else "public"
    return (f"{stored.id} v{stored.version} ({owner}): {stored.kind}, {definition['vendor']} {definition['model']} "
            f"firmware {definition['firmware_version']}")


def _create(args: argparse.Namespace, settings: Settings) -> int:
    from store import profiles
    from store.connection import connect

    data = _read(args.file)
    profile_id = args.id or data.get("id")
    firm_id = args.firm or data.get("firm_id")
    if not isinstance(profile_id, str) or not profile_id:
        raise InvalidRequest(f"give the profile an id: --id ID, or `id` in {args.file}")
    if not re.fullmatch(ID_PATTERN, profile_id):  # the registry's id rule, as the API checks it
        raise InvalidRequest(f"profile id {profile_id!r}: 1-64 characters of A-Z a-z 0-9 _ . -")
    definition = _definition(args.file, {k: v for k, v in data.items() if k not in ("id", "firm_id")}, settings)
    with connect(settings.require_database_url(), autocommit=True) as conn:
        stored = profiles.create(conn, profile_id, firm_id, definition)
    print(f"created {_summary(stored)}")
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from store import profiles
    from store.connection import connect

    with connect(settings.require_database_url(), autocommit=True) as conn:
        rows = profiles.list_profiles(conn, usable_by_firm=args.firm, vendor=args.vendor, kind=args.kind, limit=1000)
    if args.json:
        print(json.dumps([{"id": r.id, "firm_id": r.firm_id, "kind": r.kind, "current_version": r.current_version,
                           "vendor": r.definition["vendor"], "model": r.definition["model"],
                           "firmware_version": r.definition["firmware_version"]} for r in rows], indent=2))
    else:
        for row in rows:
            print(_summary(row))
        if not rows:
            print("no device profiles", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    from store import profiles
    from store.connection import connect

    with connect(settings.require_database_url(), autocommit=True) as conn:
        stored = profiles.get(conn, args.id, args.version)
        versions = [v.version for v in profiles.versions(conn, args.id)]
    print(json.dumps({"id": stored.id, "firm_id": stored.firm_id, "kind": stored.kind, "version": stored.version,
                      "current_version": stored.current_version, "versions": versions,
                      "version_created_at": stored.version_created_at.isoformat(),
                      "definition": stored.definition}, indent=2, ensure_ascii=False))
    return 0


def _update(args: argparse.Namespace, settings: Settings) -> int:
    from store import profiles
    from store.connection import connect

    data = _read(args.file)
    if data.get("id", args.id) != args.id:
        raise InvalidRequest(f"{args.file} is for profile {data['id']!r}, not {args.id!r}")
    definition = _definition(args.file, {k: v for k, v in data.items() if k not in ("id", "firm_id")}, settings)
    with connect(settings.require_database_url(), autocommit=True) as conn:
        current = profiles.get(conn, args.id)
        if data.get("firm_id", current.firm_id) != current.firm_id:
            raise InvalidRequest(f"{args.file} names firm {data['firm_id']!r}; profile {args.id!r} belongs to "
                                 f"{current.firm_id or 'nobody (public)'} and keeps its owner")
        stored = profiles.new_version(conn, args.id, definition)
    print(f"updated {_summary(stored)}")
    return 0

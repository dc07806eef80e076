"""`pilotlab credentials`, `pilotlab apikey` and `pilotlab broker`: access control from the shell.

    pilotlab credentials issue|rotate|revoke ID [--gateway | --service ingest|simulator|network_server|api]
    pilotlab apikey create --role ROLE [--firm FIRM] [--pilot PILOT ...] [--name TEXT]
    pilotlab apikey list | revoke KEY_ID
    pilotlab broker worker-account --worker-id N [--share-group G]   # an ingest worker's account
    pilotlab broker sync                      # the broker's accounts and ACLs from the registry
    pilotlab broker restore-file PATH         # the plugin's config file, after the broker lost its state

Every account connects with its username as MQTT client id and no other; a worker's username is
its client id `<share group>-<worker id>`. A secret is printed once, on stdout, and nowhere else. Broker changes are pushed at once when
PILOTLAB_BROKER_ADMIN_USERNAME / _PASSWORD are set; otherwise `pilotlab broker sync` later.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from access import api_keys, credentials, sync
from access.credentials import AccountKind
from access.policy import ApiRole
from pilotlab.errors import ConfigError
from pilotlab.settings import Settings
from store.connection import connect


def add_access_commands(commands: Any, service_flags: Callable[..., None],
                        settings: Callable[..., Settings]) -> None:
    creds = commands.add_parser("credentials", help="broker credentials of devices, gateways and services")
    tasks = creds.add_subparsers(dest="credentials_command", metavar="TASK", parser_class=commands._parser_class,
                                 required=True)
    for task, text in (("issue", "issue credentials (the secret is printed once)"),
                       ("rotate", "replace the secret (the old one stops working)"),
                       ("revoke", "revoke the account (it is disconnected)")):
        sub = tasks.add_parser(task, help=text)
        service_flags(sub, mqtt=True)
        sub.add_argument("id", help="device id (username), or gateway / service account name")
        kind = sub.add_mutually_exclusive_group()
        kind.add_argument("--gateway", action="store_true", help="ID is a gateway")
        kind.add_argument("--service", choices=list(credentials.SERVICE_KINDS), help="ID is a service account of this kind")
        if task != "revoke":
            sub.add_argument("--pilot", help="with --service simulator: the only pilot it may publish for")
        sub.set_defaults(run=lambda args, task=task: _credentials(args, task, settings(args)))

    apikey = commands.add_parser("apikey", help="API keys: create (printed once), list, revoke")
    keys = apikey.add_subparsers(dest="apikey_command", metavar="TASK", parser_class=commands._parser_class, required=True)
    create = keys.add_parser("create", help="create an API key")
    service_flags(create)
    create.add_argument("--role", required=True, choices=[r.value for r in ApiRole])
    create.add_argument("--firm", help="firm keys: the firm whose pilots it reads")
    create.add_argument("--pilot", action="append", default=[], help="pilot_manager keys: a pilot it manages (repeat)")
    create.add_argument("--name", default="", help="what the key is for")
    create.set_defaults(run=lambda args: _apikey_create(args, settings(args)))
    listing = keys.add_parser("list", help="list keys (never their secrets)")
    service_flags(listing)
    listing.set_defaults(run=lambda args: _apikey_list(settings(args)))
    revoke = keys.add_parser("revoke", help="revoke a key by its id")
    service_flags(revoke)
    revoke.add_argument("key_id")
    revoke.set_defaults(run=lambda args: _apikey_revoke(args, settings(args)))

    broker = commands.add_parser("broker", help="the broker's dynamic-security state")
    btasks = broker.add_subparsers(dest="broker_command", metavar="TASK", parser_class=commands._parser_class, required=True)
    worker = btasks.add_parser("worker-account", help="issue or rotate an ingest worker's broker account "
                                                      "(username = client id = <share group>-<worker id>)")
    service_flags(worker, mqtt=True)
    worker.add_argument("--worker-id", required=True, help="the worker's stable id (PILOTLAB_WORKER_ID)")
    worker.add_argument("--share-group", help="its share group (PILOTLAB_SHARE_GROUP, default pilotlab-ingest)")
    worker.set_defaults(run=lambda args: _worker_account(settings(args)))
    sync_cmd = btasks.add_parser("sync", help="make the broker's accounts and ACLs match the registry")
    service_flags(sync_cmd, mqtt=True)
    sync_cmd.set_defaults(run=lambda args: _broker_sync(settings(args)))
    restore = btasks.add_parser("restore-file", help="write the dynamic-security config file from the registry "
                                                     "(start the broker on it, then `broker sync`)")
    service_flags(restore)
    restore.add_argument("path", help="the plugin's plugin_opt_config_file")
    restore.set_defaults(run=lambda args: _broker_restore(args, settings(args)))


def _kind(args: argparse.Namespace) -> AccountKind:
    if args.gateway:
        return "gateway"
    return cast(AccountKind, args.service or "device")


def _credentials(args: argparse.Namespace, task: str, settings: Settings) -> int:
    with connect(settings.require_database_url(), autocommit=True) as conn:
        if task == "revoke":
            credentials.revoke(conn, args.id, "revoked from the command line")
            report = sync.push(conn, settings)
            print(f"revoked {args.id}{_pushed(report)}")
            return 0
        if task == "rotate":
            credentials.get_account(conn, args.id)
        issued = credentials.issue(conn, _kind(args), args.id, pilot_id=getattr(args, "pilot", None))
        report = sync.push(conn, settings, {args.id: issued.secret})
    print(f"username {args.id}\npassword {issued.secret}\n(shown once: pilotlab keeps only a hash){_pushed(report)}")
    return 0


def _pushed(report: sync.SyncReport | None) -> str:
    if report is None:
        return "\nbroker not told (no PILOTLAB_BROKER_ADMIN_USERNAME): run `pilotlab broker sync` with it set"
    return f"\nbroker: {report.summary()}"


def _apikey_create(args: argparse.Namespace, settings: Settings) -> int:
    with connect(settings.require_database_url(), autocommit=True) as conn:
        issued = api_keys.create(conn, args.role, firm_id=args.firm, pilot_ids=args.pilot, name=args.name)
    print(f"{issued.token}\n(key id {issued.key.id}, role {issued.key.role}; shown once: pilotlab keeps only a hash)")
    return 0


def _apikey_list(settings: Settings) -> int:
    with connect(settings.require_database_url(), autocommit=True) as conn:
        for key in api_keys.list_keys(conn):
            scope = key.firm_id or ",".join(key.pilot_ids) or "-"
            state = "revoked" if key.revoked_at else "active"
            print(f"{key.id}  {key.role:<13} {scope:<24} {state:<8} {key.name}")
    return 0


def _apikey_revoke(args: argparse.Namespace, settings: Settings) -> int:
    with connect(settings.require_database_url(), autocommit=True) as conn:
        api_keys.revoke(conn, args.key_id)
    print(f"revoked API key {args.key_id}")
    return 0


def _worker_account(settings: Settings) -> int:
    with connect(settings.require_database_url(), autocommit=True) as conn:
        issued = credentials.issue_worker(conn, settings)
        report = sync.push(conn, settings, {i.account.username: i.secret for i in issued})
    username, secret = issued[0].account.username, issued[0].secret
    also = [i.account.username for i in issued[1:]]
    print(f"username {username}\npassword {secret}\n(shown once: pilotlab keeps only a hash)")
    if also:
        print(f"the same password for its LPWA sources on this broker: {' '.join(also)}")
    print(f"worker settings: PILOTLAB_WORKER_ID={settings.worker_id} PILOTLAB_SHARE_GROUP={settings.share_group} "
          f"PILOTLAB_MQTT_USERNAME={username} PILOTLAB_MQTT_PASSWORD=<the password>{_pushed(report)}")
    return 0


def _broker_sync(settings: Settings) -> int:
    dynsec = sync.require_admin_client(settings)
    with connect(settings.require_database_url(), autocommit=True) as conn, dynsec:
        report = sync.sync(conn, dynsec)
    print(f"broker: {report.summary()}")
    if report.unbound:
        print(f"accounts pilotlab did not create, bound to no client id (they can connect as any client, "
              f"an ingest worker's too): {' '.join(report.unbound)}", file=sys.stderr)
    if report.missing:
        print(f"not on the broker and not restorable over $CONTROL (no secret at hand): {' '.join(report.missing)}\n"
              "write the plugin's file with `pilotlab broker restore-file` and restart the broker, or rotate them",
              file=sys.stderr)
        return 1
    return 0


def _broker_restore(args: argparse.Namespace, settings: Settings) -> int:
    if settings.broker_admin_username is None or settings.broker_admin_password is None:
        raise ConfigError("the restore file needs the admin account: set PILOTLAB_BROKER_ADMIN_USERNAME and _PASSWORD")
    with connect(settings.require_database_url(), autocommit=True) as conn:
        count = sync.write_restore_config(conn, Path(args.path), settings.broker_admin_username,
                                          settings.broker_admin_password.get_secret_value())
    print(f"wrote {args.path}: the admin account and {count} active accounts (password hashes only)")
    return 0

"""Keep the broker's dynamic-security state in step with the registry.

`sync` reads what the plugin holds (listClients, listRoles, both verbose) and sends only the
commands that make its managed part equal to `access.acl.plan`: create roles and add or remove
their ACLs, create clients, set their roles and client ids, enable them, delete the clients and
roles of revoked or deleted accounts (deleting a client also disconnects it). Accounts and roles
pilotlab did not create are never touched. Running it twice sends nothing the second time.

Client ids: every managed client gets `clientid` = its username, so the plugin refuses it any
other client id (CONNACK "Not authorized") before the broker looks for a session to take over.
Binding a client that had none disconnects it. An account without a client id may connect with
any, including an ingest worker's: the sync lists such accounts it did not create in
`SyncReport.unbound` (the admin account it runs as is not listed).

Every command stays small (a role's ACLs go in chunks of `ACL_CHUNK`): the broker's
max_packet_size also limits $CONTROL messages, and a gateway with hundreds of attached devices
has a thousand ACLs.

A client can be created over `$CONTROL` only with its plaintext password, which pilotlab has
only at the moment it issues one (`secrets`). If the broker lost its state, its accounts come
back from the registry's hashes through the plugin's own config file: `restore_config` writes the
complete file (admin account, roles, every active account with its hash); start the broker on it
and run `sync`. Accounts the broker lacks and the sync cannot create are listed in
`SyncReport.missing`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from access import acl, credentials
from access.dynsec import DynsecClient
from pilotlab.errors import ConfigError
from pilotlab.settings import Settings

ACL_CHUNK = 16  # ACLs per createRole; the rest follow one addRoleACL each (~0.2 KiB a command)

# Deny by default; receiving is governed by what a client may subscribe to.
DEFAULT_ACL_ACCESS = {"publishClientSend": False, "publishClientReceive": True, "subscribe": False, "unsubscribe": True}


@dataclass
class SyncReport:
    created_roles: list[str] = field(default_factory=list)
    changed_roles: list[str] = field(default_factory=list)
    deleted_roles: list[str] = field(default_factory=list)
    created_clients: list[str] = field(default_factory=list)
    changed_clients: list[str] = field(default_factory=list)
    passwords_set: list[str] = field(default_factory=list)
    deleted_clients: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # on the registry, not on the broker, no secret at hand
    unbound: list[str] = field(default_factory=list)  # not pilotlab's, not the admin, free to pick any client id

    @property
    def changes(self) -> int:
        return sum(len(v) for k, v in vars(self).items() if k not in ("missing", "unbound"))

    def summary(self) -> str:
        parts = [f"{len(v)} {k.replace('_', ' ')}" for k, v in vars(self).items() if v]
        return ", ".join(parts) or "broker already in step with the registry"


def _acl_key(entry: Mapping[str, Any]) -> tuple[str, str, bool, int]:
    return (str(entry["acltype"]), str(entry["topic"]), bool(entry.get("allow", False)), int(entry.get("priority", 0)))


def _add_acl(rolename: str, key: tuple[str, str, bool, int]) -> dict[str, Any]:
    acltype, topic, allow, priority = key
    return {"command": "addRoleACL", "rolename": rolename, "acltype": acltype, "topic": topic,
            "allow": allow, "priority": priority}


def _role_commands(name: str, wanted: list[dict[str, Any]], present: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Create the role, or change its ACLs one by one (removals first: a detached device's rights
    go before anything is added). The plugin keys an ACL by type and topic."""
    if present is None:
        head, rest = wanted[:ACL_CHUNK], wanted[ACL_CHUNK:]
        return ([{"command": "createRole", "rolename": name, "textname": acl.MANAGED, "acls": head}]
                + [_add_acl(name, _acl_key(a)) for a in rest])
    have = {_acl_key(a) for a in present.get("acls", [])}
    want = {_acl_key(a) for a in wanted}
    stale, new = sorted(have - want), sorted(want - have)
    return ([{"command": "removeRoleACL", "rolename": name, "acltype": t, "topic": topic} for t, topic, _, _ in stale]
            + [_add_acl(name, key) for key in new])


def sync(conn: psycopg.Connection, client: DynsecClient, secrets: Mapping[str, str] | None = None) -> SyncReport:
    """Bring the broker's managed roles and clients in line with the registry (see module doc)."""
    secrets = secrets or {}
    desired = acl.plan(conn)
    report = SyncReport()
    roles = {r["rolename"]: r for r in client.list_roles() if str(r.get("rolename", "")).startswith(acl.ROLE_PREFIX)}
    clients = {c["username"]: c for c in client.list_clients()}
    managed = {u: c for u, c in clients.items() if c.get("textname") == acl.MANAGED}

    commands: list[dict[str, Any]] = [{"command": "setDefaultACLAccess", "acls": [
        {"acltype": k, "allow": v} for k, v in DEFAULT_ACL_ACCESS.items()]}]
    for name, role in desired.roles.items():
        changes = _role_commands(name, [a.as_json() for a in role.acls], roles.get(name))
        commands += changes
        if name not in roles:
            report.created_roles.append(name)
        elif changes:
            report.changed_roles.append(name)

    for username, account in desired.accounts.items():
        role_list = [{"rolename": r, "priority": 0} for r in account.roles]
        secret = secrets.get(username)
        present = clients.get(username)
        if present is None:
            if secret is None:
                report.missing.append(username)
                continue
            commands.append({"command": "createClient", "username": username, "password": secret,
                             "clientid": account.client_id, "textname": acl.MANAGED,
                             "textdescription": account.kind, "roles": role_list})
            report.created_clients.append(username)
            continue
        if secret is not None:
            commands.append({"command": "setClientPassword", "username": username, "password": secret})
            report.passwords_set.append(username)
        have = sorted(r.get("rolename", "") for r in present.get("roles", []))
        if (have != sorted(account.roles) or present.get("textname") != acl.MANAGED
                or present.get("clientid") != account.client_id):
            commands.append({"command": "modifyClient", "username": username, "clientid": account.client_id,
                             "textname": acl.MANAGED, "textdescription": account.kind, "roles": role_list})
            report.changed_clients.append(username)
        if present.get("disabled"):
            commands.append({"command": "enableClient", "username": username})
            if username not in report.changed_clients:
                report.changed_clients.append(username)

    for username in sorted(set(managed) - set(desired.accounts)):
        commands.append({"command": "deleteClient", "username": username})
        report.deleted_clients.append(username)
    for name in sorted(set(roles) - set(desired.roles)):
        commands.append({"command": "deleteRole", "rolename": name})
        report.deleted_roles.append(name)
    report.unbound = sorted(u for u, c in clients.items()
                            if u not in managed and u != client.username and not c.get("clientid"))

    client.run(commands)
    return report


def admin_role() -> dict[str, Any]:
    """The plugin's admin role, as `mosquitto_ctrl dynsec init` writes it."""
    control = "$CONTROL/dynamic-security/#"
    acls = [("publishClientSend", control), ("publishClientReceive", control), ("subscribePattern", control),
            ("publishClientReceive", "$SYS/#"), ("subscribePattern", "$SYS/#"),
            ("publishClientReceive", "#"), ("subscribePattern", "#"), ("unsubscribePattern", "#")]
    return {"rolename": "admin", "acls": [{"acltype": t, "topic": topic, "allow": True} for t, topic in acls]}


def restore_config(conn: psycopg.Connection, admin_username: str, admin_password: str) -> dict[str, Any]:
    """The plugin's complete config file for the registry: admin, roles, every active account."""
    desired = acl.plan(conn)
    hashes = credentials.password_hashes(conn)
    admin_hash = credentials.hash_secret(admin_password)
    clients: list[dict[str, Any]] = [{"username": admin_username, "textname": "Dynsec admin user",
                                      **admin_hash.dynsec_fields(), "roles": [{"rolename": "admin"}]}]
    for username, account in desired.accounts.items():
        clients.append({"username": username, "clientid": account.client_id, "textname": acl.MANAGED,
                        "textdescription": account.kind, **hashes[username].dynsec_fields(),
                        "roles": [{"rolename": r, "priority": 0} for r in account.roles]})
    roles = [admin_role()] + [{"rolename": r.name, "textname": acl.MANAGED, "acls": [a.as_json() for a in r.acls]}
                              for r in desired.roles.values()]
    return {"clients": clients, "roles": roles, "groups": [], "defaultACLAccess": DEFAULT_ACL_ACCESS}


def write_restore_config(conn: psycopg.Connection, path: Path, admin_username: str, admin_password: str) -> int:
    """Write `restore_config` to `path` (mode 0600: it holds password hashes); returns the account count."""
    config = restore_config(conn, admin_username, admin_password)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(config, out, indent=1)
    tmp.replace(path)
    return len(config["clients"]) - 1


def admin_client(settings: Settings) -> DynsecClient | None:
    """A dynsec client for the configured broker admin account; None when none is configured."""
    if settings.broker_admin_username is None or settings.broker_admin_password is None:
        return None
    return DynsecClient(settings.mqtt, settings.broker_admin_username, settings.broker_admin_password.get_secret_value())


def require_admin_client(settings: Settings) -> DynsecClient:
    found = admin_client(settings)
    if found is None:
        raise ConfigError("no broker admin account: set PILOTLAB_BROKER_ADMIN_USERNAME and PILOTLAB_BROKER_ADMIN_PASSWORD")
    return found


def push(conn: psycopg.Connection, settings: Settings, secrets: Mapping[str, str] | None = None) -> SyncReport | None:
    """Sync now if a broker admin is configured (issue, rotate, revoke, decommission); else None."""
    dynsec = admin_client(settings)
    if dynsec is None:
        return None
    with dynsec:
        return sync(conn, dynsec, secrets)


def revoke_on_decommission(conn: psycopg.Connection, settings: Settings, username: str) -> None:
    """A decommissioned device or gateway loses its broker account (if it had one), at once."""
    if credentials.revoke_if_any(conn, username, "decommissioned") is not None:
        push(conn, settings)

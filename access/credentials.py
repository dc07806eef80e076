"""Broker accounts: random secrets, their hashes, and the `broker_account` rows.

Hashing: PBKDF2-HMAC-SHA512 from the standard library (hashlib), with a 12-byte salt and a
64-byte output: exactly what Mosquitto's dynamic-security plugin computes and stores when it is
given a plaintext password (checked against `mosquitto_ctrl dynsec init` output). Keeping the
registry's hash in the broker's own format is what lets `access.sync.restore_config` give a
broker that lost its state every account back without knowing any secret. The secrets are 256
random bits, so the iteration count adds nothing against guessing; it is kept modest
(`ITERATIONS`) because the broker recomputes it, single-threaded, on every CONNECT.

Client ids: an account connects with its username as MQTT client id and with nothing else (the
broker is told so by access.sync). Usernames are unique, so no two accounts share a client id.
Client ids that begin with `RESERVED_PREFIX` are the platform's own (ingest workers
`pilotlab-ingest-<worker id>`, simulators, the admin's connections): a device or gateway whose id
begins so gets no account, so no firm can register its way into a worker's identity.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import psycopg
from psycopg.rows import class_row

from pilotlab.errors import ConfigError, Conflict, NotFound
from pilotlab.settings import Settings

AccountKind = Literal["device", "gateway", "ingest", "simulator", "network_server", "api"]
SERVICE_KINDS: tuple[AccountKind, ...] = ("ingest", "simulator", "network_server", "api")  # api: sends commands

ITERATIONS = 1_000
SALT_BYTES = 12  # the plugin's salt size (struct dynsec__client.pw.salt)
HASH_BYTES = 64  # SHA-512
SECRET_BYTES = 32
RESERVED_PREFIX = "pilotlab-"


@dataclass(frozen=True)
class PasswordHash:
    """A PBKDF2-HMAC-SHA512 hash as the dynamic-security plugin keeps it."""

    iterations: int
    salt: bytes
    digest: bytes

    def encode(self) -> str:
        return (f"pbkdf2-sha512${self.iterations}${base64.b64encode(self.salt).decode()}"
                f"${base64.b64encode(self.digest).decode()}")

    @classmethod
    def decode(cls, text: str) -> PasswordHash:
        scheme, iterations, salt, digest = text.split("$")
        if scheme != "pbkdf2-sha512":
            raise ValueError(f"unknown password hash scheme {scheme!r}")
        return cls(int(iterations), base64.b64decode(salt), base64.b64decode(digest))

    def dynsec_fields(self) -> dict[str, object]:
        """The `password`, `salt`, `iterations` of a client in the plugin's config file."""
        return {"password": base64.b64encode(self.digest).decode(), "salt": base64.b64encode(self.salt).decode(),
                "iterations": self.iterations}

    def matches(self, secret: str) -> bool:
        candidate = hashlib.pbkdf2_hmac("sha512", secret.encode(), self.salt, self.iterations, HASH_BYTES)
        return hmac.compare_digest(candidate, self.digest)


def new_secret() -> str:
    """A 256-bit random secret, URL- and MQTT-safe (43 characters)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> PasswordHash:
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    return PasswordHash(iterations, salt, hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations, HASH_BYTES))


@dataclass(frozen=True)
class BrokerAccount:
    """A row of `broker_account`, without its hash (nothing outside this module needs it)."""

    username: str
    kind: str
    device_id: str | None
    gateway_id: str | None
    pilot_id: str | None
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None
    revoke_reason: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class IssuedSecret:
    """What the caller shows once: the account and its plaintext secret."""

    account: BrokerAccount
    secret: str

    def __repr__(self) -> str:  # never let a secret reach a log line through repr()
        return f"IssuedSecret(username={self.account.username!r}, secret=<hidden>)"


_COLUMNS = "username, kind, device_id, gateway_id, pilot_id, created_at, rotated_at, revoked_at, revoke_reason"


def find_account(conn: psycopg.Connection, username: str) -> BrokerAccount | None:
    with conn.cursor(row_factory=class_row(BrokerAccount)) as cur:
        return cur.execute(f"SELECT {_COLUMNS} FROM broker_account WHERE username = %s", (username,)).fetchone()


def get_account(conn: psycopg.Connection, username: str) -> BrokerAccount:
    found = find_account(conn, username)
    if found is None:
        raise NotFound(f"no broker account {username!r}; issue credentials first")
    return found


def list_accounts(conn: psycopg.Connection, *, active_only: bool = False) -> list[BrokerAccount]:
    where = " WHERE revoked_at IS NULL" if active_only else ""
    with conn.cursor(row_factory=class_row(BrokerAccount)) as cur:
        return cur.execute(f"SELECT {_COLUMNS} FROM broker_account{where} ORDER BY username").fetchall()


def password_hashes(conn: psycopg.Connection) -> dict[str, PasswordHash]:
    """Hashes of every active account, for the broker's restore file only."""
    rows = conn.execute("SELECT username, password_hash FROM broker_account WHERE revoked_at IS NULL").fetchall()
    return {username: PasswordHash.decode(encoded) for username, encoded in rows}


def _owner(conn: psycopg.Connection, kind: AccountKind, username: str) -> dict[str, str | None]:
    """device_id / gateway_id of a device or gateway account, checking the registry."""
    if kind in ("device", "gateway") and username.startswith(RESERVED_PREFIX):
        raise Conflict(f"{kind} id {username!r} begins with {RESERVED_PREFIX!r}, the client-id prefix reserved "
                       "for pilotlab's own services (ingest workers): it gets no broker account")
    if kind == "device":
        row = conn.execute("SELECT decommissioned_at FROM device WHERE id = %s", (username,)).fetchone()
        if row is None:
            raise NotFound(f"no device with id {username!r}")
        if row[0] is not None:
            raise Conflict(f"device {username!r} is decommissioned: it gets no credentials")
        return {"device_id": username, "gateway_id": None}
    if kind == "gateway":
        row = conn.execute("SELECT decommissioned_at FROM gateway WHERE id = %s", (username,)).fetchone()
        if row is None:
            raise NotFound(f"no gateway with id {username!r}")
        if row[0] is not None:
            raise Conflict(f"gateway {username!r} is decommissioned: it gets no credentials")
        return {"device_id": None, "gateway_id": username}
    return {"device_id": None, "gateway_id": None}


def issue(conn: psycopg.Connection, kind: AccountKind, username: str, *, pilot_id: str | None = None,
          secret: str | None = None) -> IssuedSecret:
    """A new secret for `username`: creates the account, or rotates it (also after a revoke).

    The old secret stops working once the broker is told (access.sync). Conflict if the username
    belongs to an account of another kind, or is a device or gateway id under RESERVED_PREFIX.
    `secret`: one generated by `new_secret` for several accounts of one service (`issue_worker`)."""
    owner = _owner(conn, kind, username)
    if pilot_id is not None and kind != "simulator":
        raise Conflict("only a simulator account is scoped to a pilot")
    secret = secret or new_secret()
    encoded = hash_secret(secret).encode()
    with conn.transaction():
        existing = conn.execute("SELECT kind FROM broker_account WHERE username = %s FOR UPDATE", (username,)).fetchone()
        if existing is not None and existing[0] != kind:
            raise Conflict(f"broker username {username!r} is already a {existing[0]} account")
        if existing is None:
            conn.execute(
                "INSERT INTO broker_account (username, kind, device_id, gateway_id, pilot_id, password_hash) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (username, kind, owner["device_id"], owner["gateway_id"], pilot_id, encoded))
        else:
            conn.execute(
                "UPDATE broker_account SET password_hash = %s, rotated_at = now(), revoked_at = NULL, "
                "revoke_reason = NULL, pilot_id = coalesce(%s, pilot_id) WHERE username = %s",
                (encoded, pilot_id, username))
    return IssuedSecret(get_account(conn, username), secret)


def revoke(conn: psycopg.Connection, username: str, reason: str) -> BrokerAccount:
    """Mark the account revoked (kept for the audit trail). Idempotent: a revoked account stays so."""
    with conn.transaction():
        updated = conn.execute(
            "UPDATE broker_account SET revoked_at = coalesce(revoked_at, now()), "
            "revoke_reason = coalesce(revoke_reason, %s) WHERE username = %s RETURNING username",
            (reason, username)).fetchone()
    if updated is None:
        raise NotFound(f"no broker account {username!r}")
    return get_account(conn, username)


def revoke_if_any(conn: psycopg.Connection, username: str, reason: str) -> BrokerAccount | None:
    """Revoke on decommission: nothing to do for a device or gateway that never had credentials."""
    if find_account(conn, username) is None:
        return None
    return revoke(conn, username, reason)


def worker_usernames(settings: Settings) -> list[str]:
    """The broker accounts one ingest worker connects with, each its own client id: the worker's
    (`Settings.ingest_client_id`) and, per LPWA source on pilotlab's own broker (url unset),
    `<client id>-<source name>`. ConfigError if the worker's client id is outside RESERVED_PREFIX."""
    client_id = settings.ingest_client_id
    if not client_id.startswith(RESERVED_PREFIX):
        raise ConfigError(f"worker client id {client_id!r}: the share group must begin with {RESERVED_PREFIX!r}, "
                          "the prefix no device or gateway id may take (PILOTLAB_SHARE_GROUP)")
    return [client_id] + [f"{client_id}-{s.name}" for s in settings.network_server_sources() if s.url is None]


def issue_worker(conn: psycopg.Connection, settings: Settings) -> list[IssuedSecret]:
    """Issue (or rotate) one worker's ingest accounts (`worker_usernames`), all with one new secret:
    the worker is one principal, configured with one PILOTLAB_MQTT_PASSWORD."""
    secret = new_secret()
    with conn.transaction():
        return [issue(conn, "ingest", username, secret=secret) for username in worker_usernames(settings)]

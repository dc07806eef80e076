"""Device profiles in the registry: created, read, listed, versioned, and referenced by devices.

`device_profile` holds who owns a profile (a firm, or nobody: a public profile any firm's devices
may use), its kind (fixed for its life) and its current version; `device_profile_version` every
version's whole definition (devices.profiles.ProfileDefinition), immutable (a trigger refuses an
UPDATE). A change is a new version; older versions stay readable, because stored readings name
the version that decoded them (telemetry.profile_version).

Errors: NotFound (no such profile or version), Conflict (id taken), UnknownReference (a firm, or
a profile a device may not use), InvalidValue (a change of kind).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from devices.profiles import ProfileDefinition
from pilotlab.errors import Conflict, NotFound
from store import registry
from store.registry import InvalidValue, unknown_reference


@dataclass(frozen=True)
class StoredProfile:
    """One version of a profile, with the profile's own fields."""

    id: str
    firm_id: str | None
    kind: str
    current_version: int
    version: int
    version_created_at: datetime
    created_at: datetime
    updated_at: datetime
    definition: dict[str, Any]


@dataclass(frozen=True)
class ProfileVersionSummary:
    version: int
    created_at: datetime
    vendor: str
    model: str
    firmware_version: str


_SELECT = """
SELECT p.id, p.firm_id, p.kind, p.current_version, v.version, v.created_at AS version_created_at,
       p.created_at, p.updated_at, v.definition
FROM device_profile p JOIN device_profile_version v ON v.profile_id = p.id
"""


def _stored(definition: ProfileDefinition) -> Jsonb:
    return Jsonb(definition.model_dump(mode="json", by_alias=True, exclude_none=True))


def create(conn: psycopg.Connection, profile_id: str, firm_id: str | None, definition: ProfileDefinition) -> StoredProfile:
    """Version 1 of a new profile; `firm_id` None makes it public."""
    if firm_id is not None and registry.find(conn, registry.FIRMS, firm_id) is None:
        raise unknown_reference("firm_id", firm_id, "firm")
    try:
        with conn.transaction():
            conn.execute("INSERT INTO device_profile (id, firm_id, kind) VALUES (%s, %s, %s)",
                         (profile_id, firm_id, definition.kind.value))
            conn.execute("INSERT INTO device_profile_version (profile_id, version, definition) VALUES (%s, 1, %s)",
                         (profile_id, _stored(definition)))
    except pg_errors.UniqueViolation:
        raise Conflict(f"device profile {profile_id!r} already exists") from None
    except pg_errors.ForeignKeyViolation:  # the firm went since the check
        raise unknown_reference("firm_id", firm_id, "firm") from None
    return get(conn, profile_id)


def find(conn: psycopg.Connection, profile_id: str, version: int | None = None) -> StoredProfile | None:
    query = _SELECT + " WHERE p.id = %s AND v.version = " + ("%s" if version is not None else "p.current_version")
    params: tuple[object, ...] = (profile_id, version) if version is not None else (profile_id,)
    with conn.cursor(row_factory=class_row(StoredProfile)) as cur:
        return cur.execute(query, params).fetchone()  # type: ignore[arg-type]  # fixed text above


def get(conn: psycopg.Connection, profile_id: str, version: int | None = None) -> StoredProfile:
    """The current version, or `version`."""
    found = find(conn, profile_id, version)
    if found is None:
        if version is not None and find(conn, profile_id) is not None:
            raise NotFound(f"device profile {profile_id!r} has no version {version}")
        raise NotFound(f"no device profile with id {profile_id!r}")
    return found


def list_profiles(conn: psycopg.Connection, *, usable_by_firm: str | None = None, vendor: str | None = None,
                  kind: str | None = None, model: str | None = None, limit: int = 100,
                  offset: int = 0) -> list[StoredProfile]:
    """Current versions in id order; `usable_by_firm`: that firm's own profiles and the public ones."""
    conditions, params = ["v.version = p.current_version"], []
    if usable_by_firm is not None:
        conditions.append("(p.firm_id = %s OR p.firm_id IS NULL)")
        params.append(usable_by_firm)
    if kind is not None:
        conditions.append("p.kind = %s")
        params.append(kind)
    if vendor is not None:
        conditions.append("lower(v.definition->>'vendor') = lower(%s)")
        params.append(vendor)
    if model is not None:
        conditions.append("lower(v.definition->>'model') = lower(%s)")
        params.append(model)
    query = _SELECT + " WHERE " + " AND ".join(conditions) + " ORDER BY p.id LIMIT %s OFFSET %s"
    with conn.cursor(row_factory=class_row(StoredProfile)) as cur:
        return cur.execute(query, (*params, limit, offset)).fetchall()  # type: ignore[arg-type]


def new_version(conn: psycopg.Connection, profile_id: str, definition: ProfileDefinition) -> StoredProfile:
    """Store `definition` as the next version and make it current; the kind cannot change."""
    with conn.transaction():
        row = conn.execute("SELECT kind, current_version FROM device_profile WHERE id = %s FOR UPDATE",
                           (profile_id,)).fetchone()
        if row is None:
            raise NotFound(f"no device profile with id {profile_id!r}")
        kind, current = row
        if definition.kind.value != kind:
            raise InvalidValue(f"device profile {profile_id!r} is for a {kind}; its kind cannot change "
                               f"(its devices' readings are read by it): create a new profile instead")
        conn.execute("INSERT INTO device_profile_version (profile_id, version, definition) VALUES (%s, %s, %s)",
                     (profile_id, current + 1, _stored(definition)))
        conn.execute("UPDATE device_profile SET current_version = %s, updated_at = now() WHERE id = %s",
                     (current + 1, profile_id))
    return get(conn, profile_id)


def versions(conn: psycopg.Connection, profile_id: str) -> list[ProfileVersionSummary]:
    """Every version of a profile, oldest first."""
    get(conn, profile_id)
    with conn.cursor(row_factory=class_row(ProfileVersionSummary)) as cur:
        return cur.execute(
            "SELECT version, created_at, definition->>'vendor' AS vendor, definition->>'model' AS model, "
            "definition->>'firmware_version' AS firmware_version FROM device_profile_version "
            "WHERE profile_id = %s ORDER BY version", (profile_id,)).fetchall()


def assign(conn: psycopg.Connection, device_id: str, profile_id: str | None) -> registry.Device:
    """Make a device use a profile (None: none, contract v1 only). The profile must be public or
    its firm's, and of the device's kind; a profile the device's firm may not use is answered as
    one that does not exist."""
    with conn.transaction():
        row = conn.execute("SELECT d.kind, p.firm_id FROM device d JOIN pilot p ON p.id = d.pilot_id "
                           "WHERE d.id = %s FOR UPDATE OF d", (device_id,)).fetchone()
        if row is None:
            raise NotFound(f"no device with id {device_id!r}")
        device_kind, device_firm = row
        if profile_id is not None:
            profile = conn.execute("SELECT firm_id, kind FROM device_profile WHERE id = %s FOR SHARE",
                                   (profile_id,)).fetchone()
            if profile is None or profile[0] not in (None, device_firm):
                raise unknown_reference("profile_id", profile_id, "device profile")
            if profile[1] != device_kind:
                raise InvalidValue(f"device profile {profile_id!r} is for a {profile[1]}, device {device_id!r} "
                                   f"is a {device_kind}")
        conn.execute("UPDATE device SET profile_id = %s WHERE id = %s", (profile_id, device_id))
    return registry.get(conn, registry.DEVICES, device_id)

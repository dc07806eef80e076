"""What each scored device's profile declares, as scoring reads it (issue 14).

A device profile (devices.profiles) declares per version the measurements the device model has;
each stored reading names the version that read it (telemetry.profile_version). Scoring follows
the declaration:

- a reading is *complete* when it carries every telemetry measurement its profile version
  declares. A reading no profile version read (contract v1 on a channel the profile does not map,
  or stored before the device had its profile) is held to the device's current version. A tracker
  reporting no fix (fix_type 'none') carries its position measurements (lat, lon, altitude_m,
  accuracy_m, speed_mps) by saying it has none: the fix rate scores missing fixes. A device
  without a profile has only the contract's required fields, which every stored reading carries:
  every valid reading is complete;
- QC tests only the rubric's metrics the current version declares (all of the kind's without a
  profile);
- battery: a profile that does not declare battery_pct among its telemetry gives no battery ratio.

Declared measurements of the status channel only (rssi_dbm, uptime_s, ...; battery_pct of a
smart switch) are not telemetry: scoring reads the telemetry channel alone.

In SQL a reading's carried measurements are a bit mask over the kind's telemetry measurements
(`present_sql`), held against the mask its version requires (`required_sql`: the device's
`vmasks[profile_version]`, else its `cmask`; per-device parameters from `mask_params`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

import psycopg
from psycopg import sql

from devices.kinds import Channel, DeviceKind
from devices.profiles import measurements as kind_measurements
from scoring.rubric import Rubric

POSITION = frozenset({"lat", "lon", "altitude_m", "accuracy_m", "speed_mps"})  # absent in a no-fix report


@dataclass(frozen=True)
class Declaration:
    """A device's profile: its current version's measurements and every version's."""

    profile_id: str
    version: int
    measurements: frozenset[str]
    by_version: tuple[tuple[int, frozenset[str]], ...]


def load(conn: psycopg.Connection, device_ids: list[str]) -> dict[str, Declaration]:
    """The declaration of every device in `device_ids` that has a profile."""
    found: dict[str, Declaration] = {}
    for device_id, profile_id, current, versions, lists in conn.execute(
            "SELECT d.id, p.id, p.current_version, array_agg(v.version ORDER BY v.version), "
            "       array_agg(v.definition->'measurements' ORDER BY v.version) "
            "FROM device d JOIN device_profile p ON p.id = d.profile_id "
            "JOIN device_profile_version v ON v.profile_id = p.id "
            "WHERE d.id = ANY(%s) GROUP BY d.id, p.id, p.current_version", (device_ids,)):
        by_version = tuple((int(v), frozenset(m or ())) for v, m in zip(versions, lists, strict=True))
        found[device_id] = Declaration(profile_id, int(current), dict(by_version).get(current, frozenset()),
                                       by_version)
    return found


@cache
def telemetry_measurements(kind: str) -> tuple[str, ...]:
    """The kind's telemetry measurements (its readings' columns), in bit order."""
    return tuple(sorted(kind_measurements(DeviceKind(kind), Channel.TELEMETRY)))


def declared_telemetry(kind: str, declaration: Declaration | None) -> tuple[str, ...] | None:
    """The declared measurements a reading of `kind` can carry; None without a profile."""
    if declaration is None:
        return None
    return tuple(m for m in telemetry_measurements(kind) if m in declaration.measurements)


def declares_battery(kind: str, declaration: Declaration | None) -> bool | None:
    """Whether the profile declares battery_pct among its telemetry; None without a profile."""
    declared = declared_telemetry(kind, declaration)
    return None if declared is None else "battery_pct" in declared


def qc_metrics(rubric: Rubric, kind: str, declaration: Declaration | None) -> tuple[str, ...]:
    """The rubric's QC metrics of `kind` the device is tested on."""
    metrics = sorted({str(k): v for k, v in rubric.qc.items()}.get(kind, {}))
    if declaration is None:
        return tuple(metrics)
    return tuple(m for m in metrics if m in declaration.measurements)


def rollup_key(declaration: Declaration | None) -> str:
    """What a day summary was computed for: '' without a profile, else the profile and its current
    measurements (the QC set, and the mask of readings no version read). A reading's own version
    is immutable, so a new version that declares the same leaves every summary valid."""
    if declaration is None:
        return ""
    return f"{declaration.profile_id}:{','.join(sorted(declaration.measurements))}"


def _mask(kind: str, names: Iterable[str]) -> int:
    chosen = set(names)
    return sum(1 << bit for bit, m in enumerate(telemetry_measurements(kind)) if m in chosen)


def version_masks(kind: str, declaration: Declaration | None) -> tuple[int, tuple[int | None, ...]]:
    """The current version's mask (0 without a profile) and each version's, element v - 1 for
    version v (None for a version that does not exist)."""
    if declaration is None:
        return 0, ()
    by_version = dict(declaration.by_version)
    return (_mask(kind, declaration.measurements),
            tuple(_mask(kind, by_version[v]) if v in by_version else None for v in range(1, max(by_version, default=0) + 1)))


def mask_params(kind: str, declarations: list[Declaration | None]) -> dict[str, list[object]]:
    """Per device, in order: `cmasks` (the current version's mask, 0 without a profile) and
    `vmasks` (an int[] literal, element v the mask of version v)."""
    masks = [version_masks(kind, d) for d in declarations]
    return {"cmasks": [current for current, _ in masks],
            "vmasks": ["{" + ",".join("NULL" if m is None else str(m) for m in versions) + "}" for _, versions in masks]}


def _carried(kind: str, name: str) -> sql.Composable:
    x = sql.Identifier(name)
    if kind == DeviceKind.LOCATION_TRACKER and name in POSITION:
        return sql.SQL("({x} IS NOT NULL OR fix_type = 'none')").format(x=x)
    return sql.SQL("{x} IS NOT NULL").format(x=x)


def present_sql(kind: str) -> sql.Composable:
    """The reading's carried measurements as a bit mask (over the kind's telemetry columns)."""
    return sql.SQL("({})").format(sql.SQL(" | ").join(
        sql.SQL("CASE WHEN {c} THEN {b} ELSE 0 END").format(c=_carried(kind, m), b=sql.Literal(1 << bit))
        for bit, m in enumerate(telemetry_measurements(kind))))


def required_sql(vmasks: sql.Composable, cmask: sql.Composable) -> sql.Composable:
    """The mask a reading must carry: its version's, else the device's current version's."""
    return sql.SQL("coalesce(({v})[profile_version], {c})").format(v=vmasks, c=cmask)


# over the `present` and `required` columns
COMPLETE = sql.SQL("(present & required) = required")


def carried_sql(kind: str, valid: sql.Composable) -> sql.Composable:
    """A JSON object: per telemetry measurement of the kind, the `valid` readings carrying it
    (over a `present` column)."""
    return sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(
        sql.SQL("{m}, count(*) FILTER (WHERE {valid} AND present & {b} <> 0)").format(
            m=sql.Literal(m), valid=valid, b=sql.Literal(1 << bit))
        for bit, m in enumerate(telemetry_measurements(kind))))


def merged_carried_sql() -> sql.Composable:
    """Over summary rows with a `carried` object, grouped by device: its sums, per measurement of
    any kind (a key per measurement is cheaper than taking each object apart and regrouping)."""
    names = sorted({m for kind in DeviceKind for m in telemetry_measurements(kind)})
    return sql.SQL("jsonb_strip_nulls(jsonb_build_object({}))").format(sql.SQL(", ").join(
        sql.SQL("{m}, sum((carried->>{m})::bigint)").format(m=sql.Literal(m)) for m in names))

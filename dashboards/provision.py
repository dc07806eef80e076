"""`pilotlab grafana provision`: put the data source, a folder per pilot and the dashboards into a
running Grafana through its HTTP API. Idempotent: what already matches is left alone, so running it
twice changes nothing the second time.

Requests (all documented in Grafana's OpenAPI spec, checked in tests/dashboards/test_provision.py):
`GET/PUT /api/datasources/uid/{uid}`, `POST /api/datasources`, `GET/PUT /api/folders/{folder_uid}`,
`POST /api/folders`, `GET /api/dashboards/uid/{uid}`, `POST /api/dashboards/db`.

Why httpx and not grafana-client: every grafana-client since 4.0 depends on niquests, whose
urllib3-future replaces the `urllib3` package in the environment (a .pth hook rewrites it at each
interpreter start), and `requests` on top of that fork breaks: schemathesis failed on every request
in the project's venv. Keeping both apart needs a source build with URLLIB3_NO_OVERRIDE=1 at every
install, and grafana-client 3.x (on requests) is an unmaintained line. The eight requests above are
a few lines of httpx, which the project already uses.

The data source's `timescaledb` option comes from `store.timeseries` (what migrate detected), so
Grafana's `$__timeGroup` becomes `time_bucket` exactly where TimescaleDB is there.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg

from dashboards.catalog import DASHBOARDS
from dashboards.model import DATASOURCE_TYPE, DATASOURCE_UID, DashboardSpec, build_dashboard, dashboard_json
from pilotlab.errors import ConfigError, ServiceUnavailable
from store.connection import redact
from store.timeseries import read_capabilities

log = logging.getLogger(__name__)

GENERAL_FOLDER = ("pilotlab", "pilotlab")  # uid, title
UID_MAX = 40  # Grafana's limit for dashboard and folder uids


class GrafanaRefused(ConfigError):
    """Grafana answered, but refused: bad token, missing rights, or a request it rejects."""


@dataclass
class ProvisionReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{len(self.created)} created, {len(self.updated)} updated, "
                f"{len(self.unchanged)} unchanged")


@dataclass(frozen=True)
class Pilot:
    id: str
    name: str


def stable_uid(prefix: str, name: str) -> str:
    """`prefix-name`, or a digest of it when Grafana's 40-character limit would cut it."""
    uid = f"{prefix}-{name}"
    if len(uid) <= UID_MAX:
        return uid
    digest = hashlib.sha256(uid.encode()).hexdigest()[:12]
    return f"{uid[: UID_MAX - 13]}-{digest}"


def datasource_body(grafana_database_url: str, timescaledb: bool, uid: str = DATASOURCE_UID) -> dict[str, Any]:
    """AddDataSourceCommand / UpdateDataSourceCommand for PostgreSQL as Grafana should reach it."""
    parts = urlsplit(grafana_database_url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise ConfigError(f"Grafana's database URL {redact(grafana_database_url)} must be postgresql://user:pass@host:port/db")
    body: dict[str, Any] = {
        "uid": uid, "name": "pilotlab", "type": DATASOURCE_TYPE, "access": "proxy",
        "url": f"{parts.hostname}:{parts.port or 5432}", "user": parts.username or "",
        "isDefault": True,
        "jsonData": {"database": parts.path.lstrip("/") or "postgres", "sslmode": "disable" if parts.hostname in
                     ("localhost", "127.0.0.1") else "prefer", "timescaledb": timescaledb,
                     "postgresVersion": 1500, "timeInterval": "1m"},
    }
    if parts.password:
        body["secureJsonData"] = {"password": parts.password}
    return body


def read_pilots(database_url: str) -> tuple[list[Pilot], bool]:
    """The registered pilots and whether the database is TimescaleDB (as migrate recorded)."""
    try:
        with psycopg.connect(database_url, connect_timeout=5) as conn:
            pilots = [Pilot(i, n) for i, n in conn.execute("SELECT id, name FROM pilot ORDER BY id")]
            timescaledb = read_capabilities(conn).timescaledb
    except psycopg.errors.UndefinedTable:
        raise ConfigError("the database has no pilotlab schema: run `pilotlab db migrate` first") from None
    except psycopg.OperationalError as exc:
        raise ServiceUnavailable(f"cannot reach the database at {redact(database_url)}: "
                                 f"{str(exc).strip().splitlines()[0]}") from None
    return pilots, timescaledb


class GrafanaHttp:
    """Grafana's HTTP API, one request at a time; failures become one clear line."""

    def __init__(self, url: str, token: str | None, timeout_s: float) -> None:
        parts = urlsplit(url)
        auth = httpx.BasicAuth(parts.username, parts.password or "") if parts.username and not token else None
        base = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl().rstrip("/")
        self.url = base
        self.client = httpx.Client(base_url=f"{base}/api", timeout=timeout_s, auth=auth,
                                   headers={"Authorization": f"Bearer {token}"} if token else {})

    def close(self) -> None:
        self.client.close()

    def get(self, what: str, path: str) -> dict[str, Any] | None:
        """The JSON object at `path`, or None when Grafana answers 404."""
        return self._request(what, "GET", path, None, missing_ok=True)

    def send(self, what: str, method: str, path: str, body: dict[str, Any]) -> None:
        self._request(what, method, path, body, missing_ok=False)

    def _request(self, what: str, method: str, path: str, body: dict[str, Any] | None, *,
                 missing_ok: bool) -> dict[str, Any] | None:
        try:
            response = self.client.request(method, path, json=body)
        except httpx.HTTPError as exc:  # refused, DNS, timeout, TLS
            raise ServiceUnavailable(f"cannot reach Grafana at {self.url} to {what}: {exc or type(exc).__name__}") from None
        status = response.status_code
        if status == 404 and missing_ok:
            return None
        if status == 401:
            raise GrafanaRefused(f"Grafana at {self.url} refused the token (401) while trying to {what}: "
                                 "check PILOTLAB_GRAFANA_TOKEN")
        if status == 403:
            raise GrafanaRefused(f"the Grafana token lacks the rights to {what} (403): use a service "
                                 "account token with the Admin role")
        if status >= 500:
            raise ServiceUnavailable(f"cannot reach Grafana at {self.url} to {what}: "
                                     f"Server Error {status}: {_message(response)}")
        if status >= 400:
            raise GrafanaRefused(f"Grafana refused to {what} ({status}): {_message(response)}")
        try:
            answer = response.json() if response.content else {}
        except ValueError:
            raise ServiceUnavailable(f"Grafana at {self.url} answered {what} with something that is not JSON") from None
        return answer if isinstance(answer, dict) else {}


def _message(response: httpx.Response) -> str:
    """Grafana's `message`, else the first line of the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    text = response.text.strip()
    return text.splitlines()[0] if text else response.reason_phrase


class Provisioner:
    def __init__(self, api: GrafanaHttp) -> None:
        self.api = api
        self.report = ProvisionReport()

    def datasource(self, body: dict[str, Any]) -> None:
        uid, label = body["uid"], f"data source {body['uid']}"
        existing = self.api.get(f"read the {label}", f"/datasources/uid/{uid}")
        if existing is None:
            self.api.send(f"create the {label}", "POST", "/datasources", body)
            self.report.created.append(label)
            return
        same = all(existing.get(k) == v for k, v in body.items() if k != "secureJsonData")
        if same and "secureJsonData" not in body:
            self.report.unchanged.append(label)
            return
        # A password is write-only in Grafana: re-send it each run so a changed one takes effect.
        self.api.send(f"update the {label}", "PUT", f"/datasources/uid/{uid}", body)
        (self.report.unchanged if same else self.report.updated).append(label)

    def folder(self, uid: str, title: str) -> None:
        label = f"folder {title}"
        existing = self.api.get(f"read the {label}", f"/folders/{uid}")
        if existing is None:
            self.api.send(f"create the {label}", "POST", "/folders", {"title": title, "uid": uid})
            self.report.created.append(label)
        elif existing.get("title") != title:
            self.api.send(f"rename the {label}", "PUT", f"/folders/{uid}", {"title": title, "overwrite": True})
            self.report.updated.append(label)
        else:
            self.report.unchanged.append(label)

    def dashboard(self, body: dict[str, Any], folder_uid: str) -> None:
        uid, label = body["uid"], f"dashboard {body['title']}"
        existing = self.api.get(f"read the {label}", f"/dashboards/uid/{uid}")
        if existing is not None:
            stored = {k: v for k, v in existing.get("dashboard", {}).items() if k not in ("id", "version")}
            if stored == body and existing.get("meta", {}).get("folderUid") == folder_uid:
                self.report.unchanged.append(label)
                return
        self.api.send(f"save the {label}", "POST", "/dashboards/db",
                      {"dashboard": body, "folderUid": folder_uid, "overwrite": True, "message": "pilotlab grafana provision"})
        (self.report.updated if existing is not None else self.report.created).append(label)


def dashboards_for(pilots: Iterable[Pilot], specs: Iterable[DashboardSpec] = DASHBOARDS
                   ) -> list[tuple[str, str, dict[str, Any]]]:
    """(folder uid, folder title, dashboard JSON) for every dashboard to provision."""
    specs = list(specs)
    out = []
    for spec in specs:
        if not spec.per_pilot:
            out.append((*GENERAL_FOLDER, dashboard_json(build_dashboard(spec))))
    for pilot in pilots:
        folder_uid = stable_uid("pilotlab", pilot.id)
        for spec in specs:
            if spec.per_pilot:
                model = build_dashboard(spec, uid=stable_uid(spec.slug, pilot.id),
                                        title=f"{pilot.name} · {spec.title.split(' · ', 1)[-1]}", pilot_id=pilot.id)
                out.append((folder_uid, f"Pilot {pilot.id}", dashboard_json(model)))
    return out


def provision(grafana_url: str, token: str | None, database_url: str, grafana_database_url: str | None = None,
              *, timeout_s: float = 10.0) -> ProvisionReport:
    """Create or update pilotlab's data source, folders and dashboards in the Grafana at `grafana_url`."""
    pilots, timescaledb = read_pilots(database_url)
    body = datasource_body(grafana_database_url or database_url, timescaledb)
    api = GrafanaHttp(grafana_url, token, timeout_s)
    try:
        provisioner = Provisioner(api)
        provisioner.datasource(body)
        folders: dict[str, str] = {}
        items = dashboards_for(pilots)
        for folder_uid, title, _ in items:
            folders.setdefault(folder_uid, title)
        for folder_uid, title in folders.items():
            provisioner.folder(folder_uid, title)
        for folder_uid, _, dashboard in items:
            provisioner.dashboard(dashboard, folder_uid)
    finally:
        api.close()
    return provisioner.report

"""A tiny stand-in for Grafana's HTTP API that validates every request against Grafana's own
published OpenAPI spec (fixtures/grafana_openapi_excerpt.json, copied from grafana/grafana) and
keeps data sources, folders and dashboards in memory.

There is no Grafana package in Debian, npm or PyPI to run here, so this is what provisioning is
tested against. Requests the spec does not document (unknown path or method, a body field that is
not in the operation's schema, a wrongly typed value) are answered 400 and recorded in
`violations`, which the tests require to stay empty.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest

SPEC_PATH = Path(__file__).parent / "fixtures" / "grafana_openapi_excerpt.json"
ADMIN_TOKEN, VIEWER_TOKEN = "admin-token", "viewer-token"


class GrafanaStub:
    def __init__(self) -> None:
        self.spec: dict[str, Any] = json.loads(SPEC_PATH.read_text())
        self.openapi = OpenAPI.from_dict(self.spec)
        self.datasources: dict[str, dict[str, Any]] = {}
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.writes: list[tuple[str, str]] = []
        self.violations: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, payload = stub.handle(self.command, self.path, raw, self.headers.get("Content-Type", ""),
                                              self.headers.get("Authorization", ""))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> GrafanaStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- validation against the spec -------------------------------------------------------

    def _undocumented_fields(self, method: str, path: str, body: Any) -> list[str]:
        """Top-level body fields that the operation's request schema does not name."""
        for template, item in self.spec["paths"].items():
            parts, actual = template.strip("/").split("/"), path.strip("/").split("/")[1:]  # drop /api
            if len(parts) == len(actual) and all(p.startswith("{") or p == a for p, a in zip(parts, actual, strict=True)):
                operation = item.get(method.lower(), {})
                schema_ref = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
                name = schema_ref.get("$ref", "").rsplit("/", 1)[-1]
                known = self.spec["components"]["schemas"].get(name, {}).get("properties", {})
                return [k for k in body if k not in known] if isinstance(body, dict) else []
        return []

    def handle(self, method: str, path: str, raw: bytes, content_type: str, auth: str) -> tuple[int, Any]:
        self.requests.append((method, path))
        request = MockRequest(self.url, method.lower(), path, data=raw.decode() if raw else None,
                              content_type=content_type.split(";")[0] or "application/json")
        try:
            self.openapi.validate_request(request)
        except Exception as exc:  # every openapi-core validation error
            self.violations.append(f"{method} {path}: {exc}")
            return 400, {"message": f"not in Grafana's API spec: {exc}"}
        body = json.loads(raw) if raw else None
        if extra := self._undocumented_fields(method, path, body):
            self.violations.append(f"{method} {path}: undocumented fields {extra}")
            return 400, {"message": f"bad request data: {extra}"}
        token = auth.removeprefix("Bearer ").strip()
        if token not in (ADMIN_TOKEN, VIEWER_TOKEN):
            return 401, {"message": "invalid API key"}
        if method != "GET" and token == VIEWER_TOKEN:
            return 403, {"message": "You'll need additional permissions to perform this action."}
        if method != "GET":
            self.writes.append((method, path))
        return self._route(method, path.split("?")[0].removeprefix("/api"), body)

    # --- a minimal Grafana ------------------------------------------------------------------

    def _route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        not_found = (404, {"message": "not found"})
        if parts[0] == "datasources":
            if method == "POST":
                ds = {**body, "id": len(self.datasources) + 1, "version": 1}
                ds.pop("secureJsonData", None)
                self.datasources[body["uid"]] = ds
                return 200, {"id": ds["id"], "name": ds["name"], "message": "Datasource added", "datasource": ds}
            uid = parts[2]
            if uid not in self.datasources:
                return not_found
            if method == "PUT":
                ds = {**body, "id": self.datasources[uid]["id"], "version": self.datasources[uid]["version"] + 1}
                ds.pop("secureJsonData", None)
                self.datasources[uid] = ds
                return 200, {"id": ds["id"], "name": ds["name"], "message": "Datasource updated", "datasource": ds}
            return 200, self.datasources[uid]
        if parts[0] == "folders":
            if method == "POST":
                if body["uid"] in self.folders:
                    return 409, {"message": "a folder with the same uid already exists"}
                self.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"], "id": len(self.folders) + 1, "version": 1}
                return 200, self.folders[body["uid"]]
            folder = self.folders.get(parts[1])
            if folder is None:
                return not_found
            if method == "PUT":
                folder.update(title=body.get("title", folder["title"]), version=folder["version"] + 1)
            return 200, folder
        if parts[:2] == ["dashboards", "db"]:
            dashboard = body["dashboard"]
            if body.get("folderUid") and body["folderUid"] not in self.folders:
                return 400, {"message": "folder not found"}
            previous = self.dashboards.get(dashboard["uid"])
            version = previous["dashboard"]["version"] + 1 if previous else 1
            self.dashboards[dashboard["uid"]] = {"dashboard": {**dashboard, "id": 7, "version": version},
                                                 "meta": {"folderUid": body.get("folderUid", "")}}
            return 200, {"id": 7, "uid": dashboard["uid"], "status": "success", "version": version, "url": "/d/x"}
        if parts[:2] == ["dashboards", "uid"]:
            return (200, self.dashboards[parts[2]]) if parts[2] in self.dashboards else not_found
        return not_found

"""Request-body size limit: 413 for bodies over `Settings.api_max_body_bytes`, counted in metrics.

A pure ASGI middleware in front of everything else: a declared Content-Length over the limit is
refused before anything is read; any other body (chunked, no length) is read here, as it streams,
and refused as soon as it passes the limit, before the app has seen a byte of it. Within the limit
the app gets the whole body as one message. (Raising from inside the app's `receive` instead, as
before, reached FastAPI's body parsing, which answers any error there with 400.) Refusals answer
`{"detail": …}` like every error and count in
`pilotlab_api_rejected_requests_total{reason="body_too_large"}` on the API's Prometheus registry
(api.metrics), next to ingest's `payload_too_large` dead letters.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, rejected: Counter | None) -> None:
        self.app, self.max_bytes, self.rejected = app, max_bytes, rejected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away mid-body: nobody to answer
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: the server's http.disconnect
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        if self.rejected is not None:
            self.rejected.labels("body_too_large").inc()
        body = orjson.dumps({"detail": f"the request body is larger than {self.max_bytes} bytes"})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def install(app: FastAPI, max_bytes: int) -> None:
    """Limit request bodies of `app`; count refusals on its metrics registry when it has one."""
    registry: CollectorRegistry | None = getattr(getattr(app.state, "metrics", None), "registry", None)
    rejected = None
    if registry is not None:
        rejected = Counter("pilotlab_api_rejected_requests", "Requests refused before reaching a route, by reason",
                           ["reason"], registry=registry)
    app.add_middleware(BodyLimit, max_bytes=max_bytes, rejected=rejected)

"""The public record verification page (/ui/verify): a visitor drops a record file or bundle and
the browser checks it itself; the file never leaves the browser.

The checks run in static/verify/ (ES modules written for pilotlab, no third-party code):
canonical.js (RFC 8785), merkle.js (RFC 9162 inclusion and consistency), signatures.js
(Ed25519 with WebCrypto) and record.js, which checks a file as scoring.records.verify and
scoring.transparency.bundle.verify_bundle do and then ties it to the log's newest signed tree head
(GET /log/tree-head, its signature checked; GET /log/consistency from the bundle's tree size).
The page fetches only pilotlab's public key, tree head and proofs: sizes and hashes.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.pages.templates import render

router = APIRouter()


@router.get("/verify")
def verify_page(request: Request) -> Response:
    return render(request, "verify.html")

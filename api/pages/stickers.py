"""QR stickers: the public address of a feedback code and its QR code as an SVG image (segno, pure
Python, ISO/IEC 18004; error correction M, which still reads with 15 % of a sticker scratched off)."""

from __future__ import annotations

import segno
from starlette.requests import Request

from api.pages.guard import PREFIX


def feedback_url(request: Request, public_url: str | None, code: str) -> str:
    """Where a sticker sends a resident: `public_url` (PILOTLAB_PUBLIC_URL) if set, else the address
    the sheet was opened at."""
    base = public_url.rstrip("/") if public_url else f"{request.url.scheme}://{request.url.netloc}"
    return f"{base}{PREFIX}/feedback/{code}"


def qr_svg_data_uri(url: str) -> str:
    """The QR code of `url` as an SVG data URI (black modules, 4-module quiet zone)."""
    return str(segno.make(url, error="m", micro=False).svg_data_uri(scale=4, border=4))

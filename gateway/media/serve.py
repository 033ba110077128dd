"""Stored media for the Control UI: short-lived signed URLs on the gateway's own origin.

An `<img>` cannot send the gateway token, and a token in a URL would outlive its use and
leak into logs. Instead `chat.history` (an authenticated call) hands out URLs signed with
a key that exists only in this process, valid for one file for URL_TTL_S; the route
checks the signature before serving. Same origin, so the page's CSP (`img-src 'self'`)
allows them. Files are served with their sniffed type, `nosniff`, and as downloads unless
they are pictures.
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.media.blocks import MEDIA_TYPES
from gateway.media.refs import MediaRef
from gateway.media.service import media_store
from gateway.media.sniff import MODEL_IMAGE_TYPES

if TYPE_CHECKING:
    from gateway.runtime import Gateway

URL_TTL_S = 3600
PREFIX = "/__clawgate/media/"
_KEY = secrets.token_bytes(32)


def _sign(rel: str, expires: int) -> str:
    return hmac.new(_KEY, f"{rel}\n{expires}".encode(), hashlib.sha256).hexdigest()[:40]


def signed_url(base_path: str, rel: str, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + URL_TTL_S)
    return f"{base_path}{PREFIX}{quote(rel)}?exp={expires}&sig={_sign(rel, expires)}"


def verify(rel: str, exp: str, sig: str, now: float | None = None) -> bool:
    try:
        expires = int(exp)
    except ValueError:
        return False
    if expires < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(_sign(rel, expires), sig)


def client_message(message: Mapping[str, Any], base_path: str) -> dict[str, Any]:
    """A transcript message as clients see it: media blocks carry a URL, not a store path."""
    content = message.get("content")
    if not isinstance(content, list):
        return dict(message)
    blocks: list[Any] = []
    for block in content:
        ref = MediaRef.from_block(block) if isinstance(block, Mapping) else None
        if ref is None or block.get("type") not in MEDIA_TYPES:
            blocks.append(block)
            continue
        shown = {k: v for k, v in block.items() if k != "media"}
        shown["url"] = signed_url(base_path, ref.path)
        shown["sizeBytes"] = ref.size
        blocks.append(shown)
    return {**message, "content": blocks}


def routes(gateway: Gateway, base_path: str) -> list[BaseRoute]:
    async def serve(request: Request) -> Response:
        rel = request.path_params["path"]
        query = request.query_params
        if not verify(rel, query.get("exp", ""), query.get("sig", "")):
            return PlainTextResponse("Forbidden", status_code=403)
        try:
            path = media_store(gateway).path(rel)
        except ValueError:
            return PlainTextResponse("Not Found", status_code=404)
        if not path.is_file():
            return PlainTextResponse("Not Found", status_code=404)
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        inline = mime in MODEL_IMAGE_TYPES
        return FileResponse(
            path,
            media_type=mime if inline else "application/octet-stream",
            content_disposition_type="inline" if inline else "attachment",
            filename=None if inline else path.name,
            headers={
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
                "Cache-Control": "private, max-age=3600",
                "Referrer-Policy": "no-referrer",
            },
        )

    return [Route(base_path + PREFIX + "{path:path}", serve, methods=["GET", "HEAD"])]

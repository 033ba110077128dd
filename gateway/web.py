"""The ASGI app: health endpoints, the Control UI's static files and the WebSocket gateway."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from gateway import http_api
from gateway.auth import client_address
from gateway.http_api.hooks import HooksMiddleware
from gateway.media.serve import routes as media_routes
from gateway.runtime import Gateway
from gateway.ws.connection import Connection
from gateway.ws.transport import LIMITS_EXTENSION, LimitControl

log = logging.getLogger("gateway")

CLOSE_TRY_AGAIN_LATER = 1013

STATIC_DIR = Path(__file__).parent / "ui" / "static"
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self' ws: wss:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
UI_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def create_app(gateway: Gateway, static_dir: Path = STATIC_DIR) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        yield
        if gateway.phase != "draining":
            await gateway.drain()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True, "status": "live"})

    async def startupz(request: Request) -> Response:
        body: dict[str, Any] = {
            "ok": gateway.phase == "started",
            "status": gateway.phase,
            "version": gateway.version,
            "uptimeMs": gateway.uptime_ms,
        }
        if gateway.phase == "starting":
            body["pendingReason"] = "startup-sidecars"
        return JSONResponse(body, status_code=200 if gateway.phase == "started" else 503)

    async def readyz(request: Request) -> Response:
        failing_fn = gateway.extensions.get("channels.failing")
        failing: list[str] = list(failing_fn()) if failing_fn else []
        if gateway.phase != "started":
            failing.insert(0, f"gateway:{gateway.phase}")
        body = {"ready": not failing, "failing": failing, "uptimeMs": gateway.uptime_ms}
        return JSONResponse(body, status_code=200 if not failing else 503)

    async def websocket(ws: WebSocket) -> None:
        peer = ws.client.host if ws.client else None
        address = client_address(peer, ws.headers, gateway.proxy_trust)
        limits: LimitControl | None = ws.scope.get("extensions", {}).get(LIMITS_EXTENSION)
        if limits is not None and not limits.identify(address):
            await ws.close(CLOSE_TRY_AGAIN_LATER, "too many unauthenticated connections")
            return
        await Connection(gateway, ws, address, ws.headers.get("origin"), limits).serve()

    routes: list[BaseRoute] = []
    for paths, endpoint in (
        (("/healthz", "/health"), healthz),
        (("/readyz", "/ready"), readyz),
        (("/startupz", "/startup"), startupz),
    ):
        routes += [Route(p, endpoint, methods=["GET", "HEAD"]) for p in paths]
    routes += http_api.routes(gateway)
    routes += media_routes(gateway, gateway.loaded.config.gateway.control_ui.base_path)
    routes += _ui_routes(gateway, static_dir)
    routes.append(WebSocketRoute("/{path:path}", websocket))
    # Hooks sit in front of the routes: their path is read from the live config per request.
    return Starlette(
        routes=routes, lifespan=lifespan, middleware=[Middleware(HooksMiddleware, gateway=gateway)]
    )


def _ui_routes(gateway: Gateway, static_dir: Path) -> list[BaseRoute]:
    ui = gateway.loaded.config.gateway.control_ui
    base = ui.base_path
    root = static_dir.resolve()

    async def not_found(request: Request) -> Response:
        return PlainTextResponse("Not Found", status_code=404)

    if not ui.enabled:
        return [Route("/{path:path}", not_found, methods=["GET", "HEAD"])]
    from gateway.ui_config import routes as official_ui_routes

    # The official Control UI's JSON and image paths, before the SPA fallback swallows them.
    extra = official_ui_routes(gateway, base)

    index_html = (root / "index.html").read_text(encoding="utf-8")
    # A <base> lets the page's relative asset URLs work at any depth under the base path.
    index_html = index_html.replace("<head>", f'<head>\n  <base href="{base}/">', 1)

    async def serve(request: Request) -> Response:
        target = _static_file(root, request.path_params.get("path", ""))
        if target is not None:
            # Revalidate every time: a gateway upgrade must never leave stale modules behind.
            return FileResponse(target, headers={**UI_HEADERS, "Cache-Control": "no-cache"})
        return Response(
            index_html,
            media_type="text/html; charset=utf-8",
            headers={**UI_HEADERS, "Cache-Control": "no-cache"},
        )

    if not base:
        return [*extra, Route("/{path:path}", serve, methods=["GET", "HEAD"])]

    async def to_base(request: Request) -> Response:
        return RedirectResponse(f"{base}/", status_code=302)

    return [
        *extra,
        Route(base, to_base, methods=["GET", "HEAD"]),
        Route(base + "/{path:path}", serve, methods=["GET", "HEAD"]),
        Route("/{path:path}", not_found, methods=["GET", "HEAD"]),
    ]


def _static_file(root: Path, rel: str) -> Path | None:
    """The file under `root` that `rel` names, or None (outside, missing, or not a path)."""
    if not rel or "\x00" in rel:
        return None  # a NUL made resolve() raise: a 500 instead of the index
    try:
        target = (root / rel).resolve()
        # Inside first: never even stat what a traversal points at.
        if target.is_relative_to(root) and target.is_file():
            return target
    except (OSError, ValueError):
        pass
    return None

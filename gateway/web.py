"""The ASGI app: health endpoints, the Control UI's static files and the WebSocket gateway.

The probes answer from the moment the socket listens. When the CLI defers the subsystems
(`Gateway.attach`, see gateway/runtime.py), everything else waits until the gateway has
started, and the full app (HTTP APIs, UI, WebSocket) is only imported and built then.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.runtime import Gateway

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute
    from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("gateway")

CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_SERVICE_RESTART = 1012

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

# The modules the full app needs: imported by the start-up thread when the CLI defers them.
FULL_APP_MODULES = (
    "starlette.applications",
    "starlette.middleware",
    "starlette.routing",
    "starlette.websockets",
    "gateway.http_api.hooks",
    "gateway.http_api.openai_compat",
    "gateway.http_api.tools_invoke",
    "gateway.media.serve",
    "gateway.ui_config",
    "gateway.ws.connection",
)


# --- probes (live from the first moment) -------------------------------------------------------
# A probe gives a status and a JSON body. Before the start they are answered in plain ASGI
# (`_send`): Starlette is imported with the full app, after the socket listens.

ProbeResult = tuple[int, dict[str, Any]]


def healthz(gateway: Gateway) -> ProbeResult:
    return 200, {"ok": True, "status": "live"}


def startupz(gateway: Gateway) -> ProbeResult:
    body: dict[str, Any] = {
        "ok": gateway.phase == "started",
        "status": gateway.phase,
        "version": gateway.version,
        "uptimeMs": gateway.uptime_ms,
    }
    if gateway.phase == "starting":
        body["pendingReason"] = "startup-sidecars"
    return (200 if gateway.phase == "started" else 503), body


def readyz(gateway: Gateway) -> ProbeResult:
    failing_fn = gateway.extensions.get("channels.failing")
    failing: list[str] = list(failing_fn()) if failing_fn else []
    if gateway.phase != "started":
        failing.insert(0, f"gateway:{gateway.phase}")
    body = {"ready": not failing, "failing": failing, "uptimeMs": gateway.uptime_ms}
    return (200 if not failing else 503), body


PROBES: dict[str, Callable[[Gateway], ProbeResult]] = {
    "/healthz": healthz,
    "/health": healthz,
    "/readyz": readyz,
    "/ready": readyz,
    "/startupz": startupz,
    "/startup": startupz,
}


def create_app(gateway: Gateway, static_dir: Path = STATIC_DIR) -> ASGIApp:
    return GatewayApp(gateway, static_dir)


class GatewayApp:
    """Lifespan and probes; every other request goes to the full app once the gateway is up."""

    def __init__(self, gateway: Gateway, static_dir: Path) -> None:
        self.gateway = gateway
        self.static_dir = static_dir
        # Built at once unless the CLI deferred the subsystems: then after the start.
        self._full: ASGIApp | None = None if gateway.deferred else _full_app(gateway, static_dir)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        gateway = self.gateway
        if gateway.deferred:
            probe = PROBES.get(scope["path"]) if scope["type"] == "http" else None
            if probe is not None and scope["method"] in ("GET", "HEAD"):
                status, body = probe(gateway)
                await _send(send, status, _json(body), "application/json")
                return
            if not await gateway.wait_started():
                await _refuse(scope, receive, send)
                return
        if self._full is None:
            self._full = _full_app(gateway, self.static_dir)
        await self._full(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        gateway = self.gateway
        await receive()  # lifespan.startup
        try:
            if gateway.deferred:
                gateway.start_in_background()
            else:
                await gateway.start()
        except Exception as exc:
            log.exception("gateway failed to start")
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        if gateway.phase != "draining":
            await gateway.drain()
        await send({"type": "lifespan.shutdown.complete"})


async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
    """The gateway stopped before it started: no request gets half a gateway."""
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": CLOSE_SERVICE_RESTART})
    elif scope["type"] == "http":
        await _send(send, 503, "gateway is stopping", "text/plain; charset=utf-8")


def _json(body: dict[str, Any]) -> str:
    # As Starlette's JSONResponse renders it, so a probe reads the same before and after.
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


async def _send(send: Send, status: int, text: str, content_type: str) -> None:
    body = text.encode("utf-8")
    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _full_app(gateway: Gateway, static_dir: Path) -> ASGIApp:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    from gateway import http_api
    from gateway.auth import client_address
    from gateway.http_api.hooks import HooksMiddleware
    from gateway.media.serve import routes as media_routes
    from gateway.ws.connection import Connection
    from gateway.ws.transport import LIMITS_EXTENSION, LimitControl

    async def websocket(ws: WebSocket) -> None:
        peer = ws.client.host if ws.client else None
        address = client_address(peer, ws.headers, gateway.proxy_trust)
        limits: LimitControl | None = ws.scope.get("extensions", {}).get(LIMITS_EXTENSION)
        if limits is not None and not limits.identify(address):
            await ws.close(CLOSE_TRY_AGAIN_LATER, "too many unauthenticated connections")
            return
        await Connection(gateway, ws, address, ws.headers.get("origin"), limits).serve()

    def probe_endpoint(
        probe: Callable[[Gateway], ProbeResult],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            status, body = probe(gateway)
            return JSONResponse(body, status_code=status)

        return endpoint

    routes: list[BaseRoute] = [
        Route(path, probe_endpoint(probe), methods=["GET", "HEAD"])
        for path, probe in PROBES.items()
    ]
    routes += http_api.routes(gateway)
    routes += media_routes(gateway, gateway.loaded.config.gateway.control_ui.base_path)
    routes += _ui_routes(gateway, static_dir)
    routes.append(WebSocketRoute("/{path:path}", websocket))
    # Hooks sit in front of the routes: their path is read from the live config per request.
    return Starlette(routes=routes, middleware=[Middleware(HooksMiddleware, gateway=gateway)])


def _ui_routes(gateway: Gateway, static_dir: Path) -> list[BaseRoute]:
    from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
    from starlette.routing import Route

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

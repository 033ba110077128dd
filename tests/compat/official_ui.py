"""OpenClaw's own Control UI (npm `openclaw`, `dist/control-ui`) served same-origin in front of
our gateway: a small aiohttp server hands out the bundle's files and passes the WebSocket and
the UI's JSON routes through to clawgate, as an operator's reverse proxy would.

The bundle stays in the reference cache; nothing of it is copied into the repository.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp
from aiohttp import WSMsgType, web

# Paths the gateway answers itself; everything else is the bundle (SPA fallback: index.html).
GATEWAY_PATHS = ("/control-ui-config.json", "/api/", "/avatar/", "/__openclaw__/")


class OfficialUiProxy:
    def __init__(self, bundle: Path, gateway_http: str, gateway_ws: str) -> None:
        self.bundle = bundle.resolve()
        self.gateway_http = gateway_http
        self.gateway_ws = gateway_ws
        # The bundle's index uses "./assets/…"; at a deep SPA path those must stay absolute.
        self.index = (self.bundle / "index.html").read_text().replace('"./', '"/')
        self.ws_frames: list[str] = []  # every frame the gateway sent, for assertions
        self.client_frames: list[str] = []  # every frame the page sent
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    async def start(self, port: int = 0) -> OfficialUiProxy:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = port or int(self._runner.addresses[0][1])
        self._session = aiohttp.ClientSession()
        return self

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        path = request.path
        if path.startswith(GATEWAY_PATHS):
            return await self._forward(request)
        target = (self.bundle / path.lstrip("/")).resolve()
        if path != "/" and target.is_relative_to(self.bundle) and target.is_file():
            return web.FileResponse(target)
        return web.Response(text=self.index, content_type="text/html")

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        headers = {
            k: v for k, v in request.headers.items() if k.lower() in ("authorization", "accept")
        }
        async with self._session.get(self.gateway_http + request.path_qs, headers=headers) as res:
            body = await res.read()
            return web.Response(
                body=body, status=res.status, content_type=res.content_type or "text/plain"
            )

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        assert self._session is not None
        client = web.WebSocketResponse(max_msg_size=0)
        await client.prepare(request)
        origin = request.headers.get("origin")
        async with self._session.ws_connect(
            self.gateway_ws + "/", headers={"Origin": origin} if origin else {}, max_msg_size=0
        ) as upstream:

            async def down() -> None:
                async for msg in upstream:
                    if msg.type == WSMsgType.TEXT:
                        self.ws_frames.append(msg.data)
                        await client.send_str(msg.data)
                    else:
                        break
                await client.close()

            task = asyncio.create_task(down())
            try:
                async for msg in client:
                    if msg.type == WSMsgType.TEXT:
                        self.client_frames.append(msg.data)
                        await upstream.send_str(msg.data)
                    else:
                        break
            finally:
                await upstream.close()
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        return client

"""An aiohttp app on 127.0.0.1 with an ephemeral port, run in the caller's event loop."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web


class LoopbackServer:
    """Base for the fakes: pre-binds a loopback socket so tests never need fixed ports."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.runner: web.AppRunner | None = None
        self.port: int = 0
        self.requests: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()
        # Set before start() to serve HTTPS (tests/fakes/tls.py makes certificates).
        self.tls: ssl.SSLContext | None = None

    async def start(self) -> LoopbackServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        # shutdown_timeout bounds teardown while a handler still sleeps (timeouts, long polls).
        self.runner = web.AppRunner(self.app, shutdown_timeout=0.5)
        await self.runner.setup()
        await web.SockSite(self.runner, sock, ssl_context=self.tls).start()
        return self

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def record(self, entry: dict[str, Any]) -> None:
        """Store one request record (stamped `at`, monotonic) and wake wait_until() waiters."""
        entry.setdefault("at", time.monotonic())
        self.requests.append(entry)
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """Wait (bounded) until predicate(self.requests) holds; no sleep loops."""

        async def _wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self.requests))

        await asyncio.wait_for(_wait(), timeout)
        return self.requests

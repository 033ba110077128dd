"""uvicorn's HTTP (h11) and WebSocket protocols with our limits on what a stranger may cost.

- A connection is *unauthenticated* from accept() until its WebSocket `connect` succeeds.
  Those are capped overall (the oldest is closed to make room: a newcomer always gets in)
  and per client address (more are refused). The address is the TCP peer, or, when the
  peer is a proxy we trust, the client named in its headers once those have arrived.
- All connections together stay below the file-descriptor limit (refused above it).
- A request head must arrive complete within `header_timeout_s` and within
  `max_header_bytes` (h11's own cap), with at most `max_headers` fields.
- A WebSocket message before `connect` is refused from its frame header when over 64 KiB,
  before any of it is buffered; `connect` then raises the cap to the post-auth maxPayload.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from gateway.auth import ProxyTrust
from gateway.ws.limits import TransportLimits

log = logging.getLogger("gateway.transport")

LIMITS_EXTENSION = "clawgate.limits"


class ThrottledLog:
    """At most one line per `interval_s` per key, then how many were left out."""

    def __init__(self, logger: logging.Logger, interval_s: float) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, message: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        skipped = self._suppressed.pop(key, 0)
        if skipped:
            message += f" ({skipped} more like this in the last {self.interval_s:.0f}s)"
        self.logger.warning(message, *args)


class Admission:
    """The gateway's ledger of open and unauthenticated connections (one per server)."""

    def __init__(self, limits: TransportLimits, trust: Callable[[], ProxyTrust]) -> None:
        self.limits = limits
        self._trust = trust
        self.open = 0
        # transport -> address key ("" until known behind a proxy); oldest first.
        self._pending: OrderedDict[asyncio.BaseTransport, str] = OrderedDict()
        self._per_address: dict[str, int] = {}
        self._open: set[asyncio.BaseTransport] = set()
        self.refused = 0
        self.evicted = 0
        self.notes = ThrottledLog(log, limits.error_log_interval_s)

    @property
    def unauthenticated(self) -> int:
        return len(self._pending)

    def per_address(self, address: str) -> int:
        return self._per_address.get(address, 0)

    def on_accept(self, transport: asyncio.BaseTransport) -> bool:
        """A new TCP connection: False (and it is closed by the caller) when over a limit."""
        if self.open >= self.limits.max_connections:
            self.refused += 1
            self.notes.warning(
                "connections",
                "refusing connections: %d open (limit %d, CLAWGATE_MAX_CONNECTIONS)",
                self.open,
                self.limits.max_connections,
            )
            return False
        peer = _peer(transport)
        # Behind a proxy the peer is the proxy; the client is known from the headers only.
        key = "" if self._trust().is_proxy(peer) else peer
        if key and self.per_address(key) >= self.limits.max_unauthenticated_per_address:
            self.refused += 1
            self._note_per_address(key)
            return False
        while len(self._pending) >= self.limits.max_unauthenticated:
            oldest, _ = next(iter(self._pending.items()))
            self.evicted += 1
            self.notes.warning(
                "evict",
                "closing the oldest unauthenticated connection: %d open (limit %d,"
                " CLAWGATE_MAX_UNAUTHENTICATED)",
                len(self._pending),
                self.limits.max_unauthenticated,
            )
            self._drop_pending(oldest)
            oldest.close()
        self._open.add(transport)
        self.open += 1
        self._pending[transport] = key
        if key:
            self._per_address[key] = self.per_address(key) + 1
        return True

    def identify(self, transport: asyncio.BaseTransport, address: str) -> bool:
        """The real client address of a proxied connection; False when over its limit."""
        key = self._pending.get(transport)
        if key is None or key == address:
            return True
        if self.per_address(address) >= self.limits.max_unauthenticated_per_address:
            self.refused += 1
            self._note_per_address(address)
            return False
        self._drop_pending(transport)
        self._pending[transport] = address
        self._per_address[address] = self.per_address(address) + 1
        return True

    def authenticated(self, transport: asyncio.BaseTransport) -> None:
        self._drop_pending(transport)

    def closed(self, transport: asyncio.BaseTransport) -> None:
        self._drop_pending(transport)
        if transport in self._open:
            self._open.discard(transport)
            self.open -= 1

    def _drop_pending(self, transport: asyncio.BaseTransport) -> None:
        key = self._pending.pop(transport, None)
        if key:
            left = self._per_address.get(key, 1) - 1
            if left > 0:
                self._per_address[key] = left
            else:
                self._per_address.pop(key, None)

    def _note_per_address(self, address: str) -> None:
        self.notes.warning(
            "per-address",
            "refusing connections from %s: %d unauthenticated (limit %d,"
            " CLAWGATE_MAX_UNAUTHENTICATED_PER_ADDRESS)",
            address,
            self.per_address(address),
            self.limits.max_unauthenticated_per_address,
        )


def _peer(transport: asyncio.BaseTransport) -> str:
    info = transport.get_extra_info("peername")
    if isinstance(info, tuple) and info:
        return str(info[0])
    return "unknown"


class LimitedConfig(uvicorn.Config):
    """uvicorn's config carrying our limits and ledger to the protocol instances."""

    def __init__(self, app: Any, limits: TransportLimits, admission: Admission, **kw: Any):
        super().__init__(
            app,
            http=LimitedH11Protocol,
            ws=LimitedWebSocketProtocol,
            ws_max_size=limits.max_payload_bytes,
            h11_max_incomplete_event_size=limits.max_header_bytes,
            **kw,
        )
        self.limits = limits
        self.admission = admission


class LimitedH11Protocol(H11Protocol):
    def __init__(self, config: LimitedConfig, *args: Any, **kw: Any) -> None:
        super().__init__(config, *args, **kw)
        self.limits = config.limits
        self.admission = config.admission
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.admission.on_accept(transport):
            transport.close()
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self.admission.closed(self.transport)
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()  # a kept-alive connection owes us the next head in time

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._cancel_head_timer()
        super().handle_websocket_upgrade(event)

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_timeout)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return
        if self.conn.their_state is h11.IDLE:  # no complete request head yet
            self.admission.notes.warning(
                "head-timeout",
                "closed a connection that sent no complete request head within %.0fs"
                " (CLAWGATE_HEADER_TIMEOUT_MS)",
                self.limits.header_timeout_s,
            )
            self.transport.close()


class LimitControl:
    """Handed to the app in the WebSocket scope: name the client, then lift the pre-auth cap."""

    def __init__(self, protocol: LimitedWebSocketProtocol) -> None:
        self._protocol = protocol

    def identify(self, address: str) -> bool:
        p = self._protocol
        return p.admission.identify(p.transport, address)

    def authenticated(self) -> None:
        p = self._protocol
        p.conn.max_message_size = p.limits.max_payload_bytes
        p.admission.authenticated(p.transport)


class LimitedWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, config: LimitedConfig, *args: Any, **kw: Any) -> None:
        super().__init__(config, *args, **kw)
        self.limits = config.limits
        self.admission = config.admission
        # Until `connect` succeeds: a bigger message is refused from its frame header.
        self.conn.max_message_size = self.limits.pre_connect_max_bytes

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][LIMITS_EXTENSION] = LimitControl(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.admission.closed(self.transport)
        super().connection_lost(exc)


class HeaderCountLimit:
    """ASGI middleware: a request with too many header fields gets 431 (WebSocket: before
    the upgrade is accepted)."""

    def __init__(self, app: Any, max_headers: int) -> None:
        self.app = app
        self.max_headers = max_headers

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and len(scope["headers"]) > self.max_headers:
            body = f"too many header fields (limit {self.max_headers})".encode()
            start = "http.response.start" if scope["type"] == "http" else None
            if start is None:
                await receive()  # websocket.connect
                await send(
                    {
                        "type": "websocket.http.response.start",
                        "status": 431,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                    }
                )
                await send({"type": "websocket.http.response.body", "body": body})
                return
            await send(
                {
                    "type": start,
                    "status": 431,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


_FLOOD_MESSAGES = ("socket.accept() out of system resource", "Invalid HTTP request received.")


def install_error_throttles(loop: asyncio.AbstractEventLoop, interval_s: float) -> None:
    """One line per interval for errors a client can cause at line rate.

    With the descriptor limit reached, asyncio reports each failed accept() (up to the
    listen backlog per wake-up); uvicorn warns once per malformed request.
    """
    notes = ThrottledLog(logging.getLogger("gateway.transport"), interval_s)
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if message == _FLOOD_MESSAGES[0]:
            exc = context.get("exception")
            notes.warning("accept", "%s: %s", message, exc)
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    uvicorn_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _FloodFilter) for f in uvicorn_log.filters):
        uvicorn_log.addFilter(_FloodFilter(interval_s))


class _FloodFilter(logging.Filter):
    def __init__(self, interval_s: float) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._last = 0.0
        self._suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() not in _FLOOD_MESSAGES:
            return True
        now = time.monotonic()
        if now - self._last < self.interval_s:
            self._suppressed += 1
            return False
        self._last = now
        if self._suppressed:
            record.msg = f"{record.msg} ({self._suppressed} more like this left out)"
            self._suppressed = 0
        return True

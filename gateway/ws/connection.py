"""One WebSocket client: an explicit state machine over the protocol's frames.

awaiting-connect --connect ok--> open --close/disconnect--> closed
A bad frame only ever affects its own connection; handler crashes become error responses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.auth import CLOSE_POLICY
from gateway.protocol import scopes as sc
from gateway.protocol.errors import FORBIDDEN, INVALID_REQUEST, UNAVAILABLE, RpcError
from gateway.protocol.frames import (
    MAX_BUFFERED_BYTES,
    PRE_CONNECT_MAX_BYTES,
    ClientInfo,
    event,
    parse_request,
    response_error,
    response_ok,
    salvage_id,
)
from gateway.rpc.registry import CallContext
from gateway.ws.handshake import Admitted, admit, hello_ok

if TYPE_CHECKING:
    from gateway.runtime import Gateway
    from gateway.ws.transport import LimitControl

log = logging.getLogger("gateway.ws")

HANDSHAKE_TIMEOUT_S = 10.0
MAX_IN_FLIGHT = 64
CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED = 1003
CLOSE_INVALID_DATA = 1007
CLOSE_TOO_BIG = 1009


class _Close:
    def __init__(self, code: int, reason: str) -> None:
        self.code, self.reason = code, reason


class Connection:
    def __init__(
        self,
        gateway: Gateway,
        ws: WebSocket,
        address: str,
        origin: str | None,
        limits: LimitControl | None = None,
    ) -> None:
        self.gateway = gateway
        self.limits = limits
        self.ws = ws
        self.address = address
        self.origin = origin
        self.id = str(uuid.uuid4())
        self.state = "awaiting-connect"
        self.client: ClientInfo | None = None
        self.scopes: frozenset[str] = frozenset()
        self.caps: frozenset[str] = frozenset()  # connect `caps` (e.g. "tool-events")
        self.connected_at = 0
        self._seq = 0
        self._queue: asyncio.Queue[str | _Close] = asyncio.Queue()
        self._buffered = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self.nonce = str(uuid.uuid4())  # the connect.challenge nonce a signed device echoes
        self.admitted: Admitted | None = None

    # --- outbound ----------------------------------------------------------------------------

    def _enqueue(self, frame: dict[str, Any]) -> None:
        if self._closing:
            return
        text = _dump(frame)
        self._buffered += len(text)
        if self._buffered > MAX_BUFFERED_BYTES:
            # A client that doesn't read must not grow our memory without limit.
            log.warning(
                "closing connection %s: send buffer over %d bytes", self.id, MAX_BUFFERED_BYTES
            )
            # Drop what it never read: a stuck peer would otherwise pin the full buffer until
            # it read it all (the close frame queued behind it).
            while not self._queue.empty():
                self._queue.get_nowait()
            self._buffered = 0
            self._start_close(CLOSE_POLICY, "slow consumer: send buffer full")
            return
        self._queue.put_nowait(text)

    def send_event(self, name: str, payload: Any) -> None:
        if self.state != "open":
            return
        self._seq += 1
        self._enqueue(event(name, payload, self._seq))

    def _start_close(self, code: int, reason: str) -> None:
        if not self._closing:
            self._closing = True
            self._queue.put_nowait(_Close(code, reason[:120]))

    async def close(self, code: int, reason: str) -> None:
        self._start_close(code, reason)
        if self._writer is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self._writer), 2.0)

    async def _write_loop(self) -> None:
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, _Close):
                    with contextlib.suppress(Exception):
                        await self.ws.close(item.code, item.reason)
                    return
                self._buffered -= len(item)
                await self.ws.send_text(item)
        except Exception:
            # The peer went away mid-send (the read loop sees the disconnect), or the socket
            # broke: close it so the client is never left waiting on a dead writer.
            self._closing = True
            with contextlib.suppress(Exception):
                await self.ws.close(1011, "internal error")

    # --- inbound -----------------------------------------------------------------------------

    async def serve(self) -> None:
        await self.ws.accept()
        self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer-{self.id}")
        self.gateway.connections.add(self)
        self._seq = 0
        self._enqueue(event("connect.challenge", {"nonce": self.nonce, "ts": _now_ms()}))
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
        try:
            while not self._closing:
                timeout = deadline - time.monotonic() if self.state == "awaiting-connect" else None
                if timeout is not None and timeout <= 0:
                    self._start_close(CLOSE_POLICY, "handshake timeout")
                    break
                try:
                    message = await asyncio.wait_for(self.ws.receive(), timeout)
                except TimeoutError:
                    self._start_close(CLOSE_POLICY, "handshake timeout")
                    break
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    self._start_close(CLOSE_UNSUPPORTED, "text frames only")
                    break
                await self._on_text(text)
                # Not kept while waiting for the next frame (an attachment frame is ~25 MB).
                del message, text
        except WebSocketDisconnect:
            pass
        except RuntimeError:
            pass  # receive after the socket closed
        finally:
            await self._teardown()

    async def _teardown(self) -> None:
        # Lets the writer flush what is queued, then finish (it would otherwise wait forever).
        self._start_close(CLOSE_NORMAL, "")
        self.gateway.connections.discard(self)
        for task in list(self._tasks):
            task.cancel()
        if self._writer is not None:
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(self._writer, 1.0)
            self._writer.cancel()
        was_listed = self.state == "open" and self.listed_in_presence
        self.state = "closed"
        if was_listed:
            self.gateway.presence_changed()

    async def _on_text(self, text: str) -> None:
        if self.state == "awaiting-connect" and len(text.encode("utf-8")) > PRE_CONNECT_MAX_BYTES:
            self._start_close(CLOSE_TOO_BIG, "frame too large before connect")
            return
        try:
            frame = parse_request(text)
        except RpcError as exc:
            # Too deep, too big a number, or not a request: answered whenever it has an id.
            req_id = salvage_id(text)
            if req_id is not None:
                self._enqueue(response_error(req_id, exc))
            else:
                log.debug("connection %s sent an unusable frame: %s", self.id, exc.message)
            if self.state == "awaiting-connect":
                self._start_close(CLOSE_POLICY, exc.message)
            return
        except ValueError:
            if self.state == "awaiting-connect":
                self._start_close(CLOSE_INVALID_DATA, "invalid JSON")
            else:
                log.debug("connection %s sent a frame that is not JSON; ignored", self.id)
            return

        if self.state == "awaiting-connect":
            await self._handshake(frame.id, frame.method, frame.params)
            return
        if frame.method == "connect":
            self._enqueue(response_error(frame.id, RpcError(INVALID_REQUEST, "already connected")))
            return
        if len(self._tasks) >= MAX_IN_FLIGHT:
            self._enqueue(
                response_error(
                    frame.id,
                    RpcError(
                        UNAVAILABLE,
                        "too many requests in flight",
                        retryable=True,
                        retry_after_ms=100,
                    ),
                )
            )
            return
        task = asyncio.create_task(self._dispatch(frame.id, frame.method, frame.params))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handshake(self, req_id: str, method: str, params: Any) -> None:
        if method != "connect":
            err = RpcError(
                INVALID_REQUEST,
                "invalid handshake: first request must be connect",
                close_code=CLOSE_POLICY,
            )
            self._refuse(req_id, err)
            return
        if self.gateway.phase == "draining":
            self._refuse(
                req_id,
                RpcError(
                    UNAVAILABLE,
                    "gateway is shutting down",
                    retryable=True,
                    retry_after_ms=1000,
                    close_code=1012,
                ),
            )
            return
        if self.gateway.limiter.throttled_for(self.address) > 0:
            # A throttled address waits before its secret is even looked at (a connection
            # closed meanwhile is never checked): with at most N unauthenticated connections
            # per address, that bounds guessing to N / hold_s a second, and the right secret
            # is only delayed, never refused (gateway.auth.FailedAuthLimiter).
            await asyncio.sleep(self.gateway.limiter.hold_s)
            if self._closing:
                return
        try:
            admitted = admit(self.gateway, params, self.address, self.origin, self.nonce)
        except RpcError as exc:
            code = str(exc.details.get("code", "")) if exc.details else ""
            if code.startswith("AUTH_"):
                log.warning("refused connect from %s: %s", self.address, code)
            self._refuse(req_id, exc)
            return
        from gateway.rpc.core import health_payload

        if self.limits is not None:
            self.limits.authenticated()  # lifts the 64 KiB pre-connect message cap
        self.client = admitted.params.client
        self.admitted = admitted
        self.scopes = frozenset(admitted.scopes)
        self.caps = frozenset(admitted.params.caps)
        self.connected_at = _now_ms()
        health = await health_payload(self.gateway)
        self._enqueue(response_ok(req_id, hello_ok(self.gateway, admitted, self.id, health)))
        self.state = "open"
        self.send_event("health", health)
        if self.listed_in_presence:
            self.gateway.presence_changed()

    def _refuse(self, req_id: str, err: RpcError) -> None:
        self._enqueue(response_error(req_id, err))
        self._start_close(err.close_code or CLOSE_POLICY, err.message)

    async def _dispatch(self, req_id: str, name: str, params: Any) -> None:
        try:
            result = await self.call(name, params, req_id)
        except RpcError as exc:
            self._enqueue(response_error(req_id, exc))
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("method %s failed", name)
            self._enqueue(
                response_error(
                    req_id, RpcError(UNAVAILABLE, f"{name} failed unexpectedly", retryable=True)
                )
            )
            return
        self._enqueue(response_ok(req_id, result))

    def send_interim(self, req_id: str, payload: Any) -> None:
        """An early answer to a request that will be answered again (`agent`: accepted)."""
        self._enqueue(response_ok(req_id, payload))

    async def call(self, name: str, params: Any, req_id: str | None = None) -> Any:
        spec = self.gateway.registry.get(name)
        required = spec.scope if spec is not None else sc.ADMIN
        if not sc.satisfies(self.scopes, required):
            raise RpcError(
                FORBIDDEN,
                f"missing scope: {required}",
                details={
                    "code": "MISSING_SCOPE",
                    "missingScope": required,
                    "requiredScopes": [required],
                },
            )
        if spec is None:
            raise RpcError(INVALID_REQUEST, f"unknown method: {name}")
        parsed = spec.parse(params)
        return await spec.handler(CallContext(self.gateway, self, req_id), parsed)

    @property
    def listed_in_presence(self) -> bool:
        client = self.client
        if client is None:
            return False
        return client.mode in ("webchat", "ui") or "control-ui" in client.id

    def presence_entry(self) -> dict[str, Any]:
        client = self.client
        assert client is not None
        entry = {
            "host": client.display_name or client.id,
            "ip": self.address,
            "version": client.version,
            "platform": client.platform,
            "deviceFamily": client.device_family,
            "mode": client.mode or client.id,
            "reason": "connect",
            "instanceId": client.instance_id or self.id,
            "text": f"{client.id} {client.version} ({client.mode or 'client'})",
            "ts": self.connected_at,
        }
        # The schema allows only non-empty strings: leave out what the client did not say.
        return {k: v for k, v in entry.items() if v not in (None, "")}


def _dump(frame: dict[str, Any]) -> str:
    text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates (a client can send "\\ud800" escapes, which we may echo back)
            # are not UTF-8; escaped they are still the same JSON string.
            text = json.dumps(frame, separators=(",", ":"), ensure_ascii=True)
    return text


def _now_ms() -> int:
    return int(time.time() * 1000)

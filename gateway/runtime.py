"""The running gateway: settings, config, lifecycle phase, live connections, services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway import __version__
from gateway.auth import FailedAuthLimiter, ProxyTrust
from gateway.config.gateway_section import GatewayConfig
from gateway.config.loader import LoadedConfig
from gateway.protocol.frames import TICK_INTERVAL_MS
from gateway.rpc.registry import Registry, registry
from gateway.settings import RuntimeSettings, StartupError

if TYPE_CHECKING:
    from gateway.ws.connection import Connection

log = logging.getLogger("gateway")

# Presence lists the gateway and interactive UI clients (as the reference does, CLI and
# backend connections are not listed); updates are coalesced so N connects cost one broadcast.
PRESENCE_COALESCE_S = 0.25
PRELOAD_SWITCH_INTERVAL_S = 0.0005
PRESENCE_MAX_CLIENTS = 50

EVENTS = [
    "connect.challenge",
    "tick",
    "health",
    "presence",
    "chat",
    "sessions.changed",
    "shutdown",
    "exec.approval.requested",
    "exec.approval.resolved",
    "agent",
    "session.message",
    "session.tool",
    "chat.send_timing",
    "cron",
]


@dataclass
class Service:
    """Something with a lifetime tied to the gateway's (channels, agent runner...)."""

    name: str
    start: Callable[[], Awaitable[None]]
    stop: Callable[[], Awaitable[None]]


@dataclass
class Gateway:
    settings: RuntimeSettings
    # `gateway.*` as validated before the socket listens; `loaded` (the whole file) is set
    # once the start-up thread has validated every section, or at once by `from_loaded`.
    listen_section: GatewayConfig
    loaded: LoadedConfig = field(init=False)
    registry: Registry = field(default_factory=lambda: registry)
    version: str = __version__
    boot_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    instance_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    phase: str = "starting"  # starting -> started -> draining
    started_monotonic: float = field(default_factory=time.monotonic)
    connections: set[Connection] = field(default_factory=set)
    services: list[Service] = field(default_factory=list)
    # Extension points filled by subsystems (agents, channels) as they start.
    extensions: dict[str, Any] = field(default_factory=dict)
    limiter: FailedAuthLimiter = field(default_factory=FailedAuthLimiter)
    tick_interval_ms: int = TICK_INTERVAL_MS
    # Bound on a graceful stop (SIGTERM): in-flight agent runs get most of it.
    drain_timeout_s: float = 10.0
    restart_requested: bool = False  # set by a config change that needs a fresh process
    # Bumped when presence / health change; clients compare snapshots with it.
    state_version: dict[str, int] = field(default_factory=lambda: {"presence": 0, "health": 0})
    # Set by the CLI so the socket listens before the subsystems are imported: `start()` runs
    # `preload` in a worker thread (the event loop keeps answering probes), then `attach` on
    # the loop, then starts the services. Until then only the probes answer (gateway/web.py).
    attach: Callable[[Gateway], None] | None = None
    preload: Callable[[], None] | None = None
    # Set by `serve()` (gateway/server.py) once uvicorn accepts on the socket: the deferred
    # start waits for it, so the import thread does not take the GIL from uvicorn's own start.
    listening: asyncio.Event | None = None
    start_error: BaseException | None = None  # why the deferred start failed, for the CLI
    _started: asyncio.Event = field(default_factory=asyncio.Event)
    _start_task: asyncio.Task[None] | None = None
    _tick_task: asyncio.Task[None] | None = None
    _proxy_trust: tuple[list[str], ProxyTrust] | None = None
    _presence_pending: asyncio.TimerHandle | None = None

    @classmethod
    def from_loaded(cls, settings: RuntimeSettings, loaded: LoadedConfig) -> Gateway:
        gw = cls(settings=settings, listen_section=loaded.config.gateway)
        gw.loaded = loaded
        return gw

    @property
    def gateway_section(self) -> GatewayConfig:
        """`gateway.*` of the live config (the pre-listen section until the whole is loaded)."""
        loaded: LoadedConfig | None = self.__dict__.get("loaded")
        return self.listen_section if loaded is None else loaded.config.gateway

    def __post_init__(self) -> None:
        rate = self.listen_section.auth.rate_limit
        self.limiter = FailedAuthLimiter(
            max_attempts=rate.max_attempts,
            window_s=rate.window_ms / 1000,
            lockout_s=rate.lockout_ms / 1000,
            exempt_loopback=rate.exempt_loopback,
        )

    @property
    def deferred(self) -> bool:
        """True while subsystems deferred by the CLI are still to be attached and started."""
        return self.attach is not None or (
            self._start_task is not None and not self._started.is_set()
        )

    async def wait_started(self) -> bool:
        """Wait for the start; False if the gateway began draining instead."""
        await self._started.wait()
        return self.phase == "started"

    @property
    def uptime_ms(self) -> int:
        return int((time.monotonic() - self.started_monotonic) * 1000)

    @property
    def proxy_trust(self) -> ProxyTrust:
        """Who may tell us a client's address (read live: a config edit applies at once)."""
        entries = self.gateway_section.trusted_proxies
        cached = self._proxy_trust
        if cached is None or cached[0] != entries:
            self._proxy_trust = cached = (list(entries), ProxyTrust.build(entries, os.environ))
        return cached[1]

    # --- lifecycle -----------------------------------------------------------------------

    def start_in_background(self) -> None:
        """`start()` as a task, so the server listens meanwhile; a failure stops the process."""
        task = asyncio.create_task(self.start(), name="gateway-start")
        self._start_task = task

        def done(t: asyncio.Task[None]) -> None:
            if t.cancelled() or t.exception() is None:
                return
            self.start_error = error = t.exception()
            if isinstance(error, StartupError):
                # Its lines (an invalid config) are printed by the CLI as the process exits.
                log.error("gateway failed to start: %s", error.lines[0])
            else:
                log.error("gateway failed to start", exc_info=error)
            failed = self.extensions.get("gateway.start_failed")
            if failed is not None:
                failed()

        task.add_done_callback(done)

    async def start(self) -> None:
        if self.attach is not None:
            if self.listening is not None:
                await self.listening.wait()
            if self.preload is not None:
                # The import thread holds the GIL most of the time; a short switch interval
                # lets the event loop answer probes meanwhile within ~1 ms, not ~5 ms a step.
                interval = sys.getswitchinterval()
                sys.setswitchinterval(PRELOAD_SWITCH_INTERVAL_S)
                try:
                    await asyncio.to_thread(self.preload)
                finally:
                    sys.setswitchinterval(interval)
            self.attach(self)
            self.attach = None
        for service in self.services:
            try:
                await service.start()
            except Exception:
                # One broken subsystem must not keep the gateway (and its health checks) down.
                log.exception("%s failed to start", service.name)
        self._tick_task = asyncio.create_task(self._ticker(), name="gateway-tick")
        self.phase = "started"
        self._started.set()

    async def drain(
        self, reason: str = "gateway stopping", restart_expected_ms: int | None = None
    ) -> None:
        """Stop taking work, tell clients, close their sockets, stop services."""
        self.phase = "draining"
        self._started.set()  # requests waiting for a start that will not come are refused
        start = self._start_task
        if start is not None and not start.done():
            start.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await start
        if self._tick_task is not None:
            self._tick_task.cancel()
        # Services first: in-flight runs finish and their events still reach open sockets.
        for service in reversed(self.services):
            try:
                await service.stop()
            except Exception:
                log.exception("%s failed to stop cleanly", service.name)
        for conn in list(self.connections):
            notice: dict[str, Any] = {"reason": reason}
            if restart_expected_ms is not None:
                notice["restartExpectedMs"] = restart_expected_ms
            conn.send_event("shutdown", notice)
        await asyncio.gather(
            *(conn.close(1012, "service restart") for conn in list(self.connections)),
            return_exceptions=True,
        )

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval_ms / 1000)
            self.broadcast("tick", {"ts": int(time.time() * 1000)})

    # --- events ----------------------------------------------------------------------------

    def broadcast(self, name: str, payload: Any) -> None:
        for conn in list(self.connections):
            conn.send_event(name, payload)

    def presence_changed(self) -> None:
        """Coalesce presence updates: one broadcast per window, however many clients came."""
        self.state_version["presence"] += 1
        if self._presence_pending is None:
            loop = asyncio.get_running_loop()
            self._presence_pending = loop.call_later(PRESENCE_COALESCE_S, self._send_presence)

    def _send_presence(self) -> None:
        self._presence_pending = None
        self.broadcast("presence", {"presence": self.presence()})

    def presence(self) -> list[dict[str, Any]]:
        now = int(time.time() * 1000)
        host = socket.gethostname()
        entries = [
            {
                "host": host,
                "version": self.version,
                "platform": f"{os.uname().sysname.lower()} {os.uname().release}",
                "mode": "gateway",
                "reason": "self",
                "instanceId": self.instance_id,
                "text": f"Gateway: {host} · clawgate {self.version}",
                "ts": now,
            }
        ]
        listed = [c for c in self.connections if c.client is not None and c.listed_in_presence]
        listed.sort(key=lambda c: c.connected_at, reverse=True)
        entries.extend(c.presence_entry() for c in listed[:PRESENCE_MAX_CLIENTS])
        return entries

"""Startup guards in order, the listening socket, and graceful shutdown in one place."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from gateway.config.errors import ConfigError
from gateway.config.gateway_section import GatewaySection
from gateway.config.loader import (
    LoadedConfig,
    PreparedConfig,
    finish_config,
    parse_json5,
    prepare_config,
    read_config_text,
    validate_gateway_section,
)
from gateway.logs import scrubber
from gateway.paths import config_path, state_dir
from gateway.settings import (
    EX_CONFIG,
    Flags,
    RuntimeSettings,
    StartupError,
    control_ui_hint,
    is_container,
    resolve_auth,
    resolve_bind,
    resolve_port,
    seed_origins,
)
from gateway.ws.limits import (
    LimitError,
    TransportLimits,
    fit_to_fd_limit,
    limits_from_env,
    raise_fd_limit,
)
from gateway.ws.transport import Admission, HeaderCountLimit, LimitedConfig, install_error_throttles

log = logging.getLogger("gateway")
shutdown_log = logging.getLogger("shutdown")

BIND_ATTEMPTS = 20
BIND_RETRY_S = 0.5


def _mode_guard(flags: Flags, path: Any) -> None:
    """Refuse to run on a missing or suspicious config unless --allow-unconfigured (config.md §6.3)."""
    if flags.allow_unconfigured:
        return
    raw = read_config_text(path)
    if raw is None:
        raise StartupError(
            EX_CONFIG,
            f'Missing config at {path}. Create it with gateway.mode set to "local", or pass'
            " --allow-unconfigured to start on defaults.",
        )
    # A syntax error propagates (ConfigError): it names file:line:col, which says far more
    # than "no gateway.mode" would.
    try:
        mode = parse_json5(path, raw).get("gateway", {}).get("mode")
    except AttributeError:
        mode = None
    if mode is None:
        raise StartupError(
            EX_CONFIG,
            "Gateway start blocked: the existing config has no gateway.mode, which suggests it was"
            ' clobbered. Set gateway.mode to "local", or pass --allow-unconfigured.',
        )
    if mode != "local":
        raise StartupError(
            EX_CONFIG,
            f"Gateway start blocked: set gateway.mode=local (current: {mode}) or pass"
            " --allow-unconfigured.",
        )


@dataclass
class ListenConfig:
    """What a start knows before the socket listens: the file parsed and `gateway.*` valid.

    `finish()` validates the rest (in the start-up thread); until then nothing but the
    settings, the probes and the transport limits may depend on the config.
    """

    prepared: PreparedConfig
    config: GatewaySection

    @property
    def path(self) -> Path:
        return self.prepared.path

    def finish(self) -> LoadedConfig:
        """Every section validated, or StartupError (exit 78) as a bad file gets before."""
        try:
            return finish_config(self.prepared)
        except ConfigError as exc:
            raise _invalid(exc) from exc


def _invalid(exc: ConfigError) -> StartupError:
    return StartupError(
        EX_CONFIG,
        f"Gateway failed to start: Invalid config at {exc.path}:",
        *exc.lines(),
        "Fix the lines above, then start the gateway again.",
    )


def load_for_startup(flags: Flags, env: Mapping[str, str]) -> ListenConfig:
    path = config_path(env)
    try:
        _mode_guard(flags, path)
        prepared = prepare_config(path, env)
        section = GatewaySection(gateway=validate_gateway_section(prepared))
    except ConfigError as exc:
        raise _invalid(exc) from exc
    for key, value in prepared.env_vars.items():
        os.environ.setdefault(key, value)
    return ListenConfig(prepared, section)


def resolve_settings(
    flags: Flags, loaded: LoadedConfig | ListenConfig, env: Mapping[str, str]
) -> RuntimeSettings:
    config = loaded.config
    container = is_container(env)
    port = resolve_port(flags, config, env)
    bind, host = resolve_bind(flags, config, container)
    auth = resolve_auth(flags, config, env, host, bind, container)
    allowed, seeded = seed_origins(config, host, port, env)
    return RuntimeSettings(
        port=port,
        bind=bind,
        host=host,
        auth=auth,
        container=container,
        allowed_origins=allowed,
        seeded_origins=seeded,
        state_dir=state_dir(env),
        config_path=loaded.path,
    )


def bind_socket(host: str, port: int, attempts: int = BIND_ATTEMPTS) -> socket.socket:
    """Bind with retries to ride out a restarting previous owner, then fail with exit 1."""
    last: OSError | None = None
    for attempt in range(attempts):
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        # Linux never lets two sockets LISTEN on one port with SO_REUSEADDR; it only skips
        # TIME_WAIT leftovers, which is what makes a restart after SIGKILL immediate.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this: without it a small frame sent right after another
        # (a chat `final` after a `delta`) waits for the peer's delayed ACK (~40 ms, Nagle).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((host, port))
            sock.listen(2048)
            sock.set_inheritable(True)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
            if exc.errno != errno.EADDRINUSE:
                break
            if attempt == 0:
                log.warning(
                    "port %d is busy; retrying for up to %.0fs", port, attempts * BIND_RETRY_S
                )
            time.sleep(BIND_RETRY_S)
    assert last is not None
    if last.errno == errno.EADDRINUSE:
        raise StartupError(
            1,
            f"Gateway failed to start: another process is already listening on ws://{host}:{port}"
            " (address already in use).",
            f"Port {port} is already in use. Stop the other process, pass --force, or choose another --port.",
        )
    raise StartupError(1, f"failed to bind gateway socket on ws://{host}:{port}: {last.strerror}")


class _Server(uvicorn.Server):
    # We handle signals ourselves so shutdown drains first and the process exits 0.
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        config = self.config
        assert isinstance(config, LimitedConfig)
        install_error_throttles(asyncio.get_running_loop(), config.limits.error_log_interval_s)
        await super().serve(sockets=sockets)


def transport_limits(env: Mapping[str, str] | None = None) -> TransportLimits:
    """The limits from the environment, fitted under the (raised) descriptor limit."""
    try:
        limits = limits_from_env(env)
    except LimitError as exc:
        raise StartupError(EX_CONFIG, f"Gateway failed to start: {exc}") from exc
    return fit_to_fd_limit(limits, raise_fd_limit())


def make_server(
    gateway: Any, drain_timeout_s: float = 10.0, limits: TransportLimits | None = None
) -> uvicorn.Server:
    """The uvicorn server for our app, with the transport limits; signals are left to the caller."""
    from gateway.web import create_app

    limits = limits or transport_limits()
    gateway.limiter.hold_s = limits.auth_failure_hold_s
    admission = Admission(limits, lambda: gateway.proxy_trust)
    gateway.extensions["transport.admission"] = admission
    config = LimitedConfig(
        HeaderCountLimit(create_app(gateway), limits.max_headers),
        limits,
        admission,
        ws_per_message_deflate=False,
        lifespan="on",
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=max(1, int(drain_timeout_s)),
    )
    return _Server(config)


REPEAT_SIGNAL_GRACE_S = 1.0


async def serve(gateway: Any, sock: socket.socket, drain_timeout_s: float | None = None) -> int:
    if drain_timeout_s is None:
        drain_timeout_s = float(gateway.drain_timeout_s)
    server = make_server(gateway, drain_timeout_s)
    loop = asyncio.get_running_loop()
    stopping: dict[str, float] = {}
    stopping_tasks: set[asyncio.Task[None]] = set()

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if stopping:
            # A second signal forces the exit, but not an echo of the first: `timeout`, `docker
            # stop` and process-group kills often deliver the same SIGTERM twice at once.
            if time.monotonic() - stopping["at"] > REPEAT_SIGNAL_GRACE_S:
                log.warning("received %s again; exiting without waiting for the drain", name)
                server.force_exit = True
                server.should_exit = True
                for task in stopping_tasks:
                    task.cancel()
            return
        log.info("received %s; shutting down", name)
        begin_stop("gateway stopping")

    def begin_stop(reason: str, restart_expected_ms: int | None = None) -> None:
        """The one way a stop starts: drain (bounded), then let uvicorn exit."""
        stopping["at"] = time.monotonic()
        task = loop.create_task(
            _drain_then_exit(gateway, server, drain_timeout_s, reason, restart_expected_ms)
        )
        stopping_tasks.add(task)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)

    def restart(delay_ms: int = 0) -> None:
        """Drain like SIGTERM, then the CLI re-executes the same command line (same PID)."""
        if stopping or gateway.restart_requested:
            return
        gateway.restart_requested = True

        def begin() -> None:
            if not stopping:
                log.info("restarting to apply configuration changes")
                begin_stop("config change", restart_expected_ms=3000)

        loop.call_later(max(0, delay_ms) / 1000, begin)

    gateway.extensions["gateway.restart"] = restart
    start_failed: list[bool] = []

    def on_start_failed() -> None:
        start_failed.append(True)
        if not stopping:
            begin_stop("gateway failed to start")

    gateway.extensions["gateway.start_failed"] = on_start_failed

    settings = gateway.settings
    listening = gateway.listening = asyncio.Event()
    task = asyncio.create_task(server.serve(sockets=[sock]))
    # uvicorn exposes a started flag, not an event.
    while not server.started and not task.done():  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    if server.started:
        listening.set()
        log.info("listening on ws://%s:%d (PID %d)", settings.host, settings.port, os.getpid())
        # With the subsystems deferred (gateway/cli.py) the probes already answer; "ready"
        # waits for the start, as /readyz does.
        if await gateway.wait_started():
            log.info("ready")
            for line in control_ui_hint(settings, gateway.loaded.config, os.environ):
                log.info(line)
    await task
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(signum)
    if not server.started or start_failed:
        return 1
    if stopping:
        shutdown_log.info(
            "completed cleanly in %dms", int((time.monotonic() - stopping["at"]) * 1000)
        )
    return 0


async def _drain_then_exit(
    gateway: Any,
    server: uvicorn.Server,
    timeout_s: float,
    reason: str = "gateway stopping",
    restart_expected_ms: int | None = None,
) -> None:
    try:
        await asyncio.wait_for(gateway.drain(reason, restart_expected_ms), timeout_s)
    except TimeoutError:
        log.warning("drain took longer than %.0fs; stopping anyway", timeout_s)
    except Exception:
        log.exception("drain failed; stopping anyway")
    server.should_exit = True


def register_secrets(
    loaded: LoadedConfig | ListenConfig, settings: RuntimeSettings, env: Mapping[str, str]
) -> None:
    """Every secret we know of is masked in every log line from here on.

    A start calls it before listening with the `gateway` section, and again with the whole
    config once the start-up thread has validated it (before any subsystem runs)."""
    scrubber.add(settings.auth.token)
    scrubber.add(settings.auth.password)
    for name in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_OAUTH_TOKEN",
        "OPENAI_API_KEY",
        "DISCORD_BOT_TOKEN",
        "TELEGRAM_BOT_TOKEN",
        "OPENCLAW_GATEWAY_TOKEN",
        "OPENCLAW_GATEWAY_PASSWORD",
    ):
        scrubber.add(env.get(name))
    if not isinstance(loaded, LoadedConfig):
        return
    config = loaded.config
    for provider in config.models.providers.values():
        if isinstance(provider.api_key, str):
            scrubber.add(provider.api_key)
    if config.channels.discord and isinstance(config.channels.discord.token, str):
        scrubber.add(config.channels.discord.token)
    if config.channels.telegram and isinstance(config.channels.telegram.bot_token, str):
        scrubber.add(config.channels.telegram.bot_token)

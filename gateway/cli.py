"""Command line: `python -m gateway [run] [flags]`."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NoReturn

from gateway import __version__, logs
from gateway.paths import runtime_token_path
from gateway.settings import (
    AUTH_MODES,
    BIND_MODES,
    LOOPBACK_HOSTS,
    Flags,
    StartupError,
    parse_env_port,
)

if TYPE_CHECKING:
    from gateway.config.loader import LoadedConfig
    from gateway.config.models import OpenClawConfig

log = logging.getLogger("gateway")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # Bad flags exit 1 with one line, like the reference (argparse would exit 2 with usage).
        self.exit(1, f"{self.prog}: {message}\n")


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            "Invalid --port. Use a port number from 1 to 65535, for example 18789."
        )
    return port


def _choice(flag: str, allowed: Sequence[str]):  # type: ignore[no-untyped-def]
    quoted = ", ".join(f'"{a}"' for a in allowed[:-1]) + f', or "{allowed[-1]}"'

    def check(value: str) -> str:
        if value not in allowed:
            raise argparse.ArgumentTypeError(f"Invalid {flag}. Use {quoted}.")
        return value

    return check


COMMANDS = """\
commands:
  run                        start the gateway in the foreground (the default; `gateway run` too)
  pairing list [channel]     pending DM pairing requests (Discord, Telegram)
  pairing approve <ch> <code>
                             let that sender talk to the bot
  doctor [--probe] [--fix]   check config, state dir, lock, tokens, keys and port; print fixes

bind modes:
  loopback  127.0.0.1 only (default outside a container)
  lan       all interfaces, 0.0.0.0 (needs a token or password)
  auto      0.0.0.0 inside a container (Fly, Docker), else 127.0.0.1 (default in a container)
  custom    gateway.customBindHost (an IPv4 address), or 0.0.0.0 when it is unset

`python -m gateway <command> --help` shows a command's own flags.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m gateway",
        usage="python -m gateway [run | pairing ... | doctor ...] [flags]",
        description="Run the clawgate gateway, or manage it (pairing, doctor).",
        epilog=COMMANDS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"clawgate {__version__}")
    parser.add_argument("--port", type=_port, help="listen port (HTTP and WebSocket)")
    parser.add_argument(
        "--bind", type=_choice("--bind", BIND_MODES), help="loopback | lan | auto | custom"
    )
    parser.add_argument(
        "--allow-unconfigured",
        action="store_true",
        help="start without a config file or without gateway.mode=local",
    )
    parser.add_argument("--token", help="shared gateway token (prefer OPENCLAW_GATEWAY_TOKEN)")
    parser.add_argument(
        "--password", help="shared gateway password (prefer OPENCLAW_GATEWAY_PASSWORD)"
    )
    parser.add_argument(
        "--auth", type=_choice("--auth", AUTH_MODES), help="none | token | password"
    )
    parser.add_argument(
        "--force", action="store_true", help="stop whatever listens on the port first"
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    parser.add_argument("--log-level", choices=sorted(logs.LEVELS), help="log level (default info)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # `gateway run` and `run` are the same foreground command as no subcommand.
    if args[:1] == ["gateway"]:
        args = args[1:]
    if args[:1] == ["run"]:
        args = args[1:]
    if args[:1] == ["pairing"]:
        gc.enable()  # only a start runs with collections paused (see `run`)
        from channels.pairing_cli import main as pairing_main

        return pairing_main(args[1:])
    if args[:1] == ["doctor"]:
        gc.enable()
        from gateway.doctor import main as doctor_main

        return doctor_main(args[1:])
    ns = build_parser().parse_args(args)
    flags = Flags(
        port=ns.port,
        bind=ns.bind,
        token=ns.token,
        password=ns.password,
        auth=ns.auth,
        allow_unconfigured=ns.allow_unconfigured,
        force=ns.force,
        verbose=ns.verbose,
    )
    level = "debug" if ns.verbose else ns.log_level or os.environ.get("OPENCLAW_LOG_LEVEL", "info")
    logs.setup(level)
    try:
        return run(flags)
    except StartupError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        return exc.exit_code


def run(flags: Flags) -> int:
    # A start allocates a great deal and frees almost nothing (modules, classes, config):
    # cyclic collections during it are ~3 % of the work before the socket listens and find
    # nothing. `python -m gateway` pauses them from its first line (gateway/__main__.py);
    # they resume once the subsystems are attached, with everything so far frozen out of
    # later full collections (as the SDK imports are, gateway/agents/model_turn.py).
    gc.disable()
    try:
        return _run(flags)
    finally:
        gc.enable()


def _run(flags: Flags) -> int:
    from gateway import assembly
    from gateway.lock import StateLock
    from gateway.portfree import free_port
    from gateway.runtime import Gateway
    from gateway.server import (
        bind_socket,
        load_for_startup,
        register_secrets,
        resolve_settings,
        serve,
    )

    env = os.environ
    _raise_fd_limit()
    log.info("loading configuration…")
    listen = load_for_startup(flags, env)
    log.info("resolving authentication…")
    settings = resolve_settings(flags, listen, env)
    env_port = env.get("OPENCLAW_GATEWAY_PORT", "")
    if flags.port is None and env_port.strip() and parse_env_port(env_port) is None:
        log.warning(
            "ignoring OPENCLAW_GATEWAY_PORT=%r: not a port (1-65535, or host:port); using %d",
            env_port,
            settings.port,
        )
    register_secrets(listen, settings, env)
    for note in settings.auth.notes:
        log.warning(note)
    log.info("starting...")
    if settings.seeded_origins:
        log.info(
            "seeded gateway.controlUi.allowedOrigins %s for bind=%s (this run only, config not"
            " written); add other origins to gateway.controlUi.allowedOrigins if needed.",
            settings.seeded_origins,
            settings.bind,
        )
    lock = StateLock(settings.state_dir, settings.config_path, settings.port)
    lock.acquire()
    try:
        if settings.auth.generated:
            token_file = runtime_token_path(settings.state_dir)
            fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(settings.auth.token or "")
            log.warning(
                "the generated runtime token is in %s (readable by this user only)", token_file
            )
        if flags.force:
            free_port(settings.host, settings.port)
        sock = bind_socket(settings.host, settings.port)
        log.info("starting HTTP server...")
        if settings.host not in LOOPBACK_HOSTS:
            log.warning(
                "⚠️  Gateway is binding to a non-loopback address. Ensure authentication is"
                " configured before exposing it to public networks."
            )
        # Listen first: the subsystems are imported and attached once the socket answers
        # probes (a cold start to /healthz is mostly imports); /readyz waits for them.
        gateway = Gateway(settings=settings, listen_section=listen.config.gateway)
        finished: list[LoadedConfig] = []

        def preload() -> None:
            # The sections beyond `gateway` are validated here, after the socket listens;
            # a bad one stops the start with the same message and exit code as before.
            finished.append(listen.finish())
            assembly.preload()

        gateway.preload = preload

        def attach(gw: Gateway) -> None:
            from gateway.agents.roster import defaults_chain

            gw.loaded = finished[0]
            for warning in gw.loaded.warnings:
                log.warning(warning)
            register_secrets(gw.loaded, settings, env)
            log.info("agent model: %s", defaults_chain(gw.loaded.config).primary)
            for problem in credential_problems(gw.loaded.config, env):
                log.warning(problem)
            assembly.attach_services(gw)
            gc.freeze()
            gc.enable()

        gateway.attach = attach
        gateway.drain_timeout_s = drain_timeout(env)
        code = asyncio.run(serve(gateway, sock))
        restart = gateway.restart_requested and code == 0
        sock.close()
        if isinstance(gateway.start_error, StartupError):
            raise gateway.start_error
    finally:
        lock.release()
    if restart:
        # Same PID and arguments; the lock is free and the port was closed above.
        log.info("re-executing: %s -m gateway %s", sys.executable, " ".join(sys.argv[1:]))
        logging.shutdown()
        os.execv(sys.executable, [sys.executable, "-m", "gateway", *sys.argv[1:]])
    return code


def credential_problems(config: OpenClawConfig, env: Mapping[str, str]) -> list[str]:
    """One line per configured model whose provider has no usable credentials.

    Said at startup, so a missing key shows in the first log lines rather than as a failed
    first reply.
    """
    from gateway.agents.model_turn import provider_settings_from_config
    from gateway.agents.roster import model_chain, roster
    from providers.types import MissingCredentials

    problems: list[str] = []
    seen: set[str] = set()
    for agent_id in roster(config).agent_ids:
        for ref in model_chain(config, agent_id).candidates:
            provider = ref.partition("/")[0]
            if provider in seen:
                continue
            seen.add(provider)
            try:
                provider_settings_from_config(config, provider, env)
            except MissingCredentials as exc:
                problems.append(f"model {ref}: {exc} (turns on it will fall back or fail)")
    return problems


DRAIN_TIMEOUT_ENV = "CLAWGATE_DRAIN_TIMEOUT_SECONDS"


def drain_timeout(env: Mapping[str, str]) -> float:
    """Seconds a SIGTERM waits for in-flight agent runs (default 10; Fly's kill_timeout is set above it)."""
    raw = env.get(DRAIN_TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else 10.0
    except ValueError:
        log.warning("ignoring %s=%r: not a number of seconds", DRAIN_TIMEOUT_ENV, raw)
        return 10.0
    return min(max(value, 0.5), 300.0)


def _raise_fd_limit() -> None:
    # Each WebSocket client holds a descriptor; many hosts default to a soft limit of 1024.
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            log.debug("could not raise the open-file limit from %d", soft)

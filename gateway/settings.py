"""Resolve the runtime settings (port, bind, auth) from flags → env → config → defaults."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config.gateway_section import SecretInput, SecretRef, WithGateway
from gateway.config.secrets import SecretError, resolve_secret
from gateway.paths import runtime_token_path

DEFAULT_PORT = 18789
# The bind modes this gateway implements. OpenClaw also has `tailnet` (a Tailscale address);
# nothing here finds one, so it is refused (flag: exit 1, config: exit 78) rather than quietly
# meaning loopback.
BIND_MODES = ("loopback", "lan", "auto", "custom")
AUTH_MODES = ("none", "token", "password", "trusted-proxy")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class StartupError(Exception):
    """Startup cannot continue; `lines` go to stderr and the process exits with `exit_code`."""

    def __init__(self, exit_code: int, *lines: str) -> None:
        self.exit_code = exit_code
        self.lines = list(lines)
        super().__init__(" ".join(lines))


EX_CONFIG = 78


@dataclass(frozen=True)
class Flags:
    port: int | None = None
    bind: str | None = None
    token: str | None = None
    password: str | None = None
    auth: str | None = None
    allow_unconfigured: bool = False
    force: bool = False
    verbose: bool = False


@dataclass
class AuthSettings:
    mode: str  # none | token | password
    token: str | None = None
    password: str | None = None
    generated: bool = False
    notes: list[str] = field(default_factory=list)
    # Where the secret came from, for people (never the secret): "OPENCLAW_GATEWAY_TOKEN",
    # "gateway.auth.token", "--token", "generated" ...
    source: str = ""

    @property
    def secret(self) -> str | None:
        return self.password if self.mode == "password" else self.token


@dataclass
class RuntimeSettings:
    port: int
    bind: str
    host: str
    auth: AuthSettings
    container: bool
    allowed_origins: list[str]
    seeded_origins: list[str]
    state_dir: Path
    config_path: Path


def is_container(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    if env.get("FLY_MACHINE_ID", "").strip() and env.get("FLY_APP_NAME", "").strip():
        return True
    for marker in ("/.dockerenv", "/run/.containerenv", "/var/run/.containerenv"):
        if os.path.exists(marker):
            return True
    try:
        with open("/proc/1/cgroup", encoding="utf-8") as fh:
            return bool(re.search(r"docker|containerd|kubepods|lxc", fh.read()))
    except OSError:
        return False


def parse_env_port(value: str | None) -> int | None:
    """`OPENCLAW_GATEWAY_PORT`: digits or host:port; invalid values are ignored (reference)."""
    if not value:
        return None
    value = value.strip()
    match = re.fullmatch(r"(?:\[[^\]]+\]:|[^:\[\]]+:)?(\d{1,5})", value)
    if not match:
        return None
    port = int(match.group(1))
    return port if 1 <= port <= 65535 else None


def resolve_port(flags: Flags, config: WithGateway, env: Mapping[str, str]) -> int:
    if flags.port is not None:
        return flags.port
    env_port = parse_env_port(env.get("OPENCLAW_GATEWAY_PORT"))
    if env_port is not None:
        return env_port
    return config.gateway.port or DEFAULT_PORT


def resolve_bind(flags: Flags, config: WithGateway, container: bool) -> tuple[str, str]:
    mode = flags.bind or config.gateway.bind or ("auto" if container else "loopback")
    if mode == "loopback":
        return mode, "127.0.0.1"
    if mode == "lan":
        return mode, "0.0.0.0"
    if mode == "custom":
        host = (config.gateway.custom_bind_host or "").strip()
        if not host:
            return mode, "0.0.0.0"
        try:
            return mode, str(ipaddress.IPv4Address(host))
        except ValueError as exc:
            raise StartupError(
                EX_CONFIG,
                f"Invalid config: gateway.customBindHost {host!r} is not an IPv4 address"
                " (bind=custom listens on that address, or on 0.0.0.0 when it is unset).",
            ) from exc
    if mode == "auto":
        return mode, "0.0.0.0" if container else "127.0.0.1"
    raise StartupError(
        EX_CONFIG,
        f'Invalid config: gateway.bind="{mode}" is not supported by this gateway.'
        f" Use {', '.join(BIND_MODES)}.",
    )


def resolve_auth(
    flags: Flags,
    config: WithGateway,
    env: Mapping[str, str],
    host: str,
    bind: str,
    container: bool,
) -> AuthSettings:
    auth_cfg = config.gateway.auth
    try:
        cfg_token = resolve_secret(auth_cfg.token, "gateway.auth.token", env)
        cfg_password = resolve_secret(auth_cfg.password, "gateway.auth.password", env)
    except SecretError as exc:
        raise StartupError(EX_CONFIG, f"Invalid config: {exc}") from exc
    env_token = env.get("OPENCLAW_GATEWAY_TOKEN", "").strip() or None
    env_password = env.get("OPENCLAW_GATEWAY_PASSWORD", "").strip() or None
    token = flags.token or cfg_token or env_token
    password = flags.password or cfg_password or env_password
    token_source = (
        "--token"
        if flags.token
        else _config_source("gateway.auth.token", auth_cfg.token)
        if cfg_token
        else "OPENCLAW_GATEWAY_TOKEN"
    )
    password_source = (
        "--password"
        if flags.password
        else _config_source("gateway.auth.password", auth_cfg.password)
        if cfg_password
        else "OPENCLAW_GATEWAY_PASSWORD"
    )
    notes: list[str] = []
    if flags.password:
        notes.append("--password is visible in process listings; prefer OPENCLAW_GATEWAY_PASSWORD.")
    mode = flags.auth or auth_cfg.mode
    if mode is None:
        if token and password and not flags.token and not flags.password:
            raise StartupError(
                EX_CONFIG,
                "Invalid config: both a gateway token and a gateway password are configured,"
                " but gateway.auth.mode is unset. Set gateway.auth.mode to token or password.",
            )
        mode = "password" if password and not flags.token else "token"
    if mode == "trusted-proxy":
        raise StartupError(EX_CONFIG, "gateway.auth.mode=trusted-proxy is not supported yet.")

    if mode == "password" and not password:
        raise StartupError(
            EX_CONFIG,
            "Gateway auth is set to password, but no password is configured.",
            "Set gateway.auth.password (or OPENCLAW_GATEWAY_PASSWORD), or pass --password.",
        )
    has_secret = (mode == "token" and bool(token)) or (mode == "password" and bool(password))
    if host not in LOOPBACK_HOSTS and not has_secret:
        lines = [f"Refusing to bind gateway to {bind} without auth."]
        if container:
            lines.append(
                "A container environment was detected, where the gateway listens on all"
                " interfaces (0.0.0.0) so that port forwarding works."
            )
            lines.append(
                "Set OPENCLAW_GATEWAY_TOKEN or OPENCLAW_GATEWAY_PASSWORD, or pass"
                " --token/--password to start with auth."
            )
        else:
            lines.append(
                "Set gateway.auth.token/password (or OPENCLAW_GATEWAY_TOKEN/OPENCLAW_GATEWAY_PASSWORD)"
                " or pass --token/--password."
            )
        raise StartupError(EX_CONFIG, *lines)
    if mode == "none":
        notes.append(
            "Gateway auth mode=none is configured explicitly; every connection is unauthenticated."
        )
        return AuthSettings(mode="none", notes=notes)
    if mode == "token" and not token:
        notes.append(
            "No gateway token is configured, so a runtime token was generated for this start only"
            " (the config was not changed; a restart makes a new one). Persist one with"
            " gateway.auth.token or OPENCLAW_GATEWAY_TOKEN."
        )
        return AuthSettings(
            mode="token",
            token=secrets.token_urlsafe(32),
            generated=True,
            notes=notes,
            source="generated",
        )
    source = password_source if mode == "password" else token_source
    return AuthSettings(mode=mode, token=token, password=password, notes=notes, source=source)


def _config_source(key: str, value: SecretInput | None) -> str:
    # A SecretRef names its variable; inline text (or `${VAR}`, already substituted) the key.
    if isinstance(value, SecretRef):
        return f"{value.id} (via {key})"
    return key


def fly_app_url(env: Mapping[str, str]) -> str | None:
    """`https://<app>.fly.dev` when running on a Fly Machine, else None."""
    app = env.get("FLY_APP_NAME", "").strip().lower()
    on_fly = bool(app and env.get("FLY_MACHINE_ID", "").strip())
    if on_fly and re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", app):
        return f"https://{app}.fly.dev"
    return None


def control_ui_hint(
    settings: RuntimeSettings, config: WithGateway, env: Mapping[str, str]
) -> list[str]:
    """What a first run needs to know once it is ready: where the UI is, where its secret is.

    Never the secret itself: only the variable, key, flag or file that holds it.
    """
    base = config.gateway.control_ui.base_path + "/"
    fly = fly_app_url(env)
    host = settings.host if settings.host not in ("0.0.0.0", "::") else "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    url = f"{fly}{base}" if fly else f"http://{host}:{settings.port}{base}"
    lines = []
    if config.gateway.control_ui.enabled:
        lines.append(f"Control UI: {url}")
    auth = settings.auth
    if auth.mode == "none":
        lines.append("gateway auth is off (gateway.auth.mode=none): no token is needed")
    elif auth.generated:
        path = runtime_token_path(settings.state_dir)
        lines.append(f"gateway token: generated for this run, in {path} (cat it to log in)")
    else:
        what = "password" if auth.mode == "password" else "token"
        lines.append(f"gateway {what}: from {auth.source}")
    return lines


def seed_origins(
    config: WithGateway, host: str, port: int, env: Mapping[str, str] | None = None
) -> tuple[list[str], list[str]]:
    """Allowed browser origins; loopback origins for this port are always allowed at runtime.

    On a Fly Machine the app's own `https://<FLY_APP_NAME>.fly.dev` is added too: it is where
    the Fly guide sends the user, and nobody but this app serves pages from that origin.
    """
    configured = [o.rstrip("/") for o in config.gateway.control_ui.allowed_origins]
    seeded = [f"http://localhost:{port}", f"http://127.0.0.1:{port}"]
    fly = fly_app_url(env or {})
    if fly:
        seeded.append(fly)
    added = [o for o in seeded if o not in configured]
    return configured + added, (added if host not in LOOPBACK_HOSTS else [])

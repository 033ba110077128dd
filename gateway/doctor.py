"""`python -m gateway doctor [--probe] [--fix]`: check what a gateway needs, one line each.

Run it where the gateway runs (on Fly: `fly ssh console`, then `python -m gateway doctor`).
Each line is `✓` (fine), `!` (works, but worth a look) or `✗` (will not work), followed by what
was found and, for `!`/`✗`, the fix. The exit code is 1 when any line is `✗`.

Read-only by default: files are only read, locks only tested, the port only bound and released.
`--probe` also makes one cheap authenticated call per provider key (a model list, through the
provider's SDK) and per channel token (Telegram `getMe`, Discord `GET /users/@me`, through the
channel libraries and the same base-URL settings the channels use). `--fix` makes the repairs
that cannot lose anything: it creates a missing state dir, makes the config file private, and
straightens curly quotes in the config (keeping the old file as `openclaw.json.bak`) when that
alone makes it valid.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import fcntl
import json
import os
import shutil
import socket
import stat
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gateway.config.errors import ConfigError
from gateway.config.loader import LoadedConfig, read_config_text, validate_text
from gateway.config.models import OpenClawConfig
from gateway.lock import read_payload
from gateway.paths import config_path, lock_dir, runtime_token_path, state_dir
from gateway.settings import (
    BIND_MODES,
    LOOPBACK_HOSTS,
    Flags,
    RuntimeSettings,
    StartupError,
    fly_app_url,
    is_container,
    resolve_auth,
    resolve_bind,
    resolve_port,
    seed_origins,
)

Status = Literal["ok", "warn", "fail"]
MARKS: dict[Status, str] = {"ok": "✓", "warn": "!", "fail": "✗"}
MIN_TOKEN_CHARS = 16
PROBE_TIMEOUT_S = 10.0
CURLY: dict[str, str | int | None] = {"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"}


@dataclass(frozen=True)
class Check:
    status: Status
    name: str
    detail: str
    fix: str = ""

    def render(self) -> str:
        line = f"{MARKS[self.status]} {self.name}: {self.detail}"
        if self.fix and self.status != "ok":
            line += f" — fix: {self.fix}"
        return line


@dataclass
class Doctor:
    env: Mapping[str, str]
    probe: bool = False
    fix: bool = False
    # The filesystem the container itself runs from; tests point it elsewhere.
    root: Path = Path("/")
    # The gateway's own --port / --bind, when its command line sets them (Fly: 3000, lan).
    flags: Flags = field(default_factory=Flags)
    checks: list[Check] = field(default_factory=list)
    loaded: LoadedConfig | None = None
    running_port: int | None = None

    @property
    def state(self) -> Path:
        return state_dir(self.env)

    @property
    def config_file(self) -> Path:
        return config_path(self.env)

    @property
    def container(self) -> bool:
        return is_container(self.env)

    def add(self, status: Status, name: str, detail: str, fix: str = "") -> None:
        self.checks.append(Check(status, name, detail, fix))

    def run(self) -> list[Check]:
        self.check_state_dir()
        self.check_config()
        self.check_lock()
        config = self.loaded.config if self.loaded else OpenClawConfig()
        settings = self.check_auth(config)
        self.check_providers(config)
        self.check_channels(config)
        self.check_origins(config, settings)
        self.check_port(config, settings)
        return self.checks

    # --- files ---------------------------------------------------------------------------

    def check_state_dir(self) -> None:
        name, path = "state dir", self.state
        if not path.exists():
            if self.fix:
                path.mkdir(parents=True, mode=0o700)
                self.add("ok", name, f"{path} created (it did not exist)")
            else:
                self.add(
                    "fail",
                    name,
                    f"{path} does not exist",
                    f"mkdir -p {path} (on Fly: mount the volume there), or run doctor --fix",
                )
                return
        if not path.is_dir():
            self.add("fail", name, f"{path} is not a directory", "point OPENCLAW_STATE_DIR at one")
            return
        if not os.access(path, os.W_OK | os.X_OK):
            self.add(
                "fail",
                name,
                f"{path} is not writable by uid {os.geteuid()}",
                f"chown -R {os.geteuid()} {path} (the Fly image's entrypoint does this at start)",
            )
            return
        where = _mount_of(path)
        if path.stat().st_dev == self.root.stat().st_dev:
            if self.container:
                self.add(
                    "fail",
                    name,
                    f"{path} is on the container's own filesystem: sessions, config and"
                    " pairing approvals are lost on every deploy",
                    'mount a volume there (fly.toml [mounts] destination = "/data", with a'
                    " volume from fly volumes create)",
                )
                return
            self.add("ok", name, f"{path} is writable (on the root filesystem, not a container)")
            return
        self.add("ok", name, f"{path} is writable and on its own volume ({where})")

    def check_config(self) -> None:
        name, path = "config", self.config_file
        try:
            raw = read_config_text(path)
        except ConfigError as exc:
            self.add("fail", name, "; ".join(exc.lines()), f"make {path} a readable regular file")
            return
        if raw is None:
            self.add(
                "warn",
                name,
                f"no config file at {path}: the gateway starts only with --allow-unconfigured"
                " (built-in defaults)",
                'create it with { gateway: { mode: "local" } }, or keep the flag',
            )
            return
        self._validate(path, raw)
        self._check_private(path)

    def _validate(self, path: Path, raw: str) -> None:
        name = "config"
        try:
            self.loaded = validate_text(path, raw, self.env)
        except ConfigError as exc:
            repaired = self._straighten_quotes(path, raw) if self.fix else None
            if repaired is None:
                self.add(
                    "fail",
                    name,
                    "; ".join(exc.lines()),
                    f"edit {path} at the place shown (a running gateway keeps its last good"
                    " config meanwhile)",
                )
                return
            self.loaded = repaired
            self.add("ok", name, f"{path} had curly quotes; straightened (old file: {path}.bak)")
        else:
            mode = self.loaded.config.gateway.mode
            if mode != "local":
                self.add(
                    "warn",
                    name,
                    f"{path} is valid but gateway.mode is {mode or 'unset'}: the gateway starts"
                    " only with --allow-unconfigured",
                    'set gateway.mode to "local"',
                )
            else:
                self.add("ok", name, f"{path} is valid")

    def _straighten_quotes(self, path: Path, raw: str) -> LoadedConfig | None:
        """The config with curly quotes made straight, written with a .bak, if that fixes it."""
        if not any(c in raw for c in CURLY):
            return None
        text = raw.translate(str.maketrans(CURLY))
        try:
            loaded = validate_text(path, text, self.env)
        except ConfigError:
            return None
        backup = path.with_name(path.name + ".bak")
        shutil.copy2(path, backup)
        os.chmod(backup, 0o600)  # the old text holds the same secrets
        tmp = path.with_name(f".{path.name}.doctor.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp, path)
        return loaded

    def _check_private(self, path: Path) -> None:
        mode = stat.S_IMODE(path.stat().st_mode)
        if not mode & 0o077:
            return
        if self.fix:
            os.chmod(path, mode & 0o700)
            self.add("ok", "config access", f"{path} was readable by others; now mode 0600")
            return
        self.add(
            "warn",
            "config access",
            f"{path} is readable by other users (mode {mode:o}) and may hold secrets",
            f"chmod 600 {path}, or run doctor --fix",
        )

    def check_lock(self) -> None:
        name = "lock"
        path = lock_dir(self.state) / "gateway.state.lock"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            self.add("ok", name, "no gateway is running on this state dir")
            return
        except OSError as exc:
            self.add("fail", name, f"cannot open {path}: {exc.strerror}", "run doctor as root")
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            payload = read_payload(path)
            port = payload.get("port")
            self.running_port = port if isinstance(port, int) else None
            self.add(
                "ok",
                name,
                f"held by the running gateway (pid {payload.get('pid', '?')}, port {port})",
            )
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            self.add("ok", name, "free (left by a gateway that stopped; the next start takes it)")
        finally:
            os.close(fd)

    # --- secrets -------------------------------------------------------------------------

    def check_auth(self, config: OpenClawConfig) -> RuntimeSettings | None:
        name = "gateway token"
        try:
            port = resolve_port(self.flags, config, self.env)
            bind, host = resolve_bind(self.flags, config, self.container)
            auth = resolve_auth(self.flags, config, self.env, host, bind, self.container)
        except StartupError as exc:
            self.add("fail", name, exc.lines[0], exc.lines[-1] if len(exc.lines) > 1 else "")
            return None
        allowed, seeded = seed_origins(config, host, port, self.env)
        settings = RuntimeSettings(
            port=port,
            bind=bind,
            host=host,
            auth=auth,
            container=self.container,
            allowed_origins=allowed,
            seeded_origins=seeded,
            state_dir=self.state,
            config_path=self.config_file,
        )
        secret = auth.secret or ""
        what = "password" if auth.mode == "password" else "token"
        if auth.mode == "none":
            self.add("warn", name, "auth is off (gateway.auth.mode=none)", "set a token")
        elif auth.generated:
            self.add(
                "warn",
                name,
                f"none set: each start generates a new one (in {runtime_token_path(self.state)})",
                "set OPENCLAW_GATEWAY_TOKEN to a long random value"
                " (fly secrets set OPENCLAW_GATEWAY_TOKEN=$(openssl rand -hex 32))",
            )
        elif len(secret) < MIN_TOKEN_CHARS:
            self.add(
                "warn",
                name,
                f"the {what} from {auth.source} is only {len(secret)} characters",
                f"use at least {MIN_TOKEN_CHARS} (openssl rand -hex 32)",
            )
        else:
            self.add("ok", name, f"{what} set (from {auth.source}, {len(secret)} characters)")
        return settings

    def check_providers(self, config: OpenClawConfig) -> None:
        from gateway.agents.model_turn import provider_settings_from_config
        from providers.types import MissingCredentials, ProviderSettings

        ready: list[tuple[str, ProviderSettings]] = []
        for provider in _providers(config):
            name = f"provider {provider}"
            try:
                settings = provider_settings_from_config(config, provider, self.env)
            except MissingCredentials as exc:
                self.add("fail", name, str(exc), _set_secret_hint(str(exc)))
                continue
            ready.append((provider, settings))
            if not self.probe:
                self.add("ok", name, "key present (not tried; --probe tries it)")
        if self.probe and ready:
            for provider, result in zip(
                [p for p, _ in ready], _run(_probe_providers([s for _, s in ready])), strict=True
            ):
                self.checks.append(_probe_check(f"provider {provider}", "key", result))

    def check_channels(self, config: OpenClawConfig) -> None:
        from gateway.config.secrets import SecretError

        probes: list[tuple[str, str]] = []
        if config.channels.discord is not None:
            from channels.discord.channel import TOKEN_ENV as DISCORD_ENV
            from channels.discord.channel import resolve_token as discord_token

            try:
                token = discord_token(config.channels.discord, self.env)
            except SecretError as exc:
                self.add("fail", "discord", str(exc), "set that variable")
            else:
                if token:
                    probes.append(("discord", token))
                else:
                    self.add(
                        "fail",
                        "discord",
                        "channels.discord is configured but has no token",
                        f"set {DISCORD_ENV} (or channels.discord.token)",
                    )
        if config.channels.telegram is not None:
            from channels.telegram.channel import TOKEN_ENV as TELEGRAM_ENV
            from channels.telegram.channel import TokenError
            from channels.telegram.channel import resolve_token as telegram_token

            try:
                token = telegram_token(config.channels.telegram, self.env)
            except TokenError as exc:
                self.add("fail", "telegram", str(exc), "fix that key or file")
            else:
                if token:
                    probes.append(("telegram", token))
                else:
                    self.add(
                        "fail",
                        "telegram",
                        "channels.telegram is configured but has no token",
                        f"set {TELEGRAM_ENV} (or channels.telegram.botToken)",
                    )
        if not probes:
            if config.channels.discord is None and config.channels.telegram is None:
                self.add("ok", "channels", "none configured (Control UI and WebSocket only)")
            return
        if not self.probe:
            for channel, _ in probes:
                self.add("ok", channel, "token present (not tried; --probe tries it)")
            return
        results = _run(_probe_channels(config, probes, self.env))
        for (channel, _), result in zip(probes, results, strict=True):
            self.checks.append(_probe_check(channel, "token", result))

    # --- network -------------------------------------------------------------------------

    def check_origins(self, config: OpenClawConfig, settings: RuntimeSettings | None) -> None:
        name = "allowed origins"
        if not config.gateway.control_ui.enabled:
            self.add("ok", name, "the Control UI is disabled")
            return
        fly = fly_app_url(self.env)
        configured = config.gateway.control_ui.allowed_origins
        if fly:
            how = (
                "listed in gateway.controlUi.allowedOrigins"
                if fly in configured
                else ("added by the gateway at each start on Fly (not written to the config)")
            )
            self.add("ok", name, f"{fly} may open the Control UI ({how})")
            return
        if settings is None or settings.host in LOOPBACK_HOSTS:
            self.add("ok", name, "loopback bind: http://127.0.0.1 and http://localhost only")
            return
        if not configured:
            self.add(
                "warn",
                name,
                f"only http://localhost:{settings.port} and http://127.0.0.1:{settings.port} may"
                " open the Control UI; a browser using another address is refused",
                'add its origin (e.g. "https://gw.example.com") to'
                " gateway.controlUi.allowedOrigins",
            )
            return
        self.add("ok", name, ", ".join(configured))

    def check_port(self, config: OpenClawConfig, settings: RuntimeSettings | None) -> None:
        if self.running_port is not None:
            port = self.running_port
            status = _healthz(port)
            if status == 200:
                self.add("ok", "port", f"the gateway answers on 127.0.0.1:{port} (/healthz 200)")
            else:
                self.add(
                    "fail",
                    "port",
                    f"the gateway holds the lock but 127.0.0.1:{port}/healthz"
                    f" {'answered ' + str(status) if status else 'does not answer'}",
                    "read the gateway log (fly logs), or restart it",
                )
            return
        port = settings.port if settings else resolve_port(self.flags, config, self.env)
        host = settings.host if settings else "127.0.0.1"
        error = _try_bind(host, port)
        if error is None:
            self.add("ok", "port", f"{host}:{port} is free for the gateway")
        else:
            self.add(
                "fail",
                "port",
                f"{host}:{port} cannot be bound: {error}",
                "stop what listens there (or start with --force), or choose another --port",
            )


# --- helpers ---------------------------------------------------------------------------------


def _providers(config: OpenClawConfig) -> list[str]:
    """Providers the agents' model chains use, then any other configured one."""
    from gateway.agents.roster import model_chain, roster

    seen: list[str] = []
    for agent_id in roster(config).agent_ids:
        for ref in model_chain(config, agent_id).candidates:
            provider = ref.partition("/")[0]
            if provider not in seen:
                seen.append(provider)
    seen += [p for p in config.models.providers if p not in seen]
    return seen


def _set_secret_hint(message: str) -> str:
    var = next((w for w in message.replace("(", " ").split() if w.endswith("_API_KEY")), None)
    return f"fly secrets set {var}=… (or export it)" if var else "see the message"


def _mount_of(path: Path) -> str:
    """`<mount point> <fs type>` of the mount holding `path`, from /proc/self/mountinfo."""
    best, kind = "", ""
    resolved = str(path.resolve())
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as fh:
            for line in fh:
                left, _, right = line.partition(" - ")
                point = left.split()[4].replace("\\040", " ")
                if (resolved == point or resolved.startswith(point.rstrip("/") + "/")) and len(
                    point
                ) >= len(best):
                    best, kind = point, right.split()[0]
    except (OSError, IndexError):
        return "mount unknown"
    return f"{best} {kind}".strip() or "mount unknown"


def _healthz(port: int) -> int | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=3) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return None


def _try_bind(host: str, port: int) -> str | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _run(coro: object) -> list[BaseException | str]:
    return asyncio.run(coro)  # type: ignore[arg-type]


def _probe_check(name: str, what: str, result: BaseException | str) -> Check:
    from providers.classify import classify

    if isinstance(result, str):
        return Check("ok", name, f"{what} accepted ({result})")
    failure = classify(result)
    status = f"HTTP {failure.status}" if failure.status else failure.preview or "refused"
    if failure.reason == "auth" or _is_unauthorized(result):
        return Check(
            "fail", name, f"{what} refused ({status})", f"renew the {what} and set it again"
        )
    return Check(
        "warn",
        name,
        f"could not check the {what}: {type(result).__name__}: {str(result)[:120]}",
        "check the network and the base URL",
    )


def _is_unauthorized(exc: BaseException) -> bool:
    import discord
    from telegram.error import InvalidToken

    return isinstance(exc, InvalidToken | discord.LoginFailure)


async def _probe_providers(settings: Sequence[object]) -> list[BaseException | str]:
    return list(
        await asyncio.gather(*(_probe_provider(s) for s in settings), return_exceptions=True)
    )


async def _probe_provider(settings: object) -> str:
    from gateway.tls import client_context
    from providers.types import ProviderSettings

    assert isinstance(settings, ProviderSettings)
    if settings.api == "anthropic-messages":
        import anthropic

        client = anthropic.AsyncAnthropic(
            api_key=settings.api_key,
            auth_token=settings.bearer_token,
            base_url=settings.base_url,
            max_retries=0,
            timeout=PROBE_TIMEOUT_S,
            http_client=anthropic.DefaultAsyncHttpxClient(
                timeout=PROBE_TIMEOUT_S, verify=client_context()
            ),
        )
        async with client:
            page = await client.models.list(limit=1)
            return f"{len(page.data)} model(s) listed"
    import openai

    oclient = openai.AsyncOpenAI(
        api_key=settings.api_key,
        base_url=settings.base_url,
        max_retries=0,
        timeout=PROBE_TIMEOUT_S,
        http_client=openai.DefaultAsyncHttpxClient(
            timeout=PROBE_TIMEOUT_S, verify=client_context()
        ),
    )
    async with oclient:
        listed = await oclient.models.list()
        return f"{len(listed.data)} model(s) listed"


async def _probe_channels(
    config: OpenClawConfig, probes: list[tuple[str, str]], env: Mapping[str, str]
) -> list[BaseException | str]:
    async def one(channel: str, token: str) -> str:
        if channel == "discord":
            return await _probe_discord(token, env)
        return await _probe_telegram(config, token)

    return list(await asyncio.gather(*(one(c, t) for c, t in probes), return_exceptions=True))


async def _probe_discord(token: str, env: Mapping[str, str]) -> str:
    """`GET /users/@me` through discord.py's HTTP client (honours DISCORD_API_URL)."""
    import discord.http

    from channels.discord.library import API_URL_ENV, validate_api_url

    url = env.get(API_URL_ENV, "").strip()
    if url:
        discord.http.Route.BASE = str(validate_api_url(url))
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    try:
        me = await asyncio.wait_for(http.static_login(token), PROBE_TIMEOUT_S)
        return f"bot {me.get('username', '?')}"
    finally:
        await http.close()


async def _probe_telegram(config: OpenClawConfig, token: str) -> str:
    """`getMe` through python-telegram-bot, at channels.telegram.apiRoot when set."""
    from telegram import Bot

    from channels.telegram.channel import DEFAULT_API_ROOT

    telegram = config.channels.telegram
    root = ((telegram.api_root if telegram else None) or DEFAULT_API_ROOT).rstrip("/")
    async with Bot(token, base_url=f"{root}/bot", base_file_url=f"{root}/file/bot") as bot:
        me = await asyncio.wait_for(bot.get_me(), PROBE_TIMEOUT_S)
        return f"@{me.username}"


# --- command line ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gateway doctor",
        description="Check the config, state dir, lock, gateway token, provider keys, channel"
        " tokens, allowed origins and port; print one line each with the fix."
        " Exit 1 when something is broken (✗).",
    )
    parser.add_argument(
        "--probe",
        action="store_true",
        help="also try each provider key and channel token with one cheap authenticated call",
    )
    parser.add_argument(
        "--fix",
        action="store_true",
        help="make safe repairs: create the state dir, chmod 600 the config, straighten curly"
        " quotes (with a .bak)",
    )
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument("--port", type=int, help="the gateway's --port, if its command sets one")
    parser.add_argument(
        "--bind", choices=BIND_MODES, help="the gateway's --bind, if its command sets one"
    )
    return parser


def main(argv: Sequence[str], env: Mapping[str, str] | None = None, root: Path = Path("/")) -> int:
    try:
        ns = _parser().parse_args(list(argv))
    except SystemExit as exc:
        return 0 if exc.code in (0, None) else 1
    doctor = Doctor(
        env=os.environ if env is None else env,
        probe=ns.probe,
        fix=ns.fix,
        flags=Flags(port=ns.port, bind=ns.bind),
        root=root,
    )
    checks = doctor.run()
    if ns.json:
        print(json.dumps([c.__dict__ for c in checks], ensure_ascii=False, indent=2))
    else:
        print(f"clawgate doctor — state dir {doctor.state}, config {doctor.config_file}")
        for check in checks:
            print(check.render())
        failed = sum(c.status == "fail" for c in checks)
        warned = sum(c.status == "warn" for c in checks)
        print(
            f"{failed} problem(s), {warned} warning(s)" if failed or warned else "all checks passed"
        )
    with contextlib.suppress(OSError):
        sys.stdout.flush()
    return 1 if any(c.status == "fail" for c in checks) else 0

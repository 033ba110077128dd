"""Process-wide adjustments to discord.py: API base override, reconnect cap, log routing.

discord.py has no public option for another API host. Two class attributes do it (testing spec
§3.1, verified with discord.py 2.7):

* `discord.http.Route.BASE` — every REST URL is `Route.BASE + path`, built per request;
* `discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY` — the first websocket URL of a non-sharded
  `Client` (which never asks `/gateway/bot`); RESUMEs then use READY's `resume_gateway_url`.

They are class attributes, so the override is per process (there is one Discord account per
gateway in core). `apply_api_url(None)` restores the real Discord endpoints.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import aiohttp
import discord
import discord.backoff
import discord.client
import discord.gateway
import discord.http
import yarl

from gateway.tls import client_context

log = logging.getLogger("channels.discord")

API_URL_ENV = "DISCORD_API_URL"
# discord.py's own reconnect back-off grows to 2^10 s; the reference caps at 30 s (spec §1.1).
RECONNECT_CAP_S = 30.0
GATEWAY_DISCOVERY_TIMEOUT_S = 30.0

_DEFAULT_BASE: str = discord.http.Route.BASE
_DEFAULT_GATEWAY: yarl.URL = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY


class ApiUrlError(ValueError):
    """`DISCORD_API_URL` is malformed or unusable (a configuration problem, not transient)."""


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_api_url(url: str) -> yarl.URL:
    """A versioned REST base like `https://host/api/v10`; plain http only on loopback."""
    parsed = yarl.URL(url.strip().rstrip("/"))
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ApiUrlError(f"{API_URL_ENV} must be an http(s) URL such as https://host/api/v10")
    if parsed.scheme == "http" and not _is_loopback(parsed.host):
        raise ApiUrlError(f"{API_URL_ENV}: plain http is only accepted on loopback hosts")
    return parsed


def connector() -> aiohttp.TCPConnector:
    """discord.py's default connector (no connection limit) with the process's TLS context.

    aiohttp's own default context is built at its import anyway, so this saves no memory; it
    gives Discord the same trust store and verification as every other outbound client."""
    return aiohttp.TCPConnector(limit=0, ssl=client_context())


async def discover_gateway(api_base: yarl.URL) -> yarl.URL:
    """`GET <api>/gateway` (unauthenticated) → the websocket URL served by that host."""
    timeout = aiohttp.ClientTimeout(total=GATEWAY_DISCOVERY_TIMEOUT_S)
    async with (
        aiohttp.ClientSession(timeout=timeout, connector=connector()) as session,
        session.get(str(api_base / "gateway")) as resp,
    ):
        resp.raise_for_status()
        data: Any = await resp.json(content_type=None)
    url = data.get("url") if isinstance(data, dict) else None
    if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
        raise ApiUrlError(f"{API_URL_ENV}: GET /gateway returned no websocket url")
    ws = yarl.URL(url)
    if ws.scheme == "ws" and not _is_loopback(ws.host):
        raise ApiUrlError(f"{API_URL_ENV}: plain ws is only accepted on loopback hosts")
    return ws


async def apply_api_url(url: str | None) -> None:
    """Point discord.py's REST and gateway at `url` (None: the real Discord)."""
    configure_library()
    if not url:
        discord.http.Route.BASE = _DEFAULT_BASE
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = _DEFAULT_GATEWAY
        return
    base = validate_api_url(url)
    gateway = await discover_gateway(base)
    discord.http.Route.BASE = str(base)
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway
    log.info("using Discord API at %s (gateway %s)", base, gateway)


def guard_parsers(client: discord.Client) -> None:
    """Drop a dispatch discord.py cannot parse instead of losing the connection over it.

    discord.py calls its `parse_*` handlers straight from the socket reader: a payload missing a
    field (KeyError) or of the wrong shape (TypeError) escaped `Client.connect`, so one odd event
    cost a full client restart (2 s back-off, a fresh IDENTIFY) and every message meanwhile.
    """
    parsers: dict[str, Any] = client._connection.parsers
    for event, parse in list(parsers.items()):
        if getattr(parse, "_clawgate_guarded", False):
            continue
        parsers[event] = _guarded(event, parse)


def _guarded(event: str, parse: Any) -> Any:
    def guarded(data: Any) -> Any:
        try:
            return parse(data)
        except Exception as exc:
            log.warning(
                "dropped a %s event discord.py could not read (%s: %s)",
                event,
                type(exc).__name__,
                str(exc)[:200],
            )
            return None

    guarded._clawgate_guarded = True  # type: ignore[attr-defined]
    return guarded


class _CappedBackoff(discord.backoff.ExponentialBackoff[bool]):
    """discord.py's jittered exponential back-off, never longer than RECONNECT_CAP_S."""

    def delay(self) -> float:
        return min(float(super().delay()), RECONNECT_CAP_S)


class _LibraryLogFilter(logging.Filter):
    """Show discord.py's records as `[discord]` and turn its reconnect tracebacks into one line.

    The console subsystem is the logger name's last part, so `discord.gateway` would read as
    `[gateway]` — the gateway's own tag. Reconnect attempts are routine: one warning, no stack.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.name = "channels.discord"
        try:
            text = record.getMessage()
        except Exception:  # a filter must never break the caller's logging call
            return True
        if record.exc_info and text.startswith("Attempting a reconnect"):
            exc = record.exc_info[1]
            record.msg = "gateway connection lost (%s: %s); %s"
            record.args = (type(exc).__name__, exc, text.lower())
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_configured = False


def configure_library() -> None:
    """Once per process: cap discord.py's reconnect back-off and route its log records."""
    global _configured
    if _configured:
        return
    _configured = True
    # Client.connect() builds `ExponentialBackoff()` from its module namespace.
    if hasattr(discord.client, "ExponentialBackoff"):
        discord.client.ExponentialBackoff = _CappedBackoff
    # Voice is not used (a later feature): skip discord.py's "PyNaCl/davey is not installed"
    # warnings printed at every start.
    discord.VoiceClient.warn_nacl = False
    discord.VoiceClient.warn_dave = False
    # Logger filters do not apply to records propagated from children, so set them on every
    # discord.py module logger (they exist once the package is imported).
    library_filter = _LibraryLogFilter()
    names = [
        n for n in logging.Logger.manager.loggerDict if n == "discord" or n.startswith("discord.")
    ]
    for name in names:
        logging.getLogger(name).addFilter(library_filter)

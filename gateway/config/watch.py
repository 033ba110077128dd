"""Watch the config file and apply valid edits live, the way `config.set` does.

Polling (mtime_ns, size, inode) once a second is cheap, needs no inotify (which misses edits on
some container volumes) and sees atomic replaces (a new inode) as well as in-place writes. A file
that changed but does not validate leaves the running config in place; the error is logged once
per distinct content, naming `file:line — path: reason`, so a broken edit is loud but not spammy.
`gateway.reload.mode: "off"` disables the watcher (read at start: `gateway` is restart-only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.config.errors import ConfigError
from gateway.config.loader import LoadedConfig, content_hash, read_config_text, validate_text

if TYPE_CHECKING:
    from gateway.runtime import Gateway, Service

log = logging.getLogger("gateway.reload")

POLL_INTERVAL_S = 1.0
# A change must hold still this long before it is read: editors that write in place would
# otherwise be caught half-way and reported as invalid.
DEFAULT_DEBOUNCE_S = 0.2
POLL_ENV = "CLAWGATE_CONFIG_POLL_MS"
EXTENSION_KEY = "config.watcher"
# Same key as gateway.rpc.config_methods: file writes and reloads are serialised by one lock.
WRITE_LOCK_KEY = "config.writeLock"


@dataclass(frozen=True)
class Stamp:
    mtime_ns: int
    size: int
    inode: int


def stamp(path: Path) -> Stamp | None:
    """The file's identity and version, or None when it is missing or unreadable."""
    try:
        st = path.stat()
    except OSError:
        return None
    return Stamp(st.st_mtime_ns, st.st_size, st.st_ino)


def render_error(exc: ConfigError) -> str:
    """`openclaw.json:<line> — <path>: <reason>` (syntax: `<line>:<col> — <reason>`), joined by `; `."""
    parts = []
    for issue in exc.issues:
        text = issue.render(exc.path.name)
        if issue.line is None:
            text = f"{exc.path.name} — {text}"
        parts.append(text)
    return "; ".join(parts)


class ConfigWatcher:
    """Polls one config file; `check()` does a single round (tests call it directly)."""

    def __init__(
        self,
        gateway: Gateway,
        interval_s: float = POLL_INTERVAL_S,
        debounce_s: float = DEFAULT_DEBOUNCE_S,
    ) -> None:
        self.gateway = gateway
        self.path: Path = gateway.loaded.path
        self.interval_s = interval_s
        self.debounce_s = debounce_s
        self.last: Stamp | None = stamp(self.path)
        self.reported: str | None = None  # content hash (or "missing") last reported as bad
        self.applied = 0
        self.rejected = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.gateway.loaded.config.gateway.reload.mode != "off"

    async def start(self) -> None:
        if self._task is not None or not self.enabled:
            if not self.enabled:
                log.info("config file watching is off (gateway.reload.mode=off)")
            return
        self.last = stamp(self.path)
        self._task = asyncio.create_task(self._run(), name="config-watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The watcher must outlive any single bad round.
                log.exception("config watch round failed")

    async def check(self) -> str:
        """One poll: 'unchanged', 'same' (content as running), 'applied', 'invalid' or 'missing'."""
        current = stamp(self.path)
        if current == self.last:
            return "unchanged"
        if self.debounce_s > 0:
            await asyncio.sleep(self.debounce_s)
            settled = stamp(self.path)
            if settled != current:
                return "unchanged"  # still being written: look again next round
        self.last = current
        if current is None:
            if self.reported != "missing":
                self.reported = "missing"
                log.warning(
                    "config file %s disappeared; keeping the running config", self.path.name
                )
            return "missing"
        read = await asyncio.to_thread(self._read_and_validate)
        return await self._apply(*read)

    def _read_and_validate(self) -> tuple[str, LoadedConfig | ConfigError | None]:
        """(content hash, outcome); the outcome is None when the text is what already runs."""
        try:
            raw = read_config_text(self.path)
        except ConfigError as exc:
            return "unreadable", exc
        if raw is None:
            return "missing", None
        digest = content_hash(raw)
        if digest == self.gateway.loaded.hash:
            return digest, None  # our own config.set write, or a touch
        try:
            return digest, validate_text(self.path, raw, os.environ)
        except ConfigError as exc:
            return digest, exc

    async def _apply(self, digest: str, outcome: LoadedConfig | ConfigError | None) -> str:
        if outcome is None:
            if digest == "missing":
                return "missing"
            self.reported = None
            return "same"
        if isinstance(outcome, ConfigError):
            return self._reject(digest, render_error(outcome))
        from gateway.protocol.errors import RpcError
        from gateway.rpc.config_methods import _settings_check, apply_loaded

        lock = self.gateway.extensions.get(WRITE_LOCK_KEY)
        if lock is None:
            lock = self.gateway.extensions[WRITE_LOCK_KEY] = asyncio.Lock()
        async with lock:
            if outcome.hash == self.gateway.loaded.hash:
                return "same"  # config.set wrote this very text while we were reading
            try:
                # A file that would not start the gateway is refused, as config.set refuses it.
                _settings_check(self.gateway, outcome)
            except RpcError as exc:
                return self._reject(digest, f"{self.path.name} — gateway: {exc.message}")
            result = apply_loaded(self.gateway, outcome)
        self.reported = None
        self.applied += 1
        for warning in outcome.warnings:
            log.warning(warning)
        log.info(
            "config file change applied (%s)",
            ", ".join(result["applied"][:10]) or "no live changes",
        )
        restart = self.gateway.extensions.get("gateway.restart")
        mode = self.gateway.loaded.config.gateway.reload.mode
        if result.get("restartRequired") and restart is not None and mode in ("hybrid", "restart"):
            # hybrid (the default): keys only a fresh process can take restart it on their own.
            log.info("restarting to apply %s", ", ".join(result.get("restartPaths", [])[:10]))
            restart(0)
            return "restarting"
        if result.get("restartRequired"):
            # gateway.reload.mode "hot": restart-only keys wait for a restart by hand.
            log.warning(
                "config saved; restart the gateway to apply: %s (gateway.reload.mode=%s)",
                ", ".join(result.get("restartPaths", [])[:10]),
                mode,
            )
        return "applied"

    def _reject(self, digest: str, text: str) -> str:
        self.rejected += 1
        if digest != self.reported:
            self.reported = digest
            log.error("config file change not applied, keeping the running config: %s", text)
        return "invalid"


def _interval_from_env() -> float:
    raw = os.environ.get(POLL_ENV, "")
    try:
        ms = float(raw) if raw else POLL_INTERVAL_S * 1000
    except ValueError:
        ms = POLL_INTERVAL_S * 1000
    return min(max(ms, 10.0), 60_000.0) / 1000


def attach(gateway: Gateway) -> Service:
    """Register the watcher as a gateway service (idempotent) and return it."""
    from gateway.runtime import Service

    existing = gateway.extensions.get(EXTENSION_KEY)
    if existing is not None:
        service: Service = existing[1]
        return service
    reload = gateway.loaded.config.gateway.reload
    debounce = reload.debounce_ms
    debounce_s = (
        min(float(debounce), 5000.0) / 1000
        if isinstance(debounce, int | float) and not isinstance(debounce, bool) and debounce >= 0
        else DEFAULT_DEBOUNCE_S
    )
    watcher = ConfigWatcher(gateway, _interval_from_env(), debounce_s)
    service = Service("config-watch", watcher.start, watcher.stop)
    gateway.extensions[EXTENSION_KEY] = (watcher, service)
    gateway.services.append(service)
    return service

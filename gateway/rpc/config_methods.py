"""config.get / config.schema / config.set / config.patch / config.apply.

Reads never reveal a secret: every secret-bearing value (and the raw text around it) is replaced
with `__OPENCLAW_REDACTED__`. Writes take the full JSON5 text (`raw`) — or, for `config.patch`, a
JSON merge patch in `raw` — plus the hash the client last read (`baseHash`); a stale hash is
refused with `CONFLICT`, invalid text with `INVALID_REQUEST` and the line-numbered issues, and
placeholders left in the submitted text keep the stored secret. After a write the hot sections
apply at once (`gateway.loaded` is replaced); changes to `gateway`, `channels` and `env` wait for a
restart and are reported in `restartRequired` / `restartPaths`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import json5
from pydantic import BaseModel, ConfigDict, Field

from gateway.config.errors import ConfigError, ConfigIssue
from gateway.config.loader import LoadedConfig, content_hash, validate_text
from gateway.config.schema import config_json_schema, reload_kind, ui_hints
from gateway.config.secrets import REDACTED, is_secret_key
from gateway.config.writer import StaleHashError, read_on_disk, write_config
from gateway.logs import scrubber
from gateway.protocol.errors import CONFLICT, INVALID_REQUEST, RpcError
from gateway.protocol.scopes import ADMIN, READ
from gateway.rpc.registry import CallContext, method

if TYPE_CHECKING:
    from gateway.runtime import Gateway

log = logging.getLogger("gateway.config")

Path = tuple[str | int, ...]


# --- params --------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ConfigGetParams(_Strict):
    pass


class ConfigSchemaParams(_Strict):
    pass


class DeliveryContext(_Strict):
    channel: str | None = None
    to: str | None = None
    account_id: str | None = Field(None, alias="accountId")
    thread_id: str | float | None = Field(None, alias="threadId")


class ConfigSetParams(_Strict):
    raw: str = Field(min_length=1, max_length=2 * 1024 * 1024)
    base_hash: str | None = Field(None, alias="baseHash", min_length=1)


class ConfigApplyParams(ConfigSetParams):
    session_key: str | None = Field(None, alias="sessionKey")
    delivery_context: DeliveryContext | None = Field(None, alias="deliveryContext")
    note: str | None = None
    restart_delay_ms: int | None = Field(None, alias="restartDelayMs", ge=0)


class ConfigPatchParams(ConfigApplyParams):
    replace_paths: list[str] | None = Field(None, alias="replacePaths", max_length=256)


# --- redaction -----------------------------------------------------------------------------


def redact_tree(data: Any, path: Path = ()) -> tuple[Any, list[tuple[Path, str]]]:
    """A copy with every secret value replaced, and the (path, value) pairs that were."""
    found: list[tuple[Path, str]] = []

    def walk(node: Any, where: Path, secret: bool) -> Any:
        if secret and isinstance(node, dict) and set(node) <= {"source", "provider", "id"}:
            return dict(node)  # a SecretRef names where the secret lives, not the secret
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                k = str(key)
                # Everything under `env` may be a credential (env.vars.OPENAI_API_KEY...).
                inside = secret or is_secret_key(k) or (where == () and k == "env")
                out[k] = walk(value, (*where, k), inside)
            return out
        if isinstance(node, list):
            return [walk(v, (*where, i), secret) for i, v in enumerate(node)]
        if secret and isinstance(node, str) and node and node != REDACTED:
            found.append((where, node))
            return REDACTED
        if isinstance(node, str):
            return scrubber.scrub(node)
        return node

    return walk(data, path, False), found


_STRING = re.compile(r""""(?:[^"\\\n]|\\[\s\S])*"|'(?:[^'\\\n]|\\[\s\S])*'""")
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


def _string_literals(raw: str) -> list[re.Match[str]]:
    """Quoted string literals of JSON5 text, skipping those inside comments."""
    out: list[re.Match[str]] = []
    pos = 0
    while pos < len(raw):
        s = _STRING.search(raw, pos)
        c = _COMMENT.search(raw, pos)
        if s is None:
            break
        if c is not None and c.start() < s.start():
            pos = c.end()
            continue
        out.append(s)
        pos = s.end()
    return out


def _literal_value(literal: str) -> str | None:
    try:
        value = json5.loads(literal)
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def redact_raw(raw: str, secrets: set[str]) -> str | None:
    """The text with each secret string literal replaced; None if a secret would still show."""
    secrets = {s for s in secrets if s} | scrubber_secrets()
    pieces: list[str] = []
    last = 0
    for match in _string_literals(raw):
        if _literal_value(match.group(0)) in secrets:
            pieces += [raw[last : match.start()], json.dumps(REDACTED)]
            last = match.end()
    pieces.append(raw[last:])
    text = "".join(pieces)
    if any(len(s) >= 4 and s in text for s in secrets):
        return None
    return text


def scrubber_secrets() -> set[str]:
    return set(getattr(scrubber, "_secrets", set()))


def restore_redacted(raw: str, stored: Any) -> str:
    """Replace each `__OPENCLAW_REDACTED__` literal in `raw` by the stored value at its path."""
    literals = [m for m in _string_literals(raw) if _literal_value(m.group(0)) == REDACTED]
    if not literals:
        return raw
    try:
        data = json5.loads(raw)
    except ValueError:
        return raw  # the validator reports the parse error
    paths = [p for p, v in _leaves(data) if v == REDACTED]
    if len(paths) != len(literals):
        raise RpcError(
            INVALID_REQUEST,
            "invalid config: the redacted placeholder may only be used as a whole value",
            details={"code": "INVALID_CONFIG"},
        )
    pieces: list[str] = []
    last = 0
    for match, where in zip(literals, paths, strict=True):
        value = _lookup(stored, where)
        if not isinstance(value, str):
            name = _dotted(where)
            raise RpcError(
                INVALID_REQUEST,
                f"invalid config: {name} is {REDACTED} but no stored value exists; enter the secret",
                details={
                    "code": "INVALID_CONFIG",
                    "issues": [{"path": name, "message": "no stored secret to keep"}],
                },
            )
        pieces += [raw[last : match.start()], json.dumps(value)]
        last = match.end()
    pieces.append(raw[last:])
    return "".join(pieces)


def _leaves(node: Any, where: Path = ()) -> list[tuple[Path, Any]]:
    if isinstance(node, dict):
        return [leaf for k, v in node.items() for leaf in _leaves(v, (*where, str(k)))]
    if isinstance(node, list):
        return [leaf for i, v in enumerate(node) for leaf in _leaves(v, (*where, i))]
    return [(where, node)]


def _lookup(node: Any, where: Path) -> Any:
    for part in where:
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(part, str) and isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def _dotted(where: Path) -> str:
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


# --- snapshot ------------------------------------------------------------------------------


def _issues(issues: list[ConfigIssue]) -> list[dict[str, Any]]:
    out = []
    for issue in issues:
        item: dict[str, Any] = {"path": issue.path or "<root>", "message": issue.message}
        if issue.line is not None:
            item["line"] = issue.line
        out.append(item)
    return out


def _effective(gateway: Gateway) -> dict[str, Any]:
    dumped = gateway.loaded.config.model_dump(by_alias=True, exclude_none=True, mode="json")
    redacted, _ = redact_tree(dumped)
    return dict(redacted)


def snapshot(gateway: Gateway) -> dict[str, Any]:
    """The config.get result: the file as on disk (redacted) and the running config."""
    path = gateway.loaded.path
    disk = read_on_disk(path)
    result: dict[str, Any] = {
        "path": str(path),
        "exists": disk.exists,
        "hash": disk.hash,
        "valid": True,
        "issues": [],
        "warnings": [],
        "config": _effective(gateway),
        "restartRequired": bool(_pending(gateway)),
        "restartPaths": sorted(_pending(gateway)),
    }
    if not disk.exists:
        result.update(raw=None, parsed={})
        return result
    try:
        parsed = json5.loads(disk.raw)
    except ValueError:
        parsed = None
    secrets: set[str] = set()
    if isinstance(parsed, dict):
        redacted, found = redact_tree(parsed)
        result["parsed"] = redacted
        secrets = {v for _, v in found}
    else:
        result["parsed"] = {}
    raw = redact_raw(disk.raw, secrets)
    if raw is None:
        # Some secret sits where we cannot cut it out of the text: show clean JSON instead.
        raw = json.dumps(result["parsed"], indent=2) + "\n"
        result["rawRedaction"] = "reformatted"
    result["raw"] = raw
    try:
        loaded = validate_text(path, disk.raw, os.environ)
        result["warnings"] = loaded.warnings
    except ConfigError as exc:
        result["valid"] = False
        result["issues"] = _issues(exc.issues)
    return result


# --- writing and applying ------------------------------------------------------------------


def _lock(gateway: Gateway) -> asyncio.Lock:
    lock = gateway.extensions.get("config.writeLock")
    if lock is None:
        lock = gateway.extensions["config.writeLock"] = asyncio.Lock()
    return lock


def _pending(gateway: Gateway) -> set[str]:
    pending: set[str] = gateway.extensions.setdefault("config.restartPaths", set())
    return pending


def changed_paths(old: Any, new: Any, where: Path = (), depth: int = 0) -> list[str]:
    """Dotted paths whose value differs (objects compared key by key, lists as a whole)."""
    if isinstance(old, dict) and isinstance(new, dict) and depth < 6:
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            if old.get(key) != new.get(key):
                out += changed_paths(old.get(key), new.get(key), (*where, str(key)), depth + 1)
        return out
    return [] if old == new else [_dotted(where) or "<root>"]


def _settings_check(gateway: Gateway, loaded: LoadedConfig) -> None:
    """Would this config start? (auth mode without a secret, open bind without auth...)."""
    from gateway.server import resolve_settings
    from gateway.settings import Flags, StartupError

    env = dict(os.environ)
    auth = gateway.settings.auth
    # The running secret may come from a flag; it stays available as a fallback.
    if auth.token and not auth.generated:
        env.setdefault("OPENCLAW_GATEWAY_TOKEN", auth.token)
    if auth.password:
        env.setdefault("OPENCLAW_GATEWAY_PASSWORD", auth.password)
    try:
        resolve_settings(Flags(), loaded, env)
    except StartupError as exc:
        issues = [{"path": "gateway", "message": line} for line in exc.lines]
        raise RpcError(
            INVALID_REQUEST,
            "invalid config: " + " ".join(exc.lines),
            details={"code": "INVALID_CONFIG", "issues": issues},
        ) from exc


def apply_loaded(gateway: Gateway, new: LoadedConfig) -> dict[str, Any]:
    """Make the hot sections live; keep restart-only sections as they run now."""
    old = gateway.loaded
    before = old.config.model_dump(by_alias=True, mode="json")
    after = new.config.model_dump(by_alias=True, mode="json")
    changed = changed_paths(before, after)
    restart = [p for p in changed if reload_kind(p) == "restart"]
    hot = [p for p in changed if reload_kind(p) == "hot"]
    running = old.config
    merged = new.config.model_copy(
        update={"gateway": running.gateway, "channels": running.channels, "env": running.env}
    )
    gateway.loaded = LoadedConfig(
        path=new.path,
        exists=True,
        config=merged,
        raw=new.raw,
        hash=new.hash,
        warnings=new.warnings,
        env_vars=new.env_vars,
    )
    pending = _pending(gateway)
    pending.clear()
    pending.update(
        p
        for p in changed_paths(
            running.model_dump(by_alias=True, mode="json"),
            new.config.model_dump(by_alias=True, mode="json"),
        )
        if reload_kind(p) == "restart"
    )
    _register_secrets(gateway, new)
    listeners: list[Callable[[LoadedConfig, list[str]], None]] = gateway.extensions.get(
        "config.listeners", []
    )
    for listener in listeners:
        try:
            listener(gateway.loaded, hot)
        except Exception:
            log.exception("config listener failed")
    if hot:
        log.info("config applied live: %s", ", ".join(hot[:10]))
    # Whether a restart is still needed is said by the caller: the watcher and config.apply
    # restart on their own (saying so), only config.set leaves it to the operator.
    return {
        "changedPaths": changed,
        "applied": hot,
        "restartRequired": bool(pending),
        "restartPaths": sorted(pending),
        "restart": restart,
    }


def _register_secrets(gateway: Gateway, loaded: LoadedConfig) -> None:
    try:
        from gateway.server import register_secrets

        register_secrets(loaded, gateway.settings, os.environ)
    except Exception:
        log.exception("could not register the new config's secrets for log masking")
    dumped = loaded.config.model_dump(by_alias=True, mode="json")
    for _, value in redact_tree(dumped)[1]:
        scrubber.add(value)


def _raise_invalid(exc: ConfigError) -> None:
    lines = exc.lines()
    raise RpcError(
        INVALID_REQUEST,
        "invalid config: " + "; ".join(lines),
        details={"code": "INVALID_CONFIG", "issues": _issues(exc.issues)},
    ) from exc


async def write_and_apply(gateway: Gateway, raw: str, base_hash: str | None) -> dict[str, Any]:
    async with _lock(gateway):
        path = gateway.loaded.path
        disk = read_on_disk(path)
        stored: Any = {}
        if disk.exists:
            try:
                stored = json5.loads(disk.raw)
            except ValueError:
                stored = {}
        # Hash first: a client that saw another file must not learn which secrets it holds.
        try:
            from gateway.config.writer import check_base_hash

            check_base_hash(disk, base_hash)
        except StaleHashError as exc:
            raise RpcError(
                CONFLICT if base_hash is not None else INVALID_REQUEST,
                str(exc),
                details={
                    "code": "CONFIG_HASH_MISMATCH"
                    if base_hash is not None
                    else "BASE_HASH_REQUIRED",
                    "currentHash": disk.hash,
                },
            ) from exc
        text = restore_redacted(raw, stored)
        if not text.endswith("\n"):
            text += "\n"
        try:
            candidate = validate_text(path, text, os.environ)
        except ConfigError as exc:
            _raise_invalid(exc)
            raise  # unreachable
        _settings_check(gateway, candidate)
        try:
            written = write_config(path, text, disk.hash if disk.exists else None, os.environ)
        except ConfigError as exc:
            _raise_invalid(exc)
            raise
        except StaleHashError as exc:
            raise RpcError(CONFLICT, str(exc), details={"code": "CONFIG_HASH_MISMATCH"}) from exc
        noop = disk.exists and disk.raw == text
        outcome = apply_loaded(gateway, written)
        log.info("config written to %s (backup %s.bak)", path, path.name)
        redacted, _ = redact_tree(json5.loads(text))
        return {
            "ok": True,
            "path": str(path),
            "hash": content_hash(text),
            "noop": noop,
            "config": redacted,
            "warnings": written.warnings,
            **outcome,
        }


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


# --- methods -------------------------------------------------------------------------------


@method("config.get", scope=READ, params=ConfigGetParams)
async def config_get(ctx: CallContext, params: ConfigGetParams) -> dict[str, Any]:
    return snapshot(ctx.gateway)


@method("config.schema", scope=READ, params=ConfigSchemaParams)
async def config_schema(ctx: CallContext, params: ConfigSchemaParams) -> dict[str, Any]:
    return {
        "schema": config_json_schema(),
        "uiHints": ui_hints(),
        "version": ctx.gateway.version,
        "generatedAt": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


@method("config.set", scope=ADMIN, params=ConfigSetParams)
async def config_set(ctx: CallContext, params: ConfigSetParams) -> dict[str, Any]:
    result = await write_and_apply(ctx.gateway, params.raw, params.base_hash)
    _say_restart_needed(result)
    return result


def _say_restart_needed(result: dict[str, Any]) -> None:
    if result.get("restartRequired"):
        log.warning(
            "config saved; restart the gateway to apply: %s",
            ", ".join(result.get("restartPaths", [])),
        )


@method("config.apply", scope=ADMIN, params=ConfigApplyParams)
async def config_apply(ctx: CallContext, params: ConfigApplyParams) -> dict[str, Any]:
    result = await write_and_apply(ctx.gateway, params.raw, params.base_hash)
    return _maybe_restart(ctx.gateway, result, params.restart_delay_ms)


@method("config.patch", scope=ADMIN, params=ConfigPatchParams)
async def config_patch(ctx: CallContext, params: ConfigPatchParams) -> dict[str, Any]:
    try:
        patch = json5.loads(params.raw)
    except ValueError as exc:
        raise RpcError(
            INVALID_REQUEST,
            f"invalid config.patch params: raw is not JSON5: {exc}",
            details={"code": "INVALID_CONFIG"},
        ) from exc
    if not isinstance(patch, dict):
        raise RpcError(INVALID_REQUEST, "invalid config.patch params: raw must be a JSON5 object")
    disk = read_on_disk(ctx.gateway.loaded.path)
    current: Any = {}
    if disk.exists:
        try:
            current = json5.loads(disk.raw)
        except ValueError as exc:
            raise RpcError(
                INVALID_REQUEST,
                "the config file on disk does not parse; fix it with config.set",
                details={"code": "INVALID_CONFIG"},
            ) from exc
    merged = merge_patch(current, patch)
    text = json.dumps(merged, indent=2, ensure_ascii=False) + "\n"
    result = await write_and_apply(ctx.gateway, text, params.base_hash)
    return _maybe_restart(ctx.gateway, result, params.restart_delay_ms)


def _maybe_restart(
    gateway: Gateway, result: dict[str, Any], delay_ms: int | None
) -> dict[str, Any]:
    """Ask the process supervisor hook (if any) to restart when restart-only keys changed."""
    hook = gateway.extensions.get("gateway.restart")
    if result.get("restartRequired") and hook is not None:
        hook(delay_ms or 0)
        result["restartScheduled"] = True
    else:
        result["restartScheduled"] = False
        _say_restart_needed(result)
    return result

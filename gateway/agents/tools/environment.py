"""What a command run by `exec` may see of the gateway (tools.md §3.3).

Three lines of defence, so a model cannot print `ANTHROPIC_API_KEY` through a tool:

1. The child environment is built from the gateway's minus every variable that carries a
   secret: well-known and pattern-matched names, variables named by `{source:"env"}` secret
   refs, and any variable whose value contains a secret the gateway knows.
2. The gateway's own `/proc/<pid>/environ` still holds the secrets it was started with (and so
   do its ancestors'). Commands therefore run in a fresh PID namespace with their own `/proc`
   (`unshare --pid --mount-proc`, as root or through a user namespace), where no gateway
   process is visible; the gateway is also marked non-dumpable, which makes its environ
   unreadable to other same-uid processes when no namespace is available.
3. Known secret values (also reversed and base64-encoded, even when wrapped over lines) are
   masked in the output.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import functools
import logging
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from gateway.agents.tools.registry import ToolError
from gateway.config.models import OpenClawConfig, SecretRef
from gateway.logs import scrubber

log = logging.getLogger("agent/exec")

SECRET_NAMES = frozenset(
    {
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_OAUTH_TOKEN",
        "OPENAI_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "DISCORD_BOT_TOKEN",
        "TELEGRAM_BOT_TOKEN",
        "OPENCLAW_GATEWAY_TOKEN",
        "OPENCLAW_GATEWAY_PASSWORD",
        "BRAVE_API_KEY",
        "FLY_API_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    }
)
_SECRET_NAME = re.compile(
    r"(?:_KEY|_TOKEN|_SECRET|_SECRETS|_CREDENTIALS?|_PASS)$|PASSWORD|PASSWD|SECRET|^OPENCLAW_GATEWAY_",
    re.IGNORECASE,
)
# Config keys whose string values are secrets wherever they appear (python field names).
_SECRET_FIELDS = frozenset(
    {"token", "password", "api_key", "bot_token", "webhook_secret", "secret", "apiKey", "botToken"}
)
_MIN_SECRET = 6
_FORBIDDEN_OVERRIDE = re.compile(r"^(PATH|LD_.*|DYLD_.*)$")


def is_secret_name(name: str) -> bool:
    return name.upper() in SECRET_NAMES or bool(_SECRET_NAME.search(name))


def _walk_config(node: Any, refs: set[str], values: set[str], field: str = "") -> None:
    if isinstance(node, SecretRef):
        if node.source == "env":
            refs.add(node.id)
        return
    if isinstance(node, BaseModel):
        for name in type(node).model_fields:
            _walk_config(getattr(node, name), refs, values, name)
        for name, value in (node.model_extra or {}).items():
            _walk_config(value, refs, values, name)
    elif isinstance(node, Mapping):
        for key, value in node.items():
            _walk_config(value, refs, values, str(key))
    elif isinstance(node, list | tuple):
        for value in node:
            _walk_config(value, refs, values, field)
    elif isinstance(node, str) and field in _SECRET_FIELDS and len(node) >= _MIN_SECRET:
        values.add(node)


def known_secrets(
    config: OpenClawConfig | None, env: Mapping[str, str] | None = None
) -> tuple[frozenset[str], frozenset[str]]:
    """(names, values): variable names that hold secrets and the secret values we know."""
    env = os.environ if env is None else env
    refs: set[str] = set()
    values: set[str] = set(scrubber.known())
    if config is not None:
        _walk_config(config, refs, values)
    names = set(refs)
    for name, value in env.items():
        if is_secret_name(name):
            names.add(name)
            if len(value) >= _MIN_SECRET:
                values.add(value)
    for name in refs:
        if len(env.get(name, "")) >= _MIN_SECRET:
            values.add(env[name])
    return frozenset(names), frozenset(v for v in values if len(v) >= _MIN_SECRET)


def child_env(
    config: OpenClawConfig | None,
    *,
    workdir: str,
    overrides: Mapping[str, str] | None = None,
    path_prepend: Iterable[str] = (),
    extra_secrets: Iterable[str | None] = (),
    env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of an exec child: the gateway's, scrubbed (§3.3)."""
    env = os.environ if env is None else env
    names, values = known_secrets(config, env)
    values = values | {s for s in extra_secrets if s and len(s) >= _MIN_SECRET}
    out: dict[str, str] = {}
    for name, value in env.items():
        if name in names or is_secret_name(name):
            continue
        if value and any(secret in value for secret in values):
            continue
        out[name] = value
    for name, value in (overrides or {}).items():
        if _FORBIDDEN_OVERRIDE.match(name):
            raise ToolError(f"env: overriding {name} is not allowed")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ToolError(f"env: {name!r} is not a valid variable name")
        out[name] = value
    prepend = [p for p in path_prepend if p]
    if prepend:
        out["PATH"] = os.pathsep.join([*prepend, out.get("PATH", os.defpath)])
    out["OPENCLAW_SHELL"] = "exec"
    out["PWD"] = workdir
    return out


# --- output masking --------------------------------------------------------------------------

_WRAP = r"(?:\r?\n)?"


def _forms(secret: str) -> set[str]:
    forms = {secret, secret[::-1]}
    raw = secret.encode("utf-8")
    for shift in range(3):
        enc = base64.b64encode(b"\0" * shift + raw).decode("ascii")
        # Drop the chars that mix in the neighbours' bits and the padded end.
        core = enc[(shift * 8 + 5) // 6 : len(enc) - 4]
        if len(core) >= 12:
            forms.add(core)
    return forms


@functools.lru_cache(maxsize=32)
def _mask_pattern(secrets: frozenset[str]) -> re.Pattern[str] | None:
    forms: set[str] = set()
    for secret in secrets:
        forms |= _forms(secret)
    if not forms:
        return None
    # Longest first; any form may be wrapped over lines (base64 wraps at 76 columns).
    parts = [
        _WRAP.join(re.escape(c) for c in form) for form in sorted(forms, key=len, reverse=True)
    ]
    return re.compile("|".join(parts))


def mask_secrets(text: str, secrets: frozenset[str]) -> str:
    """Replace every known secret (plain, reversed, base64) in `text` with `***`."""
    pattern = _mask_pattern(secrets)
    return pattern.sub("***", text) if pattern is not None and text else text


# --- process isolation -----------------------------------------------------------------------

PR_SET_DUMPABLE = 4
_libc: Any = None


def _prctl(option: int, value: int) -> bool:
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        return int(_libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def harden_gateway_process() -> None:
    """Make /proc/<gateway>/environ unreadable to other same-uid processes (idempotent)."""
    _prctl(PR_SET_DUMPABLE, 0)


_isolation: list[str] | None = None


async def isolation_prefix() -> list[str]:
    """argv prefix that runs a command in its own PID namespace and /proc, or [] if none works.

    It starts with `setpriv --pdeathsig KILL` when available, so commands die with the gateway
    (a Python preexec hook would do the same but costs ~15 ms per spawn: no vfork).
    """
    global _isolation
    if _isolation is None:
        found = await _probe()  # concurrent first calls probe twice: harmless
        if _isolation is None:
            _isolation = found
            if "--mount-proc" in found:
                log.info("exec commands run in their own PID namespace (%s)", " ".join(found))
            else:
                log.warning(
                    "exec: no PID namespace available (unshare failed); commands can see other"
                    " processes. The gateway's environ is protected by PR_SET_DUMPABLE only."
                )
    return list(_isolation)


async def _probe() -> list[str]:
    setpriv = shutil.which("setpriv")
    unshare = shutil.which("unshare")
    guard = [setpriv, "--pdeathsig", "KILL"] if setpriv else []
    base = ["--pid", "--fork", "--mount-proc", "--kill-child"]
    candidates = []
    if unshare is not None:
        if os.geteuid() == 0:
            candidates.append([*guard, unshare, *base])
        candidates.append([*guard, unshare, "--user", "--map-current-user", *base])
        candidates.append([*guard, unshare, "--user", "--map-root-user", *base])
    for prefix in candidates:
        with contextlib.suppress(OSError):
            proc = await asyncio.create_subprocess_exec(
                *prefix,
                "sh",
                "-c",
                # PID 1 of a fresh namespace, and /proc shows that namespace
                'test "$$" = 1 && test "$(cut -d" " -f1 /proc/self/stat)" != "$PPID"',
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                code = await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                continue
            if code == 0:
                return prefix
    return guard


def reset_isolation_cache() -> None:
    """Tests: probe again on the next command."""
    global _isolation
    _isolation = None

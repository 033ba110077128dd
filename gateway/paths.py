"""Where things live: home dir, state dir, config file (config.md §1)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

_UNSET = {"", "undefined", "null"}


def _env(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return None if value in _UNSET else value


def home_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    for name in ("HOME", "USERPROFILE"):
        value = _env(env, name)
        if value:
            return Path(value)
    return Path.home()


def expand_user(value: str, env: Mapping[str, str] | None = None) -> Path:
    """`~` means the home dir, never the state dir (so `~/...` is not on a Fly volume)."""
    if value == "~" or value.startswith("~/"):
        return home_dir(env) / value[2:]
    return Path(value)


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    value = _env(env, "OPENCLAW_STATE_DIR")
    if value:
        return expand_user(value, env).absolute()
    return (home_dir(env) / ".openclaw").absolute()


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    explicit = _env(env, "OPENCLAW_CONFIG_PATH")
    if explicit:
        return expand_user(explicit, env).absolute()
    return state_dir(env) / "openclaw.json"


def lock_dir(state: Path) -> Path:
    return state / "tmp" / f"openclaw-{os.getuid()}"


def runtime_token_path(state: Path) -> Path:
    """Where a generated (this run only) gateway token is written, mode 0600."""
    return lock_dir(state) / "runtime-token"

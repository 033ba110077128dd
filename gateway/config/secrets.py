"""Resolve secret inputs (inline text or SecretRef) and redact secrets from config views."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from gateway.config.gateway_section import SecretInput, SecretRef

_ENV_ID = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")
REDACTED = "__OPENCLAW_REDACTED__"

# Keys whose values are secrets wherever they appear in the config tree.
SECRET_KEYS = frozenset({"token", "password", "apiKey", "botToken", "webhookSecret", "secret"})
# ...and any key whose name says it holds one (`appToken`, `clientSecret`, `api_key`, ...).
_SECRET_NAME = re.compile(r"(token|secret|password|passwd|apikey|api_key|authorization)$", re.I)


def is_secret_key(key: str) -> bool:
    """Does a config key of this name hold a secret (redacted in views, required when set)?"""
    return key in SECRET_KEYS or bool(_SECRET_NAME.search(key))


class SecretError(ValueError):
    """A secret reference cannot be resolved; the message names the key, never the value."""


def resolve_secret(
    value: SecretInput | None, where: str, env: Mapping[str, str] | None = None
) -> str | None:
    env = os.environ if env is None else env
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, SecretRef):
        if value.source != "env":
            raise SecretError(
                f'{where}: secret source "{value.source}" is not supported yet; use "env"'
            )
        if not _ENV_ID.match(value.id):
            raise SecretError(f"{where}: env secret id must match ^[A-Z][A-Z0-9_]{{0,127}}$")
        resolved = env.get(value.id, "")
        if not resolved:
            raise SecretError(f"{where}: environment variable {value.id} is not set")
        return resolved
    raise SecretError(f"{where}: unsupported secret value")


def redact(data: Any) -> Any:
    """Copy of a parsed config with every secret-bearing value replaced."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key in SECRET_KEYS and isinstance(value, str) and value:
                out[key] = REDACTED
            else:
                out[key] = redact(value)
        return out
    if isinstance(data, list):
        return [redact(v) for v in data]
    return data

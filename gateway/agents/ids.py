"""Agent and account id normalisation (config.md §3.3)."""

from __future__ import annotations

import re

DEFAULT_AGENT_ID = "main"
DEFAULT_ACCOUNT_ID = "default"
MAIN_KEY = "main"

_VALID_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_INVALID_RUN = re.compile(r"[^a-z0-9_-]+")


def _normalize(value: str | None, empty: str) -> str:
    text = (value or "").strip().lower()
    if not text:
        return empty
    if _VALID_ID.match(text):
        return text
    # Ids end up in paths and session keys: collapse anything unsafe to "-".
    cleaned = _INVALID_RUN.sub("-", text).strip("-")[:64]
    return cleaned or empty


def normalize_agent_id(value: str | None) -> str:
    """Trim + lowercase; invalid character runs become `-`; empty becomes `main`."""
    return _normalize(value, DEFAULT_AGENT_ID)


def normalize_account_id(value: str | None) -> str:
    """Account ids follow the agent id rules; empty becomes `default`."""
    return _normalize(value, DEFAULT_ACCOUNT_ID)


def is_valid_agent_id(value: str | None) -> bool:
    """True when the id is already canonical modulo case and surrounding spaces."""
    return bool(_VALID_ID.match((value or "").strip().lower()))

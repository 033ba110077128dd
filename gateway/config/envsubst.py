"""`${VAR}` substitution inside config string values (config.md §2)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PATTERN = re.compile(r"\$(\$?)\{([A-Z_][A-Z0-9_]*)\}")


def substitute(value: Any, env: Mapping[str, str], missing: set[str]) -> Any:
    """Return a copy of `value` with `${VAR}` replaced; unknown/empty vars stay literal.

    `$${VAR}` is the escape for a literal `${VAR}`. Names of missing vars are added to `missing`
    so the caller can warn once per name.
    """
    if isinstance(value, str):
        return _PATTERN.sub(lambda m: _replace(m, env, missing), value)
    if isinstance(value, dict):
        return {k: substitute(v, env, missing) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, env, missing) for v in value]
    return value


def _replace(match: re.Match[str], env: Mapping[str, str], missing: set[str]) -> str:
    escaped, name = match.group(1), match.group(2)
    if escaped:
        return "${" + name + "}"
    found = env.get(name)
    if not found:
        missing.add(name)
        return match.group(0)
    return found

"""`${VAR}` substitution inside config string values (config.md §2)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PATTERN = re.compile(r"\$(\$?)\{([A-Z_][A-Z0-9_]*)\}")

# Where a missing variable was referenced: (path of the string value, variable name).
KeyPath = tuple[str | int, ...]


def substitute(
    value: Any, env: Mapping[str, str], missing: list[tuple[KeyPath, str]], where: KeyPath = ()
) -> Any:
    """Return a copy of `value` with `${VAR}` replaced; unknown/empty vars stay literal.

    `$${VAR}` is the escape for a literal `${VAR}`. Each reference to a missing var is added to
    `missing` with the path of the value holding it, so the caller can tell a secret-bearing key
    (an error) from any other (a warning).
    """
    if isinstance(value, str):
        return _PATTERN.sub(lambda m: _replace(m, env, missing, where), value)
    if isinstance(value, dict):
        return {k: substitute(v, env, missing, (*where, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, env, missing, (*where, i)) for i, v in enumerate(value)]
    return value


def _replace(
    match: re.Match[str], env: Mapping[str, str], missing: list[tuple[KeyPath, str]], where: KeyPath
) -> str:
    escaped, name = match.group(1), match.group(2)
    if escaped:
        return "${" + name + "}"
    found = env.get(name)
    if not found:
        missing.append((where, name))
        return match.group(0)
    return found

"""Map dotted config paths to line numbers in the JSON5 source, for error messages.

json5 parsers don't report positions, so this is a small tolerant scanner that tracks the
container path while walking the text. It never raises: an unknown path just has no line.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import json5

_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_NUMBER = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F]+|Infinity|NaN|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
)


def format_path(parts: tuple[str | int, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def key_lines(text: str) -> dict[str, int]:
    """Return {dotted path: 1-based line} for every object key and array element."""
    lines: dict[str, int] = {}
    # Each stack frame: [kind, path, pending_key, next_index]
    stack: list[list[object]] = []
    i, n, line = 0, len(text), 1
    pending_value_path: tuple[str | int, ...] | None = ()

    def value_start(start_line: int) -> tuple[str | int, ...] | None:
        if not stack:
            return ()
        kind, path, key, index = stack[-1]
        assert isinstance(path, tuple)
        if kind == "array":
            assert isinstance(index, int)
            stack[-1][3] = index + 1
            child = (*path, index)
            lines.setdefault(format_path(child), start_line)
            return child
        if key is not None:
            stack[-1][2] = None
            return (*path, str(key))
        return None

    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in " \t\r\ufeff,":
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            line += text.count("\n", i, end)
            i = end
        elif c in "{[":
            path = value_start(line)
            stack.append(["object" if c == "{" else "array", path or (), None, 0])
            i += 1
        elif c in "}]":
            if stack:
                stack.pop()
            i += 1
        elif c == ":":
            i += 1
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            raw = text[i + 1 : j]
            start_line = line
            line += raw.count("\n")
            token = _unescape(text[i : j + 1], raw) if "\\" in raw else raw
            i = j + 1
            _handle_token(stack, lines, token, start_line, text, i, value_start)
        else:
            m = _IDENT.match(text, i) or _NUMBER.match(text, i)
            if not m:
                i += 1
                continue
            i = m.end()
            _handle_token(stack, lines, m.group(0), line, text, i, value_start)
    del pending_value_path
    return lines


def _unescape(literal: str, raw: str) -> str:
    # Keys are matched against parsed data: "a\\"b" and "\\u00e8" must become what json5 made.
    try:
        value = json5.loads(literal)
    except (ValueError, RecursionError):
        return raw
    return value if isinstance(value, str) else raw


def _handle_token(
    stack: list[list[object]],
    lines: dict[str, int],
    token: str,
    start_line: int,
    text: str,
    after: int,
    value_start: Callable[[int], object],
) -> None:
    # A token followed by ':' inside an object is a key; otherwise it is a scalar value.
    j = after
    while j < len(text) and text[j] in " \t\r\n":
        j += 1
    if stack and stack[-1][0] == "object" and j < len(text) and text[j] == ":":
        parent = stack[-1][1]
        assert isinstance(parent, tuple)
        path = (*parent, token)
        stack[-1][2] = token
        lines.setdefault(format_path(path), start_line)
    else:
        value_start(start_line)

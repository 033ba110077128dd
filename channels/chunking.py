"""Split a reply into pieces a platform accepts (channels.md §4.1).

Greedy by lines, preferring a paragraph break in the second half of a full chunk; a line
longer than the limit is cut at whitespace (else hard). A ``` fence is never split silently:
when a chunk must end inside one, the chunk closes the fence and the next reopens it with
the same info string, so every piece renders on its own.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})(.*)$")


def _split_long_line(line: str, limit: int) -> list[str]:
    out: list[str] = []
    while len(line) > limit:
        cut = line.rfind(" ", limit // 2, limit)
        if cut <= 0:
            cut = limit
        out.append(line[:cut])
        line = line[cut:].lstrip(" ") if cut < limit else line[cut:]
    out.append(line)
    return out


def chunk_text(text: str, limit: int, max_lines: int | None = None) -> list[str]:
    """Pieces of at most `limit` characters (and `max_lines` lines, when given)."""
    text = text.strip("\n")
    if not text.strip():
        return []
    if len(text) <= limit and (max_lines is None or text.count("\n") + 1 <= max_lines):
        return [text]
    limit = max(limit, 16)  # room for a fence close/reopen around at least some content
    chunks: list[str] = []
    current: list[str] = []
    size = 0  # characters in `current` joined by "\n"
    fence: str | None = None  # the opening line of the fence we are inside
    fence_marker = ""
    close_cost = 0

    def flush(final: bool = False) -> None:
        nonlocal current, size
        if not current:
            return
        body = list(current)
        # Prefer ending at a blank line (paragraph) in the second half, outside any fence.
        carry: list[str] = []
        if not final and fence is None and len(body) > 2:
            for i in range(len(body) - 1, len(body) // 2, -1):
                if body[i].strip() == "" and not _inside_fence(body[:i]):
                    carry = body[i + 1 :]
                    body = body[:i]
                    break
        if fence is not None:
            if body and body[-1] == fence and len(body) > 1:
                body.pop()  # the fence just opened: start it in the next piece instead
            else:
                body.append(fence_marker)
        piece = "\n".join(body).strip("\n")
        if piece.strip():
            chunks.append(piece)
        current = []
        size = 0
        if fence is not None:
            current.append(fence)
            size = len(fence)
        for line in carry:
            _add(line)

    def _add(line: str) -> None:
        nonlocal size
        size += len(line) + (1 if current else 0)
        current.append(line)

    for raw in text.split("\n"):
        m = _FENCE.match(raw)
        opens = fence is None and m is not None
        closes = (
            fence is not None
            and m is not None
            and m.group(1).startswith(fence_marker[:3])
            and not m.group(2).strip()
        )
        budget = limit - (close_cost if fence is not None and not closes else 0)
        if opens and m is not None:
            # Opening a fence: reserve room for its closing marker from here on.
            budget = limit - (len(m.group(1)) + 1)
        pieces = _split_long_line(raw, max(8, budget - (len(fence) + 1 if fence else 0)))
        for piece in pieces:
            extra = len(piece) + (1 if current else 0)
            too_long = size + extra > budget
            too_tall = max_lines is not None and len(current) + 1 + (1 if fence else 0) > max_lines
            if current and (too_long or too_tall):
                flush()
            _add(piece)
        if opens and m is not None:
            fence, fence_marker = raw, m.group(1)
            close_cost = len(fence_marker) + 1
        elif closes:
            fence, fence_marker, close_cost = None, "", 0
    if fence is not None and current:
        # An unterminated fence in the source stays unterminated in the last piece.
        fence = None
    flush(final=True)
    return chunks


def _inside_fence(lines: list[str]) -> bool:
    open_ = False
    for line in lines:
        if _FENCE.match(line):
            open_ = not open_
    return open_

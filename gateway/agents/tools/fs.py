"""File tools: read, write, edit, ls (tools.md §1.2-§1.4, §1.6).

Every path goes through `fspaths.resolve_path` (workspace-relative, workspaceOnly checks).
The file work runs in a worker thread so a large file never stalls the event loop, and reads
stream line by line so a huge file is never held whole.
"""

from __future__ import annotations

import asyncio
import difflib
import itertools
import json
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field

from gateway.agents.tools.fspaths import display, resolve_path
from gateway.agents.tools.registry import (
    ToolContext,
    ToolError,
    ToolOutput,
    result_char_limit,
    tool,
)

MAX_PAGE_LINES = 2000
_CHUNK = 64 * 1024
_DAILY_MEMORY = re.compile(r"^memory/\d{4}-\d{2}-\d{2}\.md$")
_DIFF_MAX_CHARS = 20_000


def page_chars(context_window_tokens: int) -> int:
    """10 % of the context window (4 chars per token), clamped to 32-128 KiB (§1.2), and
    small enough that the page and its continuation note fit one result (§1.1)."""
    page = max(32 * 1024, min(128 * 1024, int(context_window_tokens * 4 * 0.1)))
    return min(page, result_char_limit(context_window_tokens) - 300)


# --- read ----------------------------------------------------------------------------------


class ReadArgs(BaseModel):
    """Read a text file (relative paths are in the workspace). Long files come back a page at a
    time with a note giving the `offset` to continue from; `limit` caps the lines returned."""

    path: str = Field(description="File to read.")
    offset: int | None = Field(None, ge=1, description="First line to return (1-based).")
    limit: float | None = Field(None, gt=0, description="Maximum number of lines to return.")
    cursor: int | None = Field(
        None, ge=0, description="Character position inside the start line (very long lines)."
    )
    optional: Literal[True] | None = Field(
        None, description="true: a missing file is a normal result, not an error."
    )


@dataclass
class _Page:
    text: str
    start_line: int
    next_offset: int | None = None
    next_cursor: int | None = None
    lines_left: int = 0


def _take_line(f: TextIO, room: int) -> tuple[str, bool] | None:
    """The next line, reading at most room+1 chars; (text, whole) or None at end of file."""
    parts: list[str] = []
    size = 0
    while size <= room:
        piece = f.readline(min(_CHUNK, room + 1 - size))
        if not piece:
            return ("".join(parts), True) if parts else None
        parts.append(piece)
        size += len(piece)
        if piece.endswith("\n"):
            return "".join(parts), True
    return "".join(parts), False


def _lines_after(f: TextIO, current_complete: bool) -> int:
    """How many lines follow the current one (streamed; memory stays bounded)."""
    newlines = 0
    tail_open = False
    while chunk := f.read(_CHUNK):
        newlines += chunk.count("\n")
        tail_open = not chunk.endswith("\n")
    if not current_complete:
        if newlines == 0:
            return 0
        newlines -= 1  # the newline that ends the current line
    return newlines + (1 if tail_open else 0)


def _read_page(path: Path, offset: int, cursor: int, max_lines: int, max_chars: int) -> _Page:
    with path.open(encoding="utf-8", errors="replace", newline=None) as f:
        line = 1
        while line < offset:
            got = _take_line(f, _CHUNK)
            if got is None:
                raise ToolError(f"offset {offset} is past the end of the file ({line - 1} lines)")
            if got[0].endswith("\n"):
                line += 1
        if cursor:
            got = _take_line(f, cursor - 1)
            if got is None or got[1]:
                raise ToolError(f"cursor {cursor} is past the end of line {offset}")
        page = _Page("", offset)
        out: list[str] = []
        used = taken = 0
        while taken < max_lines:
            room = max_chars - used
            got = _take_line(f, room)
            if got is None:
                break
            piece, whole = got
            if whole and len(piece) <= room:
                out.append(piece)
                used += len(piece)
                taken += 1
                line += 1
                cursor = 0
                continue
            page.next_offset = line
            if taken == 0:
                # One line longer than a page: return a part, continue inside it by cursor.
                out.append(piece[:room])
                page.next_cursor = cursor + room
            else:
                page.lines_left = 1 + _lines_after(f, piece.endswith("\n"))
            break
        else:
            peek = f.readline(1)
            if peek:
                page.next_offset = line
                page.lines_left = 1 + _lines_after(f, peek.endswith("\n"))
        page.text = "".join(out)
        return page


_ENV_LINE = re.compile(r"^(\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_.-]*\s*[=:]\s*)(.*)$")


def _mask_env(text: str) -> str:
    """Values of a dotenv file are secrets: keep the names, mask the values (§1.2)."""
    out = []
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip()
        m = _ENV_LINE.match(line.rstrip("\n"))
        if m and not stripped.startswith("#") and m.group(2).strip():
            out.append(m.group(1) + "***" + ("\n" if line.endswith("\n") else ""))
        else:
            out.append(line)
    return "".join(out)


def _is_env_file(path: Path) -> bool:
    return path.name == ".env" or path.name.endswith(".env") or path.name.startswith(".env.")


def _looks_binary(path: Path) -> bool:
    with path.open("rb") as f:
        return b"\x00" in f.read(8192)


def _read(args: ReadArgs, ctx: ToolContext) -> ToolOutput:
    path = resolve_path(args.path, ctx)
    shown = display(path, ctx.workspace)
    optional = bool(args.optional) or bool(_DAILY_MEMORY.match(args.path.strip().lstrip("./")))
    if not path.exists():
        if optional:
            return ToolOutput(
                f"Optional file {shown} was not found (nothing to read).",
                {"kind": "not_found", "status": "not_found", "path": str(path), "optional": True},
            )
        raise ToolError(f"ENOENT: no such file: {path}")
    if path.is_dir():
        raise ToolError(f"{path} is a directory; use ls to list it")
    if not path.is_file():
        raise ToolError(f"{path} is not a regular file")
    if _looks_binary(path):
        raise ToolError(f"{path} looks like a binary file; read only returns text")
    limit = MAX_PAGE_LINES if args.limit is None else max(1, min(int(args.limit), MAX_PAGE_LINES))
    page = _read_page(
        path, args.offset or 1, args.cursor or 0, limit, page_chars(ctx.context_window_tokens)
    )
    text = _mask_env(page.text) if _is_env_file(path) else page.text
    if page.next_offset is None:
        return ToolOutput(text, {"kind": "text", "content": text})
    if page.next_cursor is not None:
        note = (
            f"[Line {page.next_offset} is longer than one page; continue with"
            f" offset={page.next_offset} cursor={page.next_cursor}.]"
        )
        continuation: dict[str, Any] = {"offset": page.next_offset, "cursor": page.next_cursor}
    else:
        note = (
            f"[{page.lines_left} more lines in {shown}; continue with offset={page.next_offset}.]"
        )
        continuation = {"offset": page.next_offset}
    body = text if text.endswith("\n") or not text else text + "\n"
    return ToolOutput(
        body + "\n" + note,
        {
            "kind": "truncated",
            "content": text,
            "truncation": {"startLine": page.start_line, "linesLeft": page.lines_left},
            "continuation": continuation,
        },
    )


@tool("read", group="group:fs", side_effects=False)
async def read(args: ReadArgs, ctx: ToolContext) -> ToolOutput:
    return await asyncio.to_thread(_read, args, ctx)


# --- write ---------------------------------------------------------------------------------


class WriteArgs(BaseModel):
    """Create or overwrite a file with the given content (missing parent folders are created)."""

    path: str = Field(description="File to write.")
    content: str = Field(description="The complete new content of the file.")


def _diff(old: str, new: str, name: str) -> tuple[str, int | None]:
    if len(old) + len(new) > 4 * _DIFF_MAX_CHARS:
        return "(diff omitted: file too large)", None
    lines = list(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), name, name, n=2
        )
    )
    first: int | None = None
    for line in lines:
        m = re.match(r"^@@ -\d+(?:,\d+)? \+(\d+)", line)
        if m:
            first = int(m.group(1))
            break
    text = "".join(lines)
    if len(text) > _DIFF_MAX_CHARS:
        text = text[:_DIFF_MAX_CHARS] + "\n…"
    return text, first


def _read_existing(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None


def _write(args: WriteArgs, ctx: ToolContext) -> ToolOutput:
    path = resolve_path(args.path, ctx)
    shown = display(path, ctx.workspace)
    if path.is_dir():
        raise ToolError(f"{path} is a directory")
    data = args.content.encode("utf-8")
    old = _read_existing(path) if path.exists() and path.stat().st_size <= 1_000_000 else None
    created = not path.exists()
    if old is not None and old == args.content:
        return ToolOutput(
            f"{shown} already has this content ({len(data)} bytes); nothing written.",
            {"changed": False},
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise ToolError(f"cannot write {path}: {exc.strerror}") from exc
    diff, first = _diff(old or "", args.content, shown)
    return ToolOutput(
        f"Wrote {len(data)} bytes to {shown}.",
        {"changed": True, "created": created, "diff": diff, "firstChangedLine": first},
    )


@tool("write", group="group:fs")
async def write(args: WriteArgs, ctx: ToolContext) -> ToolOutput:
    return await asyncio.to_thread(_write, args, ctx)


# --- edit ----------------------------------------------------------------------------------


class EditBlock(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    old_text: str = Field(alias="oldText", description="Exact text to replace (must be unique).")
    new_text: str = Field(alias="newText", description="Replacement text.")


class EditArgs(BaseModel):
    """Replace exact text in a file. Each edit's oldText must occur exactly once in the original
    file (add surrounding lines to make it unique); edits must not overlap."""

    path: str = Field(description="File to edit.")
    edits: list[EditBlock] = Field(
        min_length=1, description="Replacements, all matched against the original file."
    )


_QUOTES = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u201f": '"',
    "\u2033": '"',
}


def _norm_char(c: str) -> str:
    if c in _QUOTES:
        return _QUOTES[c]
    cat = unicodedata.category(c)
    if cat == "Pd":
        return "-"
    if cat == "Zs":
        return " "
    return unicodedata.normalize("NFKC", c)


def _lenient(text: str) -> tuple[str, list[int], list[bool]]:
    """Normalised text, the original index of each char, and whether it starts its source."""
    out: list[str] = []
    origin: list[int] = []
    edge: list[bool] = []
    for line_start, line in _lines_with_offsets(text):
        body = line[:-1] if line.endswith("\n") else line
        keep = len(body.rstrip(" \t"))
        for i, c in enumerate(body):
            if i >= keep and _norm_char(c) in (" ", "\t"):
                continue  # trailing whitespace does not take part in matching
            produced = _norm_char(c)
            for j, pc in enumerate(produced):
                out.append(pc)
                origin.append(line_start + i)
                edge.append(j == 0)
        if line.endswith("\n"):
            out.append("\n")
            origin.append(line_start + len(line) - 1)
            edge.append(True)
    return "".join(out), origin, edge


def _lenient_needle(text: str) -> str:
    return _lenient(text)[0]


def _lines_with_offsets(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    pos = 0
    for line in text.splitlines(keepends=True):
        out.append((pos, line))
        pos += len(line)
    return out


def _find_all(hay: str, needle: str, cap: int = 100) -> list[int]:
    found: list[int] = []
    start = 0
    while len(found) < cap:
        at = hay.find(needle, start)
        if at < 0:
            break
        found.append(at)
        start = at + 1
    return found


def _not_found_hint(original: str, needle: str) -> str:
    if len(original) <= 2000:
        return f"\nCurrent file content:\n{original}"
    lines = original.splitlines()
    first = next((ln for ln in needle.splitlines() if ln.strip()), needle)
    close = difflib.get_close_matches(first, lines, n=1, cutoff=0.5)
    if not close:
        return ""
    index = lines.index(close[0])
    excerpt = "\n".join(lines[max(0, index - 2) : index + 3])
    return f"\nClosest match near line {index + 1}:\n{excerpt}"


def _locate(original: str, old: str, index: int, shown: str) -> tuple[int, int]:
    exact = _find_all(original, old)
    if len(exact) == 1:
        return exact[0], exact[0] + len(old)
    if len(exact) > 1:
        raise ToolError(
            f"edits[{index}].oldText was found {len(exact)} times in {shown}; it must be unique"
            " (include more surrounding lines)."
        )
    hay, origin, edge = _lenient(original)
    needle = _lenient_needle(old)
    if needle:
        hits = _find_all(hay, needle)
        if len(hits) > 1:
            raise ToolError(
                f"edits[{index}].oldText was found {len(hits)} times in {shown} (ignoring quote,"
                " dash and trailing-space differences); it must be unique."
            )
        if len(hits) == 1:
            s, e = hits[0], hits[0] + len(needle)
            if not edge[s] or (e < len(hay) and not edge[e]):
                raise ToolError(
                    f"edits[{index}].oldText only matches inside a normalised character in {shown}."
                )
            start = origin[s]
            end = origin[e] if e < len(hay) else len(original)
            if hay[e - 1] == "\n":
                end = origin[e - 1] + 1
            return start, end
    raise ToolError(
        f"edits[{index}].oldText was not found in {shown}." + _not_found_hint(original, old)
    )


def apply_edits(original: str, edits: list[tuple[str, str]], shown: str) -> str:
    """Apply `(old, new)` pairs to LF text; every old must be unique and non-overlapping."""
    spans: list[tuple[int, int, str, int]] = []
    for index, (old, new) in enumerate(edits):
        if not old:
            raise ToolError(f"edits[{index}].oldText must not be empty")
        start, end = _locate(original, old, index, shown)
        spans.append((start, end, new, index))
    spans.sort()
    for (_s1, e1, _, i1), (s2, _e2, _, i2) in itertools.pairwise(spans):
        if s2 < e1:
            raise ToolError(f"edits[{i1}] and edits[{i2}] overlap in {shown}; merge them")
    result = original
    for start, end, new, _ in reversed(spans):
        result = result[:start] + new + result[end:]
    return result


def _edit(args: EditArgs, ctx: ToolContext) -> ToolOutput:
    path = resolve_path(args.path, ctx)
    shown = display(path, ctx.workspace)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ToolError(f"ENOENT: no such file: {path}") from None
    except IsADirectoryError:
        raise ToolError(f"{path} is a directory") from None
    bom = raw.startswith(b"\xef\xbb\xbf")
    try:
        text = raw[3 if bom else 0 :].decode("utf-8")
    except UnicodeDecodeError:
        raise ToolError(f"{path} is not UTF-8 text") from None
    crlf = "\r\n" in text
    original = text.replace("\r\n", "\n")
    pairs = [
        (e.old_text.replace("\r\n", "\n"), e.new_text.replace("\r\n", "\n")) for e in args.edits
    ]
    updated = apply_edits(original, pairs, shown)
    if updated == original:
        raise ToolError(f"The edits leave {shown} unchanged (newText equals oldText).")
    diff, first = _diff(original, updated, shown)
    out = updated.replace("\n", "\r\n") if crlf else updated
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + out.encode("utf-8"))
    count = len(args.edits)
    return ToolOutput(
        f"Replaced {count} block{'s' if count != 1 else ''} in {shown}.",
        {"changed": True, "diff": diff, "firstChangedLine": first},
    )


@tool("edit", group="group:fs")
async def edit(args: EditArgs, ctx: ToolContext) -> ToolOutput:
    return await asyncio.to_thread(_edit, args, ctx)


# --- ls ------------------------------------------------------------------------------------


class LsArgs(BaseModel):
    """List a directory (default: the workspace): one JSON-quoted name per line, sorted,
    directories end with /. Use `after` with the last name shown to get the next page."""

    path: str | None = Field(None, description="Directory to list (default: the workspace).")
    limit: float | None = Field(None, gt=0, description="Maximum entries (default 500).")
    after: str | None = Field(None, description="Continue after this name (from the last page).")


def _ls(args: LsArgs, ctx: ToolContext) -> ToolOutput:
    path = resolve_path(args.path or ".", ctx)
    if not path.exists():
        raise ToolError(f"ENOENT: no such directory: {path}")
    if not path.is_dir():
        raise ToolError(f"{path} is not a directory")
    limit = 500 if args.limit is None else max(1, int(args.limit))
    entries: list[tuple[bytes, str]] = []
    with os.scandir(path) as it:
        for entry in it:
            name = entry.name + ("/" if entry.is_dir(follow_symlinks=False) else "")
            entries.append((os.fsencode(entry.name), name))
    entries.sort()
    if args.after is not None:
        after = os.fsencode(args.after.rstrip("/"))
        entries = [e for e in entries if e[0] > after]
    page = entries[:limit]
    lines = [json.dumps(name, ensure_ascii=False) for _, name in page]
    details: dict[str, Any] = {"count": len(page), "total": len(entries)}
    if len(entries) > limit:
        last = page[-1][1].rstrip("/")
        lines.append(
            f"[{len(entries) - limit} more entries; continue with after={json.dumps(last, ensure_ascii=False)}]"
        )
        details["after"] = last
    if not page:
        lines.append("(empty directory)" if args.after is None else "(no more entries)")
    return ToolOutput("\n".join(lines), details)


@tool("ls", group="group:fs", side_effects=False)
async def ls(args: LsArgs, ctx: ToolContext) -> ToolOutput:
    return await asyncio.to_thread(_ls, args, ctx)

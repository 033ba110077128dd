"""`apply_patch`: the `*** Begin Patch` format (tools.md §1.5).

The whole patch is parsed and every change computed before anything is written, so a hunk
that does not match leaves all files as they were.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field

from gateway.agents.tools.fspaths import display, patch_workspace_only, resolve_path
from gateway.agents.tools.registry import ToolContext, ToolError, ToolOutput, tool

BEGIN, END = "*** Begin Patch", "*** End Patch"
ADD, UPDATE, DELETE, MOVE = (
    "*** Add File: ",
    "*** Update File: ",
    "*** Delete File: ",
    "*** Move to: ",
)
EOF_MARK = "*** End of File"


class ApplyPatchArgs(BaseModel):
    """Add, update, move or delete files with one patch:
    *** Begin Patch / *** Add File: p (then +lines) / *** Update File: p [*** Move to: q]
    (then @@ hunks of ' ', '-', '+' lines) / *** Delete File: p / *** End Patch."""

    input: str = Field(description="The whole patch, from *** Begin Patch to *** End Patch.")


@dataclass
class Hunk:
    anchor: str | None
    old: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    at_eof: bool = False


@dataclass
class FileOp:
    kind: str  # "A" | "M" | "D"
    path: str
    move_to: str | None = None
    lines: list[str] = field(default_factory=list)  # Add: content lines
    hunks: list[Hunk] = field(default_factory=list)


def parse_patch(text: str) -> list[FileOp]:
    lines = text.replace("\r\n", "\n").strip("\n").split("\n")
    if not lines or lines[0].strip() != BEGIN:
        raise ToolError(f"patch must start with '{BEGIN}'")
    if lines[-1].strip() != END:
        raise ToolError(f"patch must end with '{END}'")
    ops: list[FileOp] = []
    i = 1
    body = lines[:-1]
    while i < len(body):
        line = body[i]
        if line.startswith(ADD):
            op = FileOp("A", line[len(ADD) :].strip())
            i += 1
            while i < len(body) and not body[i].startswith("*** "):
                if not body[i].startswith("+"):
                    raise ToolError(f"line {i + 1}: Add File lines must start with '+'")
                op.lines.append(body[i][1:])
                i += 1
            ops.append(op)
        elif line.startswith(DELETE):
            ops.append(FileOp("D", line[len(DELETE) :].strip()))
            i += 1
        elif line.startswith(UPDATE):
            op = FileOp("M", line[len(UPDATE) :].strip())
            i += 1
            if i < len(body) and body[i].startswith(MOVE):
                op.move_to = body[i][len(MOVE) :].strip()
                i += 1
            hunk: Hunk | None = None
            while i < len(body) and not (
                body[i].startswith("*** ") and body[i].strip() != EOF_MARK
            ):
                current = body[i]
                if current.startswith("@@"):
                    hunk = Hunk(current[2:].strip() or None)
                    op.hunks.append(hunk)
                elif current.strip() == EOF_MARK:
                    if hunk is None:
                        raise ToolError(f"line {i + 1}: '{EOF_MARK}' outside a hunk")
                    hunk.at_eof = True
                else:
                    if hunk is None:  # a hunk may start without its @@ line
                        hunk = Hunk(None)
                        op.hunks.append(hunk)
                    tag, rest = current[:1], current[1:]
                    if tag == " " or current == "":
                        hunk.old.append(rest)
                        hunk.new.append(rest)
                    elif tag == "-":
                        hunk.old.append(rest)
                    elif tag == "+":
                        hunk.new.append(rest)
                    else:
                        raise ToolError(
                            f"line {i + 1}: hunk lines must start with ' ', '-' or '+': {current!r}"
                        )
                i += 1
            if not op.hunks and op.move_to is None:
                raise ToolError(f"Update File {op.path}: no hunks")
            ops.append(op)
        elif not line.strip():
            i += 1
        else:
            raise ToolError(f"line {i + 1}: unexpected {line!r}")
    if not ops:
        raise ToolError("the patch changes no files")
    return ops


def _seek(lines: list[str], pattern: list[str], start: int, at_eof: bool) -> int:
    """Index where `pattern` occurs at or after `start`: exact, then ignoring trailing, then
    surrounding whitespace; -1 when absent."""
    if not pattern:
        return len(lines) if at_eof else start
    for norm in (lambda s: s, str.rstrip, str.strip):
        want = [norm(p) for p in pattern]
        last = len(lines) - len(pattern)
        candidates = [last] if at_eof else range(start, last + 1)
        for index in candidates:
            if index >= start and [norm(x) for x in lines[index : index + len(pattern)]] == want:
                return index
    return -1


def apply_hunks(content: str, hunks: list[Hunk], shown: str) -> str:
    lines = content.split("\n")
    trailing_newline = content.endswith("\n")
    if trailing_newline:
        lines = lines[:-1]
    cursor = 0
    for number, hunk in enumerate(hunks, 1):
        if hunk.anchor:
            found = _seek(lines, [hunk.anchor], cursor, False)
            if found < 0:
                raise ToolError(f"{shown}: hunk {number}: context '@@ {hunk.anchor}' not found")
            cursor = found
        at = _seek(lines, hunk.old, cursor, hunk.at_eof)
        if at < 0:
            expected = "\n".join(hunk.old[:10])
            raise ToolError(
                f"{shown}: hunk {number}: expected lines were not found in the file:\n{expected}"
            )
        lines[at : at + len(hunk.old)] = hunk.new
        cursor = at + len(hunk.new)
    return "\n".join(lines) + ("\n" if trailing_newline or not lines else "")


def _apply(args: ApplyPatchArgs, ctx: ToolContext) -> ToolOutput:
    only = patch_workspace_only(ctx)
    ops = parse_patch(args.input)
    writes: dict[Path, str] = {}
    deletes: list[Path] = []
    summary: list[str] = []
    for op in ops:
        path = resolve_path(op.path, ctx, workspace_only=only)
        shown = display(path, ctx.workspace)
        if op.kind == "A":
            if path.exists() or path in writes:
                raise ToolError(f"Add File {shown}: the file already exists")
            writes[path] = "\n".join(op.lines) + ("\n" if op.lines else "")
            summary.append(f"A {shown}")
        elif op.kind == "D":
            if not path.is_file():
                raise ToolError(f"Delete File {shown}: no such file")
            deletes.append(path)
            summary.append(f"D {shown}")
        else:
            if not path.is_file():
                raise ToolError(f"Update File {shown}: no such file")
            current = writes.get(path)
            if current is None:
                current = path.read_bytes().decode("utf-8", errors="replace")
            crlf = "\r\n" in current
            updated = apply_hunks(current.replace("\r\n", "\n"), op.hunks, shown)
            if crlf:
                updated = updated.replace("\n", "\r\n")
            if op.move_to:
                target = resolve_path(op.move_to, ctx, workspace_only=only)
                if target.exists() or target in writes:
                    raise ToolError(f"Move to {display(target, ctx.workspace)}: already exists")
                writes[target] = updated
                deletes.append(path)
                summary.append(f"M {display(target, ctx.workspace)}")
            else:
                writes[path] = updated
                summary.append(f"M {shown}")
    for path, text in writes.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
    for path in deletes:
        if path not in writes:
            path.unlink(missing_ok=True)
    return ToolOutput(
        "Success. Updated the following files:\n" + "\n".join(summary),
        {"changed": True, "files": summary},
    )


@tool("apply_patch", group="group:fs")
async def apply_patch(args: ApplyPatchArgs, ctx: ToolContext) -> ToolOutput:
    return await asyncio.to_thread(_apply, args, ctx)

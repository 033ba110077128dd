"""Small tools for the tool-loop tests, declared with the same `@tool` as the real families.

They are taken out of the registry right after import and put back only inside
`registered()` (a test fixture) or by `gateway_main` (a subprocess gateway), so other tests
never see them among the real tools.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from gateway.agents import tools as tool_modules
from gateway.agents.tools.registry import REGISTRY, ToolContext, ToolError, ToolOutput, tool
from tests.fakes.llm import tool_results

STARTED: dict[str, asyncio.Event] = {}
CANCELLED: list[str] = []
_barriers: dict[str, asyncio.Barrier] = {}


class NoteWriteArgs(BaseModel):
    """Write a note file in the workspace."""

    path: str = Field(description="relative path")
    content: str


class NoteReadArgs(BaseModel):
    """Read a note file from the workspace."""

    path: str


class SleepArgs(BaseModel):
    """Sleep until cancelled (or `seconds`)."""

    name: str = "sleep"
    seconds: float = 60.0
    marker: str | None = Field(None, description="file written when the sleep starts")


class BarrierArgs(BaseModel):
    """Wait until `parties` calls with the same `name` are waiting together."""

    name: str
    parties: int = 2


def _inside(ctx: ToolContext, path: str) -> Path:
    target = (ctx.workspace / path).resolve()
    if not target.is_relative_to(ctx.workspace.resolve()):
        raise ToolError(f"{path} is outside the workspace")
    return target


@tool("test_write", group="group:test")
async def note_write(args: NoteWriteArgs, ctx: ToolContext) -> ToolOutput:
    target = _inside(ctx, args.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(args.content)
    size = len(args.content.encode())
    return ToolOutput(f"wrote {size} bytes to {args.path}", details={"bytes": size})


@tool("test_read", group="group:test", side_effects=False)
async def note_read(args: NoteReadArgs, ctx: ToolContext) -> str:
    target = _inside(ctx, args.path)
    if not target.is_file():
        raise ToolError(f"{args.path} does not exist")
    return target.read_text()


@tool("test_sleep", group="group:test", side_effects=False, timeout_s=120)
async def sleep(args: SleepArgs, ctx: ToolContext) -> str:
    STARTED.setdefault(args.name, asyncio.Event()).set()
    if args.marker:
        _inside(ctx, args.marker).write_text("started")
    try:
        await asyncio.sleep(args.seconds)
    except asyncio.CancelledError:
        CANCELLED.append(args.name)
        raise
    return f"slept {args.seconds}s"


@tool("test_barrier", group="group:test", side_effects=False, timeout_s=5)
async def barrier(args: BarrierArgs, ctx: ToolContext) -> str:
    gate = _barriers.setdefault(args.name, asyncio.Barrier(args.parties))
    index = await gate.wait()
    return f"{args.name} passed ({index})"


class ShellArgs(BaseModel):
    """Echo text, standing in for a runtime tool such as exec."""

    text: str


@tool("test_runtime", group="group:runtime")
async def runtime(args: ShellArgs, ctx: ToolContext) -> str:
    return args.text


NAMES = ("test_write", "test_read", "test_sleep", "test_barrier", "test_runtime")
tool_modules.load()  # the real families first, so a later load() cannot re-register ours
TOOLS = {name: REGISTRY.pop(name) for name in NAMES}


def install() -> None:
    REGISTRY.update(TOOLS)


@contextlib.contextmanager
def registered() -> Iterator[None]:
    install()
    try:
        yield
    finally:
        for name in NAMES:
            REGISTRY.pop(name, None)


def write_then_read(_api: str, body: dict[str, Any]) -> dict[str, Any]:
    """The model of the issue's scenario: write a note, read it back, quote it."""
    results = tool_results(body)
    if not results:
        note = {"path": "notes/todo.md", "content": "buy milk"}
        return {"text": "Writing it.", "tool_calls": [{"name": "test_write", "arguments": note}]}
    if results[0]["text"].startswith("wrote"):
        read = {"name": "test_read", "arguments": {"path": "notes/todo.md"}}
        return {"tool_calls": [read]}
    return {"text": f"The note says: {results[0]['text']}"}

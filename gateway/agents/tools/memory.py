"""`memory_search` and `memory_get` (tools.md §1.11): the agent's recall of its notes.

Memory belongs to the owner: both tools refuse a requester who is not the owner or a turn
in a group or channel, whatever the policy offered (MEMORY.md is never shown there either,
agents.md §7.2). Results are JSON for the model.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.agents.memory.files import is_memory_path
from gateway.agents.memory.search import searcher_for
from gateway.agents.memory.settings import memory_settings
from gateway.agents.tools.registry import ToolContext, ToolError, ToolOutput, tool

MAX_GET_CHARS = 20_000
DEFAULT_GET_LINES = 200

Corpus = Literal["memory", "wiki", "all", "sessions"]


class MemorySearchArgs(BaseModel):
    """Search your memory files (MEMORY.md, USER.md, memory/*.md and configured extra
    notes) for what you wrote before: facts, preferences, decisions, dates. Returns the best
    matching snippets with their file path and line range; read more with memory_get."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, description="What to look for, in plain words.")
    maxResults: int | None = Field(None, ge=1, le=50, description="Most results to return.")
    minScore: float | None = Field(None, ge=0, le=1, description="Drop hits below this score.")
    corpus: Corpus | None = Field(None, description="Which notes to search; default memory.")


class MemoryGetArgs(BaseModel):
    """Read a memory file (MEMORY.md, USER.md or a Markdown file under memory/), or some of
    its lines, e.g. the range a memory_search hit points to."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        min_length=1, description="Workspace-relative path, e.g. memory/2026-05-01.md"
    )
    # `from` is a Python keyword; the model sees the spec's name.
    from_: int | None = Field(None, ge=1, alias="from", description="First line (1-based).")
    lines: int | None = Field(None, ge=1, description="How many lines to read.")
    corpus: Corpus | None = Field(None, description="Only memory files are readable here.")


def _private_only(ctx: ToolContext, tool_name: str) -> None:
    req = ctx.requester
    if not req.owner or req.chat_type in ("group", "channel"):
        raise ToolError(
            f"{tool_name} is only available in the owner's private sessions; "
            "memory is not shared in groups or with other people."
        )


def memory_db_path(ctx: ToolContext) -> Path:
    """`<stateDir>/agents/<agentId>/memory/index.sqlite` (tests may pass `memory_db`)."""
    override = ctx.extras.get("memory_db")
    if isinstance(override, (str, Path)):
        return Path(override)
    if ctx.gateway is not None:
        state_dir = Path(ctx.gateway.settings.state_dir)
        return state_dir / "agents" / ctx.agent_id / "memory" / "index.sqlite"
    return ctx.workspace / ".clawgate" / "memory-index.sqlite"


@tool("memory_search", group="group:memory", side_effects=False)
async def memory_search(args: MemorySearchArgs, ctx: ToolContext) -> ToolOutput:
    _private_only(ctx, "memory_search")
    settings = memory_settings(ctx.config, ctx.agent_id, ctx.workspace)
    if not settings.enabled:
        raise ToolError("Memory search is disabled (memory.search.enabled is false).")
    corpus = args.corpus or "memory"
    body: dict[str, object]
    if corpus in ("wiki", "sessions"):
        body = {
            "results": [],
            "provider": "fts",
            "citations": "auto",
            "warning": f"corpus {corpus!r} is not indexed here; only 'memory' is.",
        }
        return ToolOutput(json.dumps(body, ensure_ascii=False), details=body)
    searcher = searcher_for(memory_db_path(ctx), ctx.workspace, settings)
    max_results = args.maxResults or settings.max_results
    min_score = args.minScore if args.minScore is not None else settings.min_score
    outcome = await searcher.search(args.query, max_results, min_score)
    body = {
        "results": [r.as_json() for r in outcome.results],
        "provider": outcome.provider,
        "mode": outcome.mode,
        "citations": "auto",
        "debug": {"tookMs": round(outcome.took_ms, 2)},
    }
    if outcome.warnings:
        body["warning"] = "; ".join(outcome.warnings)
    return ToolOutput(json.dumps(body, ensure_ascii=False), details=body)


@tool("memory_get", group="group:memory", side_effects=False)
async def memory_get(args: MemoryGetArgs, ctx: ToolContext) -> ToolOutput:
    _private_only(ctx, "memory_get")
    rel = args.path.strip().removeprefix("./")
    if corpus_err := _corpus_error(args.corpus):
        raise ToolError(corpus_err)
    if not is_memory_path(rel):
        raise ToolError(
            f"Cannot read {args.path!r}: only MEMORY.md, USER.md and Markdown files under "
            "memory/ are readable with memory_get."
        )
    root = ctx.workspace.resolve()
    target = ctx.workspace / rel
    if not target.exists():
        body: dict[str, object] = {"status": "not_found", "path": rel}
        return ToolOutput(json.dumps(body), details=body)
    real = target.resolve()
    if not real.is_relative_to(root) or target.is_symlink() or not real.is_file():
        raise ToolError(f"Cannot read {rel!r}: not a regular file inside the workspace.")
    all_lines = await asyncio.to_thread(_read_lines, real)
    start = args.from_ or 1
    count = args.lines or DEFAULT_GET_LINES
    picked = all_lines[start - 1 : start - 1 + count]
    text = "\n".join(picked)
    truncated = len(text) > MAX_GET_CHARS
    if truncated:
        text = text[:MAX_GET_CHARS]
    body = {
        "status": "ok",
        "path": rel,
        "from": start,
        "lines": len(picked),
        "totalLines": len(all_lines),
        "text": text,
    }
    end = start - 1 + len(picked)
    if truncated or end < len(all_lines):
        body["truncated"] = True
        body["nextFrom"] = end + 1
    return ToolOutput(json.dumps(body, ensure_ascii=False), details=body)


def _corpus_error(corpus: Corpus | None) -> str | None:
    if corpus in (None, "memory", "all"):
        return None
    return f"corpus {corpus!r} is not readable here; memory_get reads memory files only."


def _read_lines(path: Path) -> list[str]:
    # O_NOFOLLOW: a link swapped in after the checks above is still not followed.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, encoding="utf-8", errors="replace") as fh:
        return fh.read().splitlines()

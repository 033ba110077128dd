"""The tool registry: adding a tool is one decorated function with a pydantic input model.

@tool("read", group="group:fs")
async def read(args: ReadArgs, ctx: ToolContext) -> ToolOutput: ...

The input model's JSON schema is what the model sees (tools.md §1.1); its docstring (or the
`description` given to the decorator) is the tool's description. `invoke` is the only way a
tool runs: it validates the arguments, applies the timeout and turns every failure into an
error result the model can read, so a bad call never crashes a turn.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

from providers.types import ToolCall, ToolSpec

if TYPE_CHECKING:
    from gateway.config.models import OpenClawConfig
    from gateway.runtime import Gateway

log = logging.getLogger("agent/tools")

DEFAULT_TIMEOUT_S = 60.0


class ToolError(Exception):
    """A failure the model should read (bad path, missing text, refused by policy...)."""


@dataclass(frozen=True)
class Requester:
    """Who asked for the turn, decided once by its source (tools.md §2.6, §2.8).

    `owner` is the trusted flag: operator WebSocket clients and channel senders matching
    `commands.ownerAllowFrom` (or, while that is unset, listed by id in `allowFrom`).
    Everyone else is a stranger. Sender facts come from the channel adapter, never from text.
    """

    owner: bool
    channel: str | None = None  # "telegram" | "discord" | "webchat" | ... ; None = operator
    chat_type: Literal["direct", "group", "channel"] | None = None
    chat_id: str | None = None  # Telegram chat id, Discord channel id
    guild_id: str | None = None  # Discord guild
    thread_id: str | None = None
    account_id: str | None = None
    sender_id: str | None = None
    sender_username: str | None = None
    sender_name: str | None = None
    sender_e164: str | None = None

    @classmethod
    def operator(cls) -> Requester:
        return cls(owner=True)


@dataclass
class ToolContext:
    """What a running tool may know about its turn."""

    agent_id: str
    session_key: str
    run_id: str
    workspace: Path
    config: OpenClawConfig
    requester: Requester
    gateway: Gateway | None = None
    context_window_tokens: int = 200_000
    # Partial progress for UIs (`agent` tool `update` events); never shown to the model.
    on_update: Callable[[Mapping[str, Any]], None] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    # Per call, filled by `invoke` on its copy of the context: the names the policy allowed
    # in this turn (exec backgrounds only when `process` is among them) and the call's id.
    allowed_tools: frozenset[str] | None = None
    tool_call_id: str | None = None


@dataclass(frozen=True)
class ToolOutput:
    """A tool's result: `text` is what the model sees, `details` is for transcripts and UIs."""

    text: str
    details: Mapping[str, Any] = field(default_factory=dict)
    is_error: bool = False


ToolFn = Callable[[Any, ToolContext], Awaitable["ToolOutput | str"]]
# Why a tool cannot be offered under this config and environment (e.g. web_search without a
# provider key), or None when it can.
AvailableFn = Callable[["OpenClawConfig", Mapping[str, str]], "str | None"]


@dataclass(frozen=True)
class Tool:
    name: str
    group: str  # "group:fs", "group:runtime", "group:web", "group:memory", "group:automation"
    description: str
    input_model: type[BaseModel]
    fn: ToolFn
    # None: the tool enforces its own deadline (exec: per-call timeoutSeconds, 0 = none).
    timeout_s: float | None = DEFAULT_TIMEOUT_S
    # A tool that changes the world (files, processes, messages, jobs). After one has run in a
    # turn, a model failure must not fall back to another model (the call would be replayed).
    side_effects: bool = True
    owner_only: bool = False
    available: AvailableFn | None = None

    def unavailable_reason(
        self, config: OpenClawConfig, env: Mapping[str, str] | None = None
    ) -> str | None:
        """None when the tool can be offered, else why not (logged once per reason)."""
        if self.available is None:
            return None
        reason = self.available(config, os.environ if env is None else env)
        if reason is not None and (self.name, reason) not in _said_unavailable:
            _said_unavailable.add((self.name, reason))
            log.info("tool %s is not offered: %s", self.name, reason)
        return reason

    def spec(self) -> ToolSpec:
        schema = self.input_model.model_json_schema()
        schema.pop("title", None)
        schema.pop("description", None)
        return ToolSpec(self.name, self.description, schema)


REGISTRY: dict[str, Tool] = {}
_said_unavailable: set[tuple[str, str]] = set()


def tool(
    name: str,
    *,
    group: str,
    description: str | None = None,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    side_effects: bool = True,
    owner_only: bool = False,
    available: AvailableFn | None = None,
) -> Callable[[ToolFn], ToolFn]:
    """Register `fn(args: InputModel, ctx: ToolContext)` as the tool `name`."""

    def register(fn: ToolFn) -> ToolFn:
        params = list(inspect.signature(fn, eval_str=True).parameters.values())
        model = params[0].annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"tool {name}: first parameter must be a pydantic model")
        if name in REGISTRY:
            raise ValueError(f"tool {name} registered twice")
        text = description or inspect.getdoc(model) or inspect.getdoc(fn) or name
        REGISTRY[name] = Tool(
            name, group, text, model, fn, timeout_s, side_effects, owner_only, available
        )
        return fn

    return register


def error_output(tool_name: str, message: str, **extra: Any) -> ToolOutput:
    """The error envelope the model sees (tools.md §1.1)."""
    body = {"status": "error", "tool": tool_name, "error": message, **extra}
    return ToolOutput(json.dumps(body, ensure_ascii=False), details=body, is_error=True)


async def invoke(call: ToolCall, allowed: Mapping[str, Tool], ctx: ToolContext) -> ToolOutput:
    """Run one tool call; every failure becomes an error result, never an exception.

    Cancellation (chat.abort) propagates: the caller records the aborted result.
    """
    found = allowed.get(call.name)
    if found is None:
        return error_output(call.name, f"Tool {call.name!r} not found or not allowed here.")
    if call.raw_arguments is not None:
        return error_output(
            call.name,
            "The arguments are not a JSON object.",
            received=call.raw_arguments[:2000],
        )
    try:
        args = found.input_model.model_validate(dict(call.arguments))
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        ]
        return error_output(
            call.name,
            "Invalid arguments: " + "; ".join(problems),
            received=_clip_json(call.arguments),
        )
    ctx = replace(
        ctx,
        allowed_tools=frozenset(allowed) if ctx.allowed_tools is None else ctx.allowed_tools,
        tool_call_id=call.id,
    )
    try:
        result = await asyncio.wait_for(found.fn(args, ctx), found.timeout_s)
    except TimeoutError:
        return error_output(call.name, f"Timed out after {found.timeout_s or 0:g}s.")
    except ToolError as exc:
        return error_output(call.name, str(exc))
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a bug in a tool must not end the turn
        log.exception("tool %s failed", call.name)
        return error_output(call.name, f"{type(exc).__name__}: {exc}")
    out = ToolOutput(result) if isinstance(result, str) else result
    limit = result_char_limit(ctx.context_window_tokens)
    if len(out.text) > limit:
        out = ToolOutput(cap_text(out.text, limit), out.details, out.is_error)
    return out


def result_char_limit(context_window_tokens: int) -> int:
    """Most characters one result may put in the model's context (tools.md §1.1)."""
    if context_window_tokens >= 200_000:
        fixed = 64_000
    elif context_window_tokens >= 100_000:
        fixed = 32_000
    else:
        fixed = 16_000
    return max(1_000, min(int(context_window_tokens * 4 * 0.3), fixed))


def cap_text(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters with a note saying how much was dropped."""
    if len(text) <= limit:
        return text
    note_room = 200
    keep = max(0, limit - note_room)
    dropped = len(text) - keep
    return (
        text[:keep] + f"\n\n[Result truncated: {dropped} more characters not shown. Ask for less"
        " (a narrower path, offset/limit, or a filtering command).]"
    )


def _clip_json(value: Mapping[str, Any]) -> Any:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return value if len(text) <= 2000 else text[:2000] + "…"

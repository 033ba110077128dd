"""The tool loop of one turn (tools.md §4): model → tool calls → results → model → … → answer.

* Every call of one response starts at once; results go back to the model in call order, one
  user message, and each is written to the transcript as its own `toolResult` entry (after
  the assistant entry holding the calls), so a crash leaves a readable, replayable record.
* A tool error never ends the turn: the model reads the error result and carries on.
* At `maxToolIterations` rounds the model gets one last call with tools forbidden; if it
  still answers nothing, a fixed sentence says the step limit was reached.
* Abort (chat.abort, /stop, the run timeout) cancels the running tools, records an aborted
  result for every call still open, and lets the cancellation end the turn.
* Failover: until a tool with side effects has run, each model call may fall back along the
  candidate chain; afterwards only the model that asked for the tools is used, and its
  failure ends the turn (tools are never replayed on another model).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from gateway.agents.tools.registry import Tool, ToolContext, ToolOutput, invoke
from gateway.agents.transcript import now_ms
from gateway.logs import scrubber
from gateway.media.blocks import MediaResolver, media_refs
from providers.classify import Failure
from providers.failover import TurnResult
from providers.types import (
    Block,
    Completion,
    Message,
    Text,
    ToolCall,
    ToolResult,
    ToolSpec,
    TurnRequest,
)
from providers.types import Usage as CallUsage

log = logging.getLogger("agent/tools")

DEFAULT_MAX_ITERATIONS = 50
UPDATE_INTERVAL_S = 0.25  # tool `update` events at most this often per call (tools.md §3.2)
ABORTED_TEXT = "Aborted: the turn was stopped while this tool was running."
MISSING_RESULT_TEXT = (
    "No result was recorded for this tool call (the turn was interrupted); this error "
    "result was inserted to repair the transcript."
)
STEP_LIMIT_TEXT = (
    "⚠️ I stopped after {n} tool steps, the limit for one turn "
    "(agents.defaults.maxToolIterations). Ask me to continue if more is needed."
)


class LoopSink(Protocol):
    """Where the loop reports to the run (implemented by the runner's sink)."""

    def __call__(self, text: str) -> None: ...

    def reset(self) -> None: ...

    def record(self, messages: Sequence[dict[str, Any]]) -> None:
        """Append transcript messages now (on disk before the next step)."""

    def agent_event(self, stream: str, data: dict[str, Any]) -> None:
        """One `agent` event of this run (`tool`, `item` streams)."""


@dataclass(frozen=True)
class Toolset:
    """The tools this turn may use and what they may know about it."""

    tools: Mapping[str, Tool]
    context: ToolContext
    max_iterations: int = DEFAULT_MAX_ITERATIONS


# A model call across candidates: (request, candidates) → the failover result.
ModelCall = Callable[[TurnRequest, Sequence[str]], Awaitable[TurnResult]]


@dataclass
class LoopResult:
    completion: Completion | None  # the final answer (text only)
    candidate: str | None
    api: str | None
    failure: Failure | None = None
    failed_candidate: str | None = None
    after_side_effects: bool = False  # failure came after a side-effecting tool ran
    tool_calls: int = 0
    # (candidate, usage) of each tool-step call before the final one: the turn's other costs.
    steps: list[tuple[str, CallUsage]] = field(default_factory=list)


# --- transcript shapes (tools.md §5.3–5.4) ------------------------------------------------------


def call_block(call: ToolCall) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "toolCall",
        "id": call.id,
        "name": call.name,
        "arguments": dict(call.arguments),
    }
    if call.raw_arguments is not None:
        block["rawArguments"] = call.raw_arguments
    return block


def assistant_entry(
    completion: Completion, provider: str, model: str, api: str | None, usage: dict[str, Any]
) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for block in completion.content:
        if isinstance(block, Text) and block.text:
            content.append({"type": "text", "text": block.text})
        elif isinstance(block, ToolCall):
            content.append(call_block(block))
    entry: dict[str, Any] = {
        "role": "assistant",
        "content": content,
        "api": api,
        "provider": provider,
        "model": model,
        "usage": usage,
        "stopReason": "toolUse",
        "timestamp": now_ms(),
        "responseId": completion.response_id,
    }
    return {k: v for k, v in entry.items() if v is not None}


def result_entry(
    call: ToolCall,
    output: ToolOutput,
    run_id: str | None = None,
    text: str | None = None,
    duration_ms: int | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "role": "toolResult",
        "toolCallId": call.id,
        "toolName": call.name,
        "content": [{"type": "text", "text": output.text if text is None else text}],
        "isError": output.is_error,
        "timestamp": now_ms(),
    }
    if output.details:
        entry["details"] = dict(output.details)
    meta = {"runId": run_id, "durationMs": duration_ms}
    if run_id or duration_ms is not None:
        entry["__openclaw"] = {k: v for k, v in meta.items() if v is not None}
    return entry


def dangling_results(history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Error `toolResult` entries for calls that never got a result (crash, lost abort)."""
    answered = {m.get("toolCallId") for m in history if m.get("role") == "toolResult"}
    out: list[dict[str, Any]] = []
    for message in history:
        if message.get("role") != "assistant":
            continue
        for block in _blocks(message):
            if block.get("type") == "toolCall" and block.get("id") not in answered:
                call = ToolCall(str(block.get("id")), str(block.get("name", "")), {})
                out.append(result_entry(call, ToolOutput(MISSING_RESULT_TEXT, is_error=True)))
    return out


def _blocks(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


# --- the loop --------------------------------------------------------------------------------------


class ToolLoop:
    def __init__(
        self,
        model: ModelCall,
        sink: LoopSink,
        toolset: Toolset,
        *,
        run_id: str,
        usage_json: Callable[[Completion], dict[str, Any]],
    ) -> None:
        self.model = model
        self.sink = sink
        self.toolset = toolset
        self.run_id = run_id
        self.usage_json = usage_json
        specs = [tool_spec(t) for t in toolset.tools.values()]
        self._specs = tuple(sorted(specs, key=lambda s: s.name))
        self._durations: dict[str, int] = {}

    async def run(
        self, messages: tuple[Message, ...], system: str, candidates: Sequence[str]
    ) -> LoopResult:
        chain = list(candidates)
        history = list(messages)
        side_effects = False
        rounds = 0
        calls_made = 0
        steps: list[tuple[str, CallUsage]] = []
        while True:
            last_call = rounds >= self.toolset.max_iterations
            request = TurnRequest(
                model="",
                messages=tuple(history),
                system=system,
                tools=self._specs,
                tool_choice="none" if last_call else "auto",
            )
            if rounds:
                self.sink.reset()  # each model call streams its own text
            turn = await self.model(request, chain)
            done, ref = turn.completion, turn.candidate
            if done is None or ref is None:
                last = turn.attempts[-1].candidate if turn.attempts else chain[0]
                return LoopResult(
                    None,
                    None,
                    None,
                    failure=turn.failure or Failure("unknown"),
                    failed_candidate=last,
                    after_side_effects=side_effects,
                    tool_calls=calls_made,
                    steps=steps,
                )
            # The model that answered leads from now on (no flapping back to a failed one).
            chain = chain[chain.index(ref) :] if ref in chain else [ref]
            calls = done.tool_calls
            if not calls or last_call:
                final = done
                if last_call and (calls or not done.text.strip()):
                    text = STEP_LIMIT_TEXT.format(n=rounds)
                    final = replace(done, content=(Text(text),), stop_reason="stop")
                elif calls:
                    final = replace(done, content=(Text(done.text),))
                return LoopResult(final, ref, turn.api, tool_calls=calls_made, steps=steps)
            steps.append((ref, done.usage))
            provider, _, model = ref.partition("/")
            self.sink.record(
                [assistant_entry(done, provider, model, turn.api, self.usage_json(done))]
            )
            calls_made += len(calls)
            results = await self._run_calls(calls)
            if not side_effects and any(self._may_have_side_effects(c) for c in calls):
                side_effects = True
                chain = chain[:1]  # from here on, no other model (tools are never replayed)
            history.append(Message("assistant", done.content))
            history.append(Message("user", tuple(results)))
            rounds += 1

    def _may_have_side_effects(self, call: ToolCall) -> bool:
        found = self.toolset.tools.get(call.name)
        return found is not None and found.side_effects and call.raw_arguments is None

    async def _run_calls(self, calls: Sequence[ToolCall]) -> list[Block]:
        """Run every call at once; record and return the results in call order."""
        outputs: list[ToolOutput | None] = [None] * len(calls)
        tasks = [
            asyncio.ensure_future(self._one(call, outputs, index))
            for index, call in enumerate(calls)
        ]
        try:
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            # Let each tool clean up (exec kills its process group) before the turn ends.
            await asyncio.wait(tasks, timeout=5)
            aborted = ToolOutput(ABORTED_TEXT, details={"status": "aborted"}, is_error=True)
            self.sink.record(
                [
                    result_entry(
                        call, outputs[i] or aborted, self.run_id, None, self._durations.get(call.id)
                    )
                    for i, call in enumerate(calls)
                ]
            )
            raise
        final = [o if o is not None else ToolOutput("(no result)", is_error=True) for o in outputs]
        texts = [o.text for o in final]  # registry.invoke already capped each to the context
        self.sink.record(
            [
                result_entry(call, out, self.run_id, text, self._durations.get(call.id))
                for call, out, text in zip(calls, final, texts, strict=True)
            ]
        )
        return [
            ToolResult(call.id, call.name, text, out.is_error)
            for call, out, text in zip(calls, final, texts, strict=True)
        ]

    async def _one(self, call: ToolCall, outputs: list[ToolOutput | None], index: int) -> None:
        started = now_ms()
        clock = time.monotonic()
        title = call.name
        item = {
            "itemId": f"tool:{call.id}",
            "toolCallId": call.id,
            "name": call.name,
            "kind": "tool",
            "title": title,
            "commandBearing": call.name == "exec",
            "startedAt": started,
        }
        self.sink.agent_event("item", {**item, "phase": "start", "status": "running"})
        self.sink.agent_event(
            "tool",
            {
                "phase": "start",
                "name": call.name,
                "toolCallId": call.id,
                "args": _masked(call.arguments if call.raw_arguments is None else {}),
            },
        )
        last_update = 0.0

        def on_update(partial: Mapping[str, Any]) -> None:
            nonlocal last_update
            now = time.monotonic()
            if now - last_update < UPDATE_INTERVAL_S:
                return
            last_update = now
            self.sink.agent_event(
                "tool",
                {
                    "phase": "update",
                    "name": call.name,
                    "toolCallId": call.id,
                    "partialResult": _masked(dict(partial)),
                },
            )

        ctx = replace(self.toolset.context, on_update=on_update)
        try:
            output = await invoke(call, self.toolset.tools, ctx)
        except asyncio.CancelledError:
            aborted = ToolOutput(ABORTED_TEXT, details={"status": "aborted"}, is_error=True)
            outputs[index] = aborted
            self._result_events(call, aborted, item, clock, blocked=False)
            raise
        outputs[index] = output
        blocked = output.is_error and (
            call.name not in self.toolset.tools or call.raw_arguments is not None
        )
        self._result_events(call, output, item, clock, blocked=blocked)

    def _result_events(
        self,
        call: ToolCall,
        output: ToolOutput,
        item: dict[str, Any],
        clock: float,
        *,
        blocked: bool,
    ) -> None:
        duration_ms = int((time.monotonic() - clock) * 1000)
        self._durations[call.id] = duration_ms
        result = {
            "content": [{"type": "text", "text": scrubber.scrub(output.text)}],
            "details": {**_masked(dict(output.details)), "durationMs": duration_ms},
        }
        data: dict[str, Any] = {
            "phase": "result",
            "name": call.name,
            "toolCallId": call.id,
            "isError": output.is_error,
            "commandBearing": call.name == "exec",
            "result": result,
        }
        if blocked:
            data["toolErrorSummary"] = scrubber.scrub(output.text)[:300]
        self.sink.agent_event("tool", data)
        status = "blocked" if blocked else ("failed" if output.is_error else "completed")
        end = {**item, "phase": "end", "status": status, "endedAt": now_ms()}
        if output.is_error:
            end["error"] = scrubber.scrub(output.text)[:300]
        self.sink.agent_event("item", end)


@functools.cache
def tool_spec(found: Tool) -> ToolSpec:
    # Building a JSON schema from a pydantic model costs milliseconds; tools are immutable.
    return found.spec()


def _masked(value: Any) -> Any:
    """Known secret values masked in anything shown to watchers (defence in depth)."""
    if isinstance(value, str):
        return scrubber.scrub(value)
    if isinstance(value, Mapping):
        return {str(k): _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


def to_messages(
    history: Sequence[Mapping[str, Any]],
    text: str,
    media: Sequence[Mapping[str, Any]] = (),
    resolver: Callable[[Sequence[Mapping[str, Any]]], MediaResolver] | None = None,
) -> tuple[Message, ...]:
    """Transcript messages plus the new user text as model messages (roles alternate).

    Each assistant message's tool calls are followed at once by their results (a call whose
    result is missing gets the repair error), wherever the results sit in the transcript.
    `media` are the new message's file blocks; `resolver` (given the whole conversation)
    reads the files users sent — without one, files are left out.
    """
    current: dict[str, Any] = {"role": "user", "content": text}
    if media:
        current["content"] = [{"type": "text", "text": text}, *media]
    conversation = (*history, current)
    files = resolver(conversation) if resolver is not None else None
    results: dict[str, ToolResult] = {}
    for message in history:
        if message.get("role") == "toolResult":
            call_id = str(message.get("toolCallId", ""))
            results[call_id] = ToolResult(
                call_id,
                str(message.get("toolName", "")),
                "".join(str(b.get("text", "")) for b in _blocks(message) if b.get("type") == "text")
                or _plain(message.get("content")),
                bool(message.get("isError")),
            )
    out: list[Message] = []

    def add(role: str, blocks: Sequence[Block]) -> None:
        if not blocks:
            return
        if out and out[-1].role == role:
            merged = _merge(out[-1].content, tuple(blocks))
            out[-1] = Message(out[-1].role, merged)
        else:
            out.append(Message("user" if role == "user" else "assistant", tuple(blocks)))

    for message in conversation:
        role = message.get("role")
        if role == "user":
            user_blocks: list[Block] = []
            if files is not None:
                for ref in media_refs(message.get("content")):
                    user_blocks += files.blocks(ref)
            body = _plain(message.get("content"))
            if body.strip():
                user_blocks.append(Text(body))
            add("user", user_blocks)
        elif role == "assistant":
            blocks: list[Block] = []
            calls: list[ToolCall] = []
            for block in _blocks(message):
                if block.get("type") == "text" and str(block.get("text", "")).strip():
                    blocks.append(Text(str(block["text"])))
                elif block.get("type") == "toolCall":
                    call = _call_of(block)
                    blocks.append(call)
                    calls.append(call)
            if isinstance(message.get("content"), str) and message["content"].strip():
                blocks.append(Text(message["content"]))
            add("assistant", blocks)
            if calls:
                add(
                    "user",
                    [
                        results.get(c.id) or ToolResult(c.id, c.name, MISSING_RESULT_TEXT, True)
                        for c in calls
                    ],
                )
    # Every API wants the conversation to open with the user, and results only right after
    # their calls: drop what a history limit cut loose at the start.
    while out:
        if out[0].role != "user":
            out.pop(0)
            continue
        kept = tuple(b for b in out[0].content if not isinstance(b, ToolResult))
        if not kept:
            out.pop(0)
            continue
        out[0] = Message("user", kept)
        break
    return tuple(out)


def _merge(first: tuple[Block, ...], second: tuple[Block, ...]) -> tuple[Block, ...]:
    """Same-role neighbours become one message; adjacent texts join with a blank line."""
    if first and second and isinstance(first[-1], Text) and isinstance(second[0], Text):
        joined = Text(f"{first[-1].text}\n\n{second[0].text}")
        return (*first[:-1], joined, *second[1:])
    # Tool results lead a user message (Anthropic wants them before any text).
    ordered: list[Block] = [b for b in (*first, *second) if isinstance(b, ToolResult)]
    ordered += [b for b in (*first, *second) if not isinstance(b, ToolResult)]
    return tuple(ordered)


def _call_of(block: Mapping[str, Any]) -> ToolCall:
    raw = block.get("rawArguments")
    args = block.get("arguments")
    return ToolCall(
        str(block.get("id", "")),
        str(block.get("name", "")),
        args if isinstance(args, dict) else {},
        raw if isinstance(raw, str) else None,
    )


def _plain(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(b.get("text", ""))
            for b in content
            if isinstance(b, dict) and b.get("type") == "text"
        )
    return ""

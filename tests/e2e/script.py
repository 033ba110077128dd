"""Scripting the fake model by what a request holds (OpenAI Chat Completions shape): the
current user message and the tool steps of this turn so far, so one responder plays a whole
multi-step turn the way a real model would."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Turn:
    user: str  # the current user message (text)
    steps: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)  # name, args, result
    system: str = ""
    tools: list[str] = field(default_factory=list)

    def results(self, name: str) -> list[str]:
        return [r for n, _, r in self.steps if n == name]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def turn_of(body: dict[str, Any]) -> Turn:
    messages = body.get("messages") or []
    start = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    system = "".join(_text(m.get("content")) for m in messages if m.get("role") == "system")
    tools = [str((t.get("function") or {}).get("name")) for t in body.get("tools") or ()]
    turn = Turn(_text(messages[start]["content"]) if start >= 0 else "", system=system, tools=tools)
    calls: dict[str, tuple[str, dict[str, Any]]] = {}
    for message in messages[start + 1 :]:
        if message.get("role") == "assistant":
            for call in message.get("tool_calls") or ():
                fn = call["function"]
                calls[call["id"]] = (fn["name"], json.loads(fn.get("arguments") or "{}"))
        elif message.get("role") == "tool":
            name, args = calls.get(message["tool_call_id"], ("?", {}))
            turn.steps.append((name, args, _text(message.get("content"))))
    return turn


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


Play = Callable[[Turn], dict[str, Any]]


def responder(play: Play) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """A FakeLLM responder (Chat Completions) from a function of the turn."""

    def respond(api: str, body: dict[str, Any]) -> dict[str, Any]:
        assert api == "openai-completions", api
        return play(turn_of(body))

    return respond

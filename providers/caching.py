"""Anthropic prompt-caching breakpoints on a Messages request body (context-and-cron.md A.14).

Three `cache_control: {"type": "ephemeral"}` breakpoints, like the reference on an ordinary
turn: the system prompt, the newest message (so the next turn can read everything up to
it) and the user message before it (the previous turn's last breakpoint, so this turn reads
what the previous one wrote). The rest of the body is left byte-for-byte as built, which is
also what keeps OpenAI's automatic prefix cache hitting.
"""

from __future__ import annotations

import copy
from typing import Any

EPHEMERAL = {"type": "ephemeral"}
MAX_BREAKPOINTS = 4  # the API's limit per request


def _mark_last_block(message: dict[str, Any]) -> bool:
    content = message.get("content")
    if isinstance(content, list):
        for block in reversed(content):
            # Thinking blocks cannot carry cache_control; mark the last block that can.
            if isinstance(block, dict) and block.get("type") not in (
                "thinking",
                "redacted_thinking",
            ):
                block["cache_control"] = EPHEMERAL
                return True
    return False


def _as_blocks(message: Any) -> Any:
    if isinstance(message, dict) and isinstance(message.get("content"), str):
        text = message["content"]
        return {**message, "content": [{"type": "text", "text": text}] if text else []}
    return message


def add_cache_breakpoints(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of `body` with cache breakpoints added; `body` itself is not changed."""
    out = copy.copy(body)
    used = 0
    system = out.get("system")
    if isinstance(system, str) and system:
        out["system"] = [{"type": "text", "text": system, "cache_control": EPHEMERAL}]
        used += 1
    elif isinstance(system, list) and system:
        blocks = copy.deepcopy(system)
        if isinstance(blocks[-1], dict):
            blocks[-1]["cache_control"] = EPHEMERAL
            used += 1
        out["system"] = blocks
    messages = out.get("messages")
    if not isinstance(messages, list) or not messages:
        return out
    # Every message in block form: a message must look the same whether or not it carries a
    # breakpoint this turn, or the prefix stops matching byte for byte on the next turn.
    messages = [_as_blocks(m) for m in messages]
    targets = [len(messages) - 1]
    users = [
        i for i, m in enumerate(messages[:-1]) if isinstance(m, dict) and m.get("role") == "user"
    ]
    if users:
        targets.append(users[-1])
    for index in targets:
        if used >= MAX_BREAKPOINTS:
            break
        message = copy.deepcopy(messages[index])
        if isinstance(message, dict) and _mark_last_block(message):
            messages[index] = message
            used += 1
    out["messages"] = messages
    return out

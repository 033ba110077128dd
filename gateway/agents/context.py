"""Context budget: how big a model's window is and how full the next request will be.

Window resolution follows context-and-cron.md A.1 (first hit wins, then the legacy global
cap); the reserve and threshold follow A.4; token counts follow A.2: the provider's reported
usage of the previous call plus a chars/4 estimate of everything appended after it. No
tokenizer is downloaded: the estimate only has to be good enough to compact in time, and
the provider's own count corrects it on every turn.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.config.models import ModelDefinition, OpenClawConfig

log = logging.getLogger("agent/context")

DEFAULT_CONTEXT_TOKENS = 200_000
RESERVE_CAP_TOKENS = 20_000
IMAGE_TOKENS = 2_000
WARN_BELOW_TOKENS = 8_000
REFUSE_BELOW_TOKENS = 4_000
CHARS_PER_TOKEN = 4

# (model id prefix, window, runtime cap or None, max output). Longest matching prefix wins.
# From the reference's bundled provider manifests (A.1 built-in table).
_CLAUDE_1M = ("claude-opus-4-6", "claude-opus-4-7", "claude-opus-4-8", "claude-sonnet-4-6")
_BUILTIN: dict[str, tuple[tuple[str, int, int | None, int | None], ...]] = {
    "anthropic": (
        ("claude-haiku-4-5", 200_000, None, 64_000),
        ("claude-sonnet-4-5", 200_000, None, 64_000),
        ("claude-opus-4-5", 200_000, None, 64_000),
        ("claude-opus-4-1", 200_000, None, 32_000),
        *((prefix, 1_000_000, None, 128_000) for prefix in _CLAUDE_1M),
        ("claude-opus-5", 1_000_000, None, 128_000),
        ("claude-sonnet-5", 1_000_000, None, 128_000),
        ("claude-fable-5", 1_000_000, None, 128_000),
        ("claude-mythos-5", 1_000_000, None, 128_000),
        ("claude-", 200_000, None, None),
    ),
    "openai": (
        ("gpt-5.4-mini", 400_000, None, 128_000),
        ("gpt-5.4-nano", 400_000, None, 128_000),
        ("gpt-5.4", 1_050_000, None, 128_000),
        ("gpt-5.5", 1_050_000, 272_000, 128_000),
        ("gpt-5.6", 1_050_000, 272_000, 128_000),
        ("gpt-6", 1_050_000, 272_000, 128_000),
        ("gpt-5", 400_000, None, 128_000),
        ("gpt-4.1", 1_047_576, None, 32_768),
        ("gpt-4o", 128_000, None, 16_384),
    ),
    "google": (
        ("gemini-2.5-", 1_048_576, None, 65_536),
        ("gemini-3", 1_048_576, None, 65_536),
    ),
}
_BUILTIN["anthropic-vertex"] = _BUILTIN["anthropic"]


class ContextConfigError(ValueError):
    """The configured window cannot hold the fixed prompt; names the key to change."""


@dataclass(frozen=True)
class Window:
    """A model's usable input window and where the number came from."""

    tokens: int
    source: str  # the config key, "builtin" or "default"
    max_output: int | None = None


@dataclass(frozen=True)
class Budget:
    """The window split into what a request may use (A.4)."""

    window: Window
    reserve: int  # kept free for the reply
    threshold: int  # compact when the projected prompt passes this
    hard_limit: int  # a request never leaves above this (window - reserve/2)


def _model_entry(config: OpenClawConfig, provider: str, model: str) -> ModelDefinition | None:
    entry = config.models.providers.get(provider)
    if entry is None:
        return None
    return next((m for m in entry.models if m.id == model), None)


def _builtin(provider: str, model: str) -> tuple[int, int | None, int | None] | None:
    table = _BUILTIN.get(provider)
    if table is None and model.startswith("claude-"):
        table = _BUILTIN["anthropic"]  # a proxy provider id serving Claude models
    best: tuple[str, int, int | None, int | None] | None = None
    for row in table or ():
        if model.startswith(row[0]) and (best is None or len(row[0]) > len(best[0])):
            best = row
    return (best[1], best[2], best[3]) if best else None


_warned: set[str] = set()


def resolve_window(config: OpenClawConfig, ref: str) -> Window:
    """The context window of `provider/model` (A.1 order, then the legacy global cap)."""
    provider, _, model = ref.partition("/")
    entry = _model_entry(config, provider, model)
    provider_entry = config.models.providers.get(provider)
    key = f"models.providers.{provider}.models[{model}]"
    builtin = _builtin(provider, model)
    native: int | None = entry.context_window if entry else None
    native_source = f"{key}.contextWindow"
    if native is None and provider_entry is not None and provider_entry.context_window:
        native, native_source = (
            provider_entry.context_window,
            (f"models.providers.{provider}.contextWindow"),
        )
    max_output = (entry.max_tokens if entry else None) or (
        provider_entry.max_tokens if provider_entry else None
    )
    cap = entry.context_tokens if entry else None
    cap_source = f"{key}.contextTokens"
    if cap is None and provider_entry is not None and provider_entry.context_tokens:
        cap, cap_source = (
            provider_entry.context_tokens,
            f"models.providers.{provider}.contextTokens",
        )
    if cap is not None:
        ceiling = native or (builtin[0] if builtin else None)
        window = Window(min(cap, ceiling) if ceiling else cap, cap_source, max_output)
    elif native is not None:
        window = Window(native, native_source, max_output)
    elif builtin is not None:
        tokens = min(builtin[0], builtin[1]) if builtin[1] else builtin[0]
        window = Window(tokens, "builtin", max_output or builtin[2])
    else:
        window = Window(DEFAULT_CONTEXT_TOKENS, "default", max_output)
    legacy = config.agents.defaults.context_tokens
    if legacy is not None:
        if "agents.defaults.contextTokens" not in _warned:
            _warned.add("agents.defaults.contextTokens")
            log.warning(
                "agents.defaults.contextTokens is deprecated; set "
                "models.providers.<provider>.models[].contextTokens instead"
            )
        if legacy < window.tokens:
            window = Window(legacy, "agents.defaults.contextTokens", window.max_output)
    if ref not in _warned:
        _warned.add(ref)
        log.info("context window for %s: %d tokens (from %s)", ref, window.tokens, window.source)
    return window


def reserve_tokens(window: int) -> int:
    """Room kept for the reply: 20 000 tokens, a quarter of small windows (A.4)."""
    return min(RESERVE_CAP_TOKENS, window // 4)


def budget(window: Window, fixed_tokens: int) -> Budget:
    """Split `window`; refuse a window that cannot hold `fixed_tokens` (system prompt, tools)."""
    if window.tokens < REFUSE_BELOW_TOKENS and window.source not in ("default", "builtin"):
        raise ContextConfigError(
            f"{window.source} is {window.tokens} tokens; the minimum is {REFUSE_BELOW_TOKENS}"
        )
    reserve = reserve_tokens(window.tokens)
    threshold = window.tokens - reserve
    if fixed_tokens >= threshold:
        raise ContextConfigError(
            f"{window.source} is {window.tokens} tokens, too small for the system prompt "
            f"(about {fixed_tokens} tokens plus {reserve} reserved for the reply); "
            "raise it or shorten the workspace files"
        )
    if window.tokens < WARN_BELOW_TOKENS and window.source not in _warned:
        _warned.add(window.source)
        log.warning("%s is only %d tokens; answers will be short", window.source, window.tokens)
    return Budget(window, reserve, threshold, window.tokens - reserve // 2)


# --- estimates --------------------------------------------------------------------------------


def estimate_text(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimate_message(message: Mapping[str, Any]) -> int:
    """Tokens one transcript message costs in a request (A.2): chars/4, images 2 000."""
    content = message.get("content")
    if isinstance(content, str):
        return estimate_text(content) + 4
    total = 4  # role and framing
    if isinstance(content, list):
        for block in content:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "image":
                total += IMAGE_TOKENS
            elif kind == "text" or kind == "thinking":
                total += estimate_text(str(block.get("text") or block.get("thinking") or ""))
            elif kind in ("toolCall", "tool_use"):
                args = block.get("arguments", block.get("input", {}))
                total += estimate_text(str(block.get("name", "")) + json.dumps(args, default=str))
            else:
                total += estimate_text(json.dumps(block, default=str))
    return total


def estimate_messages(messages: Iterable[Mapping[str, Any]]) -> int:
    return sum(estimate_message(m) for m in messages)


def usage_tokens(usage: object) -> int | None:
    """Prompt + reply size a call reported: `totalTokens`, else the sum of its parts."""
    if not isinstance(usage, Mapping):
        return None
    total = usage.get("totalTokens")
    if isinstance(total, int) and not isinstance(total, bool) and total > 0:
        return total
    parts = [usage.get(k) for k in ("input", "output", "cacheRead", "cacheWrite")]
    numbers = [p for p in parts if isinstance(p, int) and not isinstance(p, bool)]
    return sum(numbers) if numbers and sum(numbers) > 0 else None


@dataclass(frozen=True)
class Projection:
    """Projected size of the next request and how estimates relate to reported counts."""

    tokens: int
    ratio: float  # reported / estimated for the prefix the last call covered (1.0 unknown)
    measured: bool  # True when a reported count was the base


def project(
    history: Sequence[Mapping[str, Any]], system: str, new_text: str, fixed: int = 0
) -> Projection:
    """Tokens the next request will hold: last reported usage + estimate of what follows.

    Usage reported before the latest compaction is stale (the prompt it measured is gone);
    the pinned summary message carries that compaction's time, so only later usage counts.
    """
    floor = 0
    if history and history[0].get("compactionSummary"):
        floor = int(history[0].get("timestamp") or 0)
    head = estimate_text(system) + fixed
    for index in range(len(history) - 1, -1, -1):
        message = history[index]
        if message.get("role") != "assistant":
            continue
        stamp = message.get("timestamp")
        if isinstance(stamp, int) and stamp <= floor:
            break
        reported = usage_tokens(message.get("usage"))
        if reported is None:
            continue
        covered = head + estimate_messages(history[: index + 1])
        ratio = max(0.5, min(4.0, reported / covered)) if covered else 1.0
        rest = estimate_messages(history[index + 1 :]) + estimate_text(new_text) + 4
        return Projection(reported + math.ceil(rest * ratio), ratio, True)
    total = head + estimate_messages(history) + estimate_text(new_text) + 4
    return Projection(total, 1.0, False)


def compact_count(value: float) -> str:
    """`18k`, `2.9k`, `1.0m` (the `/status` style)."""
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}m"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return str(int(value))

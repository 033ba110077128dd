"""The per-reply usage footer: `/usage off|tokens|full` (context-and-cron.md B.5).

A session's choice is kept on its row as `responseUsage` (the reference's key in
`sessions.json`), so it survives restarts, `/new` and `/reset`; only `/usage reset` (or
`sessions.patch {responseUsage: null}`) removes it. Without a choice the mode comes from
`messages.responseUsage` (one mode, or per channel with a `default` entry), else `off`.

When the mode is on, the final answer of a turn gets one more line:

* `tokens`: `Usage: 1.2k in / 85 out` (+ ` · cache 9.8k cached / 0 new` when the turn read or
  wrote the prompt cache). Never a cost.
* `full`: a compact bar — provider, agent emoji, model, fallback mark, fast/slow, how full the
  context window is, and the turn's cost in USD when every call of the turn has a price
  (an unpriced call means no cost at all rather than a partial one). Discord gets it as
  small `-#` subtext lines.

Counts are the whole turn: every model call of the tool loop, summed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from gateway.agents.context import compact_count, resolve_window

if TYPE_CHECKING:
    from gateway.agents.runner import RunOutcome, Usage
    from gateway.agents.store import SessionRow, SessionStore
    from gateway.config.models import OpenClawConfig

UsageMode = Literal["off", "tokens", "full"]
ROW_KEY = "responseUsage"  # the session row field (reference name)
USAGE_HINT = "⚙️ Usage: /usage off|tokens|full|reset|cost"

_WORDS: dict[str, UsageMode] = {
    **dict.fromkeys(("off", "false", "no", "0", "disable", "disabled"), "off"),
    **dict.fromkeys(("on", "true", "yes", "1", "enable", "enabled"), "tokens"),
    **dict.fromkeys(("tokens", "token", "tok", "minimal", "min"), "tokens"),
    **dict.fromkeys(("full", "session"), "full"),
}
RESET_WORDS = frozenset({"default", "inherit", "inherited", "clear", "reset", "unpin"})
_NEXT: dict[UsageMode, UsageMode] = {"off": "tokens", "tokens": "full", "full": "off"}

# The built-in `full` bar's vocabulary (the reference's default template).
_BRAILLE = "⠐⡀⡄⡆⡇⣇⣧⣷⣿"
_MODEL_ALIASES = {
    "claude-opus-4-6": "opus46",
    "claude-opus-4-8": "opus48",
    "claude-sonnet-4-6": "sonnet46",
    "claude-haiku-4-5": "haiku45",
    "gpt-5.5": "gpt5.5",
}
_REASONING = {
    "off": "🌑",
    "minimal": "🌚",
    "low": "🌘",
    "medium": "🌗",
    "high": "🌕",
    "xhigh": "🌝",
}
_NBSP = "\xa0"


# --- the mode ------------------------------------------------------------------------------------


def normalize_mode(raw: object) -> UsageMode | None:
    """A mode from user or wire text (`on` and friends mean `tokens`); None if not one."""
    if not isinstance(raw, str):
        return None
    return _WORDS.get(raw.strip().lower())


def is_reset(raw: str) -> bool:
    return raw.strip().lower() in RESET_WORDS


def next_mode(current: UsageMode) -> UsageMode:
    """Bare `/usage`: off → tokens → full → off."""
    return _NEXT[current]


def configured_mode(config: OpenClawConfig, channel: str | None) -> UsageMode:
    """`messages.responseUsage` for this channel: its own entry, else `default`, else off."""
    configured = config.messages.response_usage
    if isinstance(configured, Mapping):
        raw = configured.get(channel) if channel else None
        configured = raw if raw is not None else configured.get("default")
    return normalize_mode(configured) or "off"


def session_choice(row: SessionRow | None) -> UsageMode | None:
    """The session's own `/usage` choice (None: it follows the configured default)."""
    return normalize_mode(row.extra.get(ROW_KEY)) if row is not None else None


def effective_mode(
    row: SessionRow | None, config: OpenClawConfig, channel: str | None
) -> UsageMode:
    """Session choice → channel entry → `default` → off."""
    return session_choice(row) or configured_mode(config, channel)


def set_choice(store: SessionStore, key: str, mode: UsageMode | None) -> None:
    """Persist the session's choice (`None` clears it); creates the row on first use."""
    store.ensure(key)

    def change(row: SessionRow) -> None:
        if mode is None:
            row.extra.pop(ROW_KEY, None)
        else:
            row.extra[ROW_KEY] = mode

    store.for_key(key).update_row(key, change)


def wire_fields(row: SessionRow, config: OpenClawConfig) -> dict[str, str]:
    """`responseUsage` (the session's own choice, when made) and `effectiveResponseUsage`
    for a session row on the wire (the TUI cycles from the effective mode)."""
    out: dict[str, str] = {"effectiveResponseUsage": effective_mode(row, config, row.channel)}
    choice = session_choice(row)
    if choice is not None:
        out[ROW_KEY] = choice
    return out


# --- the turn's figures ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TurnFigures:
    """What one answered turn used: token sums over its calls, the cost if fully priced."""

    input: int
    output: int
    cache_read: int
    cache_write: int
    cost_usd: float | None
    prompt_tokens: int | None  # the last call's prompt (how full the context is now)

    @property
    def any_tokens(self) -> bool:
        return any((self.input, self.output, self.cache_read, self.cache_write))


def sum_usage(calls: Sequence[Usage]) -> tuple[int, int, int, int, float | None]:
    """Token sums and the summed cost (None as soon as one call has no price)."""
    total_cost: float | None = 0.0
    for call in calls:
        call_cost = call.cost.get("total") if call.cost is not None else call.cost_total
        if call_cost is None or total_cost is None:
            total_cost = None
        else:
            total_cost += float(call_cost)
    return (
        sum(c.input for c in calls),
        sum(c.output for c in calls),
        sum(c.cache_read for c in calls),
        sum(c.cache_write for c in calls),
        total_cost,
    )


def figures_of(outcome: RunOutcome) -> TurnFigures | None:
    """The turn's figures from a finished outcome, or None when it reported no usage."""
    turn = outcome.turn_usage or outcome.usage
    if turn is None:
        return None
    last = outcome.usage or turn
    prompt = last.input + last.cache_read + last.cache_write
    cost = turn.cost.get("total") if turn.cost is not None else turn.cost_total
    return TurnFigures(
        input=turn.input,
        output=turn.output,
        cache_read=turn.cache_read,
        cache_write=turn.cache_write,
        cost_usd=float(cost) if cost is not None else None,
        prompt_tokens=prompt or None,
    )


# --- rendering -------------------------------------------------------------------------------------


def tokens_line(figures: TurnFigures) -> str | None:
    """`Usage: 1.2k in / 85 out` (+ cache counters); None when nothing was counted."""
    if not figures.any_tokens:
        return None
    line = f"Usage: {compact_count(figures.input)} in / {compact_count(figures.output)} out"
    if figures.cache_read > 0 or figures.cache_write > 0:
        line += (
            f" · cache {compact_count(figures.cache_read)} cached / "
            f"{compact_count(figures.cache_write)} new"
        )
    return line


def meter(percent: float, width: int = 5, glyphs: str = _BRAILLE) -> str:
    """A `width`-cell bar of `percent` (0–100): full cells, one partial cell, empty cells."""
    filled = max(0.0, min(100.0, percent)) / 100 * width
    whole = int(filled)
    cells = [glyphs[-1]] * min(whole, width)
    if len(cells) < width:
        cells.append(glyphs[round((filled - whole) * (len(glyphs) - 1))])
    cells += [glyphs[0]] * (width - len(cells))
    return "".join(cells[:width])


def _num(value: int) -> str:
    """The bar's compact count: `272k`, `9.5k`, `812`."""
    if abs(value) >= 1000:
        thousands = value / 1000
        return f"{thousands:.1f}k" if abs(thousands) < 10 else f"{round(thousands)}k"
    return str(int(value))


@dataclass(frozen=True)
class BarFacts:
    """Everything the `full` bar shows besides the figures."""

    provider: str
    model: str
    emoji: str | None = None
    fallback_used: bool = False
    reasoning: str | None = None  # no per-session thinking level yet: not shown
    fast_mode: bool = False  # clawgate never asks for a provider's fast tier
    context_window: int | None = None


def full_line(figures: TurnFigures, facts: BarFacts, surface: str | None) -> str:
    """The compact `full` bar, e.g. `openai🤖gpt-5.4🐌 | 📚[⣿⡄⠐⠐⠐]272k 💰0.0123`."""
    head = f"{facts.provider}{facts.emoji or '🤖'}"
    head += _MODEL_ALIASES.get(facts.model.lower(), facts.model)
    if facts.fallback_used:
        head += "🔄"
    if facts.reasoning:
        head += _REASONING.get(facts.reasoning, facts.reasoning)
    head += "⚡️" if facts.fast_mode else "🐌"
    if facts.context_window:
        used = figures.prompt_tokens or 0
        percent = round(100 * used / facts.context_window)
        head += f"{_NBSP}| 📚[{meter(percent)}]{_num(facts.context_window)}"
    if figures.cost_usd is not None:
        head += f"{_NBSP}💰{figures.cost_usd:.4f}"
    if surface == "discord":
        return f"-# -\n-# {head}"
    return head


def footer(
    mode: UsageMode, figures: TurnFigures | None, facts: BarFacts, surface: str | None
) -> str | None:
    """The footer line for this mode, or None (off, or the turn reported nothing)."""
    if mode == "off" or figures is None:
        return None
    if mode == "tokens":
        return tokens_line(figures)
    if not figures.any_tokens and figures.cost_usd is None:
        return None
    return full_line(figures, facts, surface)


def with_footer(text: str, line: str | None) -> str:
    """`text` with the footer on its own last line."""
    if not line:
        return text
    if not text:
        return line
    return f"{text}{'' if text.endswith(chr(10)) else chr(10)}{line}"


def turn_footer(
    config: OpenClawConfig,
    row: SessionRow | None,
    outcome: RunOutcome | None,
    *,
    agent_id: str,
    channel: str | None,
) -> str | None:
    """The footer for a finished turn of this session on `channel` (None: none to add)."""
    mode = effective_mode(row, config, channel)
    if mode == "off" or outcome is None or outcome.failure is not None:
        return None
    figures = figures_of(outcome)
    if figures is None:
        return None
    provider, model = outcome.provider or "", outcome.model or ""
    facts = BarFacts(provider=provider, model=model)
    if mode == "full":
        from gateway.agents import roster as rv

        entry = config.agents.entries.get(agent_id)
        ref = f"{provider}/{model}"
        facts = BarFacts(
            provider=provider,
            model=model,
            emoji=entry.identity.emoji if entry and entry.identity else None,
            fallback_used=ref != rv.model_chain(config, agent_id).primary,
            context_window=resolve_window(config, ref).tokens if provider and model else None,
        )
    return footer(mode, figures, facts, channel)


# --- `/usage` ----------------------------------------------------------------------------------


def mode_command(
    store: SessionStore, config: OpenClawConfig, key: str, args: str, channel: str | None
) -> str:
    """`/usage [off|tokens|full|reset]` (bare: the next mode after the one in effect)."""
    wanted = args.strip()
    if wanted and is_reset(wanted):
        set_choice(store, key, None)
        return "⚙️ Usage footer: reset to default."
    requested = normalize_mode(wanted) if wanted else None
    if wanted and requested is None:
        return USAGE_HINT
    chosen = requested or next_mode(effective_mode(store.get(key), config, channel))
    set_choice(store, key, chosen)
    return f"⚙️ Usage footer: {chosen}."

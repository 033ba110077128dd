"""Commands answered without a model: /new /reset /stop /status /help /model /whoami.

One place for every entry point: channel messages, Discord slash commands, the Telegram menu
and `chat.send` from the Control UI (channels.md §5.1, agents.md §1 step 4). Parsing and
wording come first; `apply` then acts on the agent service. Everything is synchronous so a
reset takes effect before the next message of the same chat is looked at.

Input is already-normalised text (platform syntax such as Telegram's `/cmd@bot` is
stripped by the channel adapter). Reset triggers come from `session.resetTriggers`
(case-insensitive, default `/new`, `/reset`); text after a trigger is kept and run as a
normal turn after the reset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from gateway import __version__
from gateway.agents import roster as rv
from gateway.config.models import OpenClawConfig

DEFAULT_RESET_TRIGGERS: tuple[str, ...] = ("/new", "/reset")
NEW_SESSION_REPLY = "✅ New session started."
RESET_REPLY = "✅ Session reset."
STOPPED_REPLY = "⏹️ Stopped."
NOTHING_TO_STOP_REPLY = "Nothing is running right now."

CommandName = Literal["new", "reset", "stop", "status", "model", "help", "compact", "usage"]
_SIMPLE: dict[str, CommandName] = {
    "/stop": "stop",
    "/status": "status",
    "/model": "model",
    "/help": "help",
    "/compact": "compact",
    "/usage": "usage",
}


@dataclass(frozen=True)
class Command:
    """A recognised command; `args` is the text after it (stripped, original case)."""

    name: CommandName
    args: str = ""
    trigger: str = ""

    @property
    def runs_turn_after(self) -> bool:
        """`/new text…` / `/reset text…`: reset, then run the rest as a normal turn."""
        return self.name in ("new", "reset") and bool(self.args)


def _split_trigger(text: str, trigger: str) -> str | None:
    """Remainder after `trigger` at the start of `text`, or None if it does not match."""
    lowered, wanted = text.lower(), trigger.strip().lower()
    if not wanted or not lowered.startswith(wanted):
        return None
    rest = text[len(wanted) :]
    if rest and not rest[0].isspace():
        return None  # `/newsletter` is not `/new`
    return rest.strip()


def parse_reset_trigger(
    text: str, triggers: Sequence[str] = DEFAULT_RESET_TRIGGERS
) -> Command | None:
    """`/reset` resets in place; every other trigger starts a new session (like `/new`)."""
    stripped = text.strip()
    # Longest first so a trigger that prefixes another never shadows it.
    for trigger in sorted(triggers, key=lambda t: len(t.strip()), reverse=True):
        rest = _split_trigger(stripped, trigger)
        if rest is None:
            continue
        name: CommandName = "reset" if trigger.strip().lower() == "/reset" else "new"
        return Command(name=name, args=rest, trigger=trigger.strip().lower())
    return None


def parse_command(
    text: str, reset_triggers: Sequence[str] = DEFAULT_RESET_TRIGGERS
) -> Command | None:
    """Recognise a core command; None means: a normal message for the model."""
    reset = parse_reset_trigger(text, reset_triggers)
    if reset is not None:
        return reset
    stripped = text.strip()
    head, _, rest = stripped.partition(" ")
    name = _SIMPLE.get(head.lower())
    if name is None:
        head, _, rest = stripped.partition("\n")
        name = _SIMPLE.get(head.strip().lower())
    if name is None:
        return None
    return Command(name=name, args=rest.strip(), trigger=head.strip().lower())


def reset_reply(command: Command) -> str | None:
    """Confirmation for a bare reset; None when the remainder runs as a model turn."""
    if command.runs_turn_after:
        return None
    return RESET_REPLY if command.name == "reset" else NEW_SESSION_REPLY


# --- /status ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusFacts:
    """What `/status` reports; gathered by the caller from the session row and runner."""

    agent_id: str
    session_key: str
    model_ref: str
    session_id: str | None = None
    agent_name: str | None = None
    fallbacks: Sequence[str] = ()
    session_started_at: int | None = None  # epoch ms
    updated_at: int | None = None
    message_count: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    queue_mode: str = "followup"
    queued: int = 0
    running: bool = False
    version: str | None = None
    context_window: int | None = None  # resolved window of the session's model
    compactions: int = 0
    cache_read: int | None = None
    cache_write: int | None = None
    cost_usd: float | None = None  # last run
    snapshot_fresh: bool = True


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def format_status(facts: StatusFacts) -> str:
    title = "🦞 clawgate status" + (f" {facts.version}" if facts.version else "")
    agent = facts.agent_id + (f" ({facts.agent_name})" if facts.agent_name else "")
    model = facts.model_ref or "-"
    if facts.fallbacks:
        model += f" (fallbacks: {', '.join(facts.fallbacks)})"
    lines = [
        title,
        f"Agent: {agent}",
        f"Session: {facts.session_key}",
        f"Session id: {facts.session_id or '-'} (started {_when(facts.session_started_at)})",
        f"Model: {model}",
    ]
    if facts.total_tokens is not None or facts.input_tokens is not None:
        lines.append(
            "Tokens (last turn): "
            f"in {facts.input_tokens or 0} · out {facts.output_tokens or 0} · "
            f"total {facts.total_tokens or 0}"
        )
    lines += _context_lines(facts)
    run = "running" if facts.running else "idle"
    lines.append(f"Messages: {facts.message_count} · Run: {run} · Queued: {facts.queued}")
    lines.append(f"Queue mode: {facts.queue_mode} · Last activity: {_when(facts.updated_at)}")
    return "\n".join(lines)


def _context_lines(facts: StatusFacts) -> list[str]:
    """Cost, cache, context and compaction lines (context-and-cron.md A.11)."""
    from gateway.agents.context import compact_count

    lines: list[str] = []
    if facts.cost_usd is not None:
        lines.append(f"💵 Cost: ${facts.cost_usd:.4f}")
    if facts.cache_read is not None and facts.input_tokens is not None:
        prompt = facts.input_tokens + facts.cache_read + (facts.cache_write or 0)
        hit = round(100 * facts.cache_read / prompt) if prompt else 0
        lines.append(
            f"🗄️ Cache: {hit}% hit · {compact_count(facts.cache_read)} cached, "
            f"{compact_count(facts.input_tokens + (facts.cache_write or 0))} new"
        )
    if facts.context_window:
        used = facts.total_tokens
        if used is None:
            lines.append(f"📚 Context: ?/{compact_count(facts.context_window)}")
        else:
            percent = round(100 * used / facts.context_window)
            est = " est" if not facts.snapshot_fresh else ""
            mark = "~" if est else ""
            lines.append(
                f"📚 Context: {mark}{compact_count(used)}/{compact_count(facts.context_window)}"
                f" ({percent}%{est})"
            )
    if facts.compactions:
        lines.append(f"🧹 Compactions: {facts.compactions}")
    return lines


# --- /model -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFacts:
    current: str
    fallbacks: Sequence[str] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)  # alias → provider/model


def format_model(facts: ModelFacts, args: str = "") -> str:
    """`/model` lists the current choice; switching per session is not offered yet."""
    lines = [f"Current model: {facts.current or '-'}"]
    if facts.fallbacks:
        lines.append("Fallbacks: " + ", ".join(facts.fallbacks))
    if facts.aliases:
        pairs = sorted(facts.aliases.items())
        lines.append("Aliases: " + ", ".join(f"{alias} → {ref}" for alias, ref in pairs))
    wanted = args.strip()
    if wanted:
        lines.insert(
            0,
            f"Switching this session to {wanted!r} is not supported yet; "
            "change the model in the agent configuration instead.",
        )
    return "\n".join(lines)


def format_help(reset_triggers: Sequence[str] = DEFAULT_RESET_TRIGGERS) -> str:
    triggers = ", ".join(t.strip() for t in reset_triggers if t.strip()) or "/new"
    return "\n".join(
        [
            "Commands:",
            f"{triggers} — start over (add text to ask something right away)",
            "/stop — stop the current answer",
            "/status — session, model and queue facts",
            "/model — show the model in use",
            "/compact [focus] — summarise older messages now to free context",
            "/usage off|tokens|full|reset — a usage line under each answer",
            "/usage cost — tokens and cost of this session, today and the last 30 days",
            "/help — this list",
        ]
    )


if TYPE_CHECKING:
    from gateway.agents.service import AgentService

_LABELS = {"discord": "Discord", "telegram": "Telegram"}

# The core set registered as native commands on both channels (channels.md §5.2), menu order.
NATIVE_COMMANDS: tuple[tuple[str, str], ...] = (
    ("new", "Start a new session"),
    ("reset", "Reset the current session"),
    ("stop", "Stop the current answer"),
    ("status", "Session, model and queue status"),
    ("model", "Show the model in use"),
    ("whoami", "Show your user id"),
    ("help", "List the commands"),
)
NATIVE_COMMAND_NAMES = frozenset(name for name, _ in NATIVE_COMMANDS)


@dataclass(frozen=True)
class CommandResult:
    reply: str | None  # text to send back (None: nothing)
    run_text: str | None = None  # `/new text…`: run this as a normal turn afterwards


def parse(text: str, config: OpenClawConfig) -> Command | None:
    """A standalone command message, or None (then it is a normal message)."""
    stripped = text.strip()
    if stripped.lower() in ("/whoami", "/id"):
        # Not in the agents' command set; carried as a help-kind command with its own trigger.
        return Command(name="help", args="", trigger="/whoami")
    return parse_command(stripped, config.session.reset_triggers)


def whoami(channel: str, sender_id: str) -> str:
    return f"Your {_LABELS.get(channel, channel)} user id: {sender_id}"


def apply(
    command: Command,
    *,
    svc: AgentService,
    config: OpenClawConfig,
    session_key: str,
    agent_id: str,
    channel: str,
    sender_id: str,
) -> CommandResult:
    if command.trigger == "/whoami":
        return CommandResult(whoami(channel, sender_id))
    if command.name in ("new", "reset"):
        svc.runner.abort(session_key)
        svc.store.reset(session_key, command.name)
        svc.sessions_changed(session_key, "reset")
        return CommandResult(reset_reply(command), command.args or None)
    if command.name == "stop":
        aborted = svc.runner.abort(session_key)
        return CommandResult(STOPPED_REPLY if aborted else NOTHING_TO_STOP_REPLY)
    if command.name == "compact":
        # Runs in the session's lane like a turn, so it never races a reply; the model turn
        # recognises it and answers without the conversation model (compaction.py).
        return CommandResult(None, f"/compact {command.args}".strip())
    if command.name == "usage":
        from gateway.agents.usage_report import usage_command

        reply = usage_command(svc, config, session_key, command.args, channel)
        return CommandResult(reply)
    chain = rv.model_chain(config, agent_id)
    if command.name == "status":
        row = svc.store.get(session_key)
        lane = svc.runner.status(session_key)
        entry = config.agents.entries.get(agent_id)
        facts = StatusFacts(
            agent_id=agent_id,
            agent_name=entry.name if entry else None,
            session_key=session_key,
            model_ref=chain.primary,
            fallbacks=chain.fallbacks,
            session_id=row.session_id if row else None,
            session_started_at=row.session_started_at if row else None,
            updated_at=row.updated_at if row else None,
            message_count=row.message_count if row else 0,
            input_tokens=row.input_tokens if row else None,
            output_tokens=row.output_tokens if row else None,
            total_tokens=row.total_tokens if row else None,
            queue_mode=config.messages.queue.by_channel.get(channel, config.messages.queue.mode),
            queued=lane.queued,
            running=lane.active_run_id is not None,
            version=__version__,
            **_context_facts(config, chain.primary, row),
        )
        return CommandResult(format_status(facts))
    if command.name == "model":
        aliases = {
            alias.alias: ref for ref, alias in config.agents.defaults.models.items() if alias.alias
        }
        facts_m = ModelFacts(current=chain.primary, fallbacks=chain.fallbacks, aliases=aliases)
        return CommandResult(format_model(facts_m, command.args))
    return CommandResult(format_help(config.session.reset_triggers) + "\n/whoami — your user id")


def _context_facts(config: OpenClawConfig, model_ref: str, row: Any) -> dict[str, Any]:
    """The row's context/cache/cost facts for `/status` (issue 14)."""
    from gateway.agents.context import resolve_window

    window = row.context_tokens if row and row.context_tokens else None
    if window is None and model_ref:
        window = resolve_window(config, model_ref).tokens
    if row is None:
        return {"context_window": window}
    extra = row.extra
    cost = extra.get("estimatedCostUsd")
    return {
        "context_window": window,
        "compactions": row.compaction_count,
        "cache_read": extra.get("cacheRead") if isinstance(extra.get("cacheRead"), int) else None,
        "cache_write": extra.get("cacheWrite")
        if isinstance(extra.get("cacheWrite"), int)
        else None,
        "cost_usd": float(cost) if isinstance(cost, int | float) else None,
        "snapshot_fresh": extra.get("totalTokensFresh", True) is not False,
    }

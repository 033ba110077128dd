"""Commands answered without a model (/new /reset /stop /status /help /model /whoami).

One place for every entry point: channel messages, Discord slash commands, the Telegram menu
and `chat.send` from the Control UI (channels.md §5.1, agents.md §1 step 4). Parsing and
wording come from `gateway.agents.commands`; this module applies a command to the agents
service and returns the reply text. Everything here is synchronous so a reset
takes effect before the next message of the same chat is looked at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway import __version__
from gateway.agents.commands import (
    NOTHING_TO_STOP_REPLY,
    STOPPED_REPLY,
    Command,
    ModelFacts,
    StatusFacts,
    format_help,
    format_model,
    format_status,
    parse_command,
    reset_reply,
)
from gateway.assistant import roster as rv
from gateway.config.models import OpenClawConfig

if TYPE_CHECKING:
    from gateway.assistant.service import AgentService

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
        )
        return CommandResult(format_status(facts))
    if command.name == "model":
        aliases = {
            alias.alias: ref for ref, alias in config.agents.defaults.models.items() if alias.alias
        }
        facts_m = ModelFacts(current=chain.primary, fallbacks=chain.fallbacks, aliases=aliases)
        return CommandResult(format_model(facts_m, command.args))
    return CommandResult(format_help(config.session.reset_triggers) + "\n/whoami — your user id")

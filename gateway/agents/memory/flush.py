"""The silent memory flush: one extra turn before a compaction, so the agent can write what
matters to its memory files before older messages are summarised away
(context-and-cron.md: `agents.defaults.compaction.memoryFlush`).

Wired in compaction.ContextManager.turn (with the turn built by model_turn.ModelTurns):
once the projected prompt is within `softThresholdTokens` of the compaction threshold (or
the history passes `forceFlushTranscriptBytes`), and not yet in this compaction cycle
(session row `memoryFlushCompactionCount`), ONE silent model turn runs on a private copy
of the history: the session's prompt + MEMORY_FLUSH_SYSTEM, the history + a user message
with memory_flush_prompt(), the turn's allowed tools (the agent writes with write/edit),
`memoryFlush.model` or else the session's primary model, no fallbacks. Neither the prompt
nor the reply reaches the transcript or the user (the expected reply is NO_REPLY); a
failure or timeout is logged and the user's turn goes on. Heartbeat turns skip it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.agents.store import SILENT_REPLY_TOKEN
from gateway.config.models import CompactionConfig

MEMORY_FLUSH_SYSTEM = (
    "# Memory flush\n"
    "This conversation is about to be compacted: older messages will be replaced by a "
    "summary. This is a housekeeping turn the user does not see."
)


def memory_flush_prompt(*, now: datetime | None = None, timezone_name: str | None = None) -> str:
    """The user-role text of the silent flush turn, naming today's daily-note file."""
    when = now or _now(timezone_name)
    day = when.date().isoformat()
    yesterday = (when.date() - timedelta(days=1)).isoformat()
    return (
        "Pre-compaction memory flush. Before older messages are summarised, save anything "
        "from this conversation that should outlive it:\n"
        f"- Running notes, decisions, open tasks and context go to memory/{day}.md "
        "(create it if missing; append, do not overwrite what is there).\n"
        "- Durable facts and preferences about the user go to MEMORY.md (or USER.md for "
        "how they like to be addressed and helped); update entries rather than repeating them.\n"
        f"- Skip what is already written (check memory/{day}.md and memory/{yesterday}.md "
        "first) and anything secret: never store passwords, keys or codes.\n"
        f"When done, or if nothing needs saving, reply with exactly {SILENT_REPLY_TOKEN}."
    )


def memory_flush_enabled(compaction: object) -> bool:
    """`agents.defaults.compaction.memoryFlush.enabled` (default true), from the parsed
    section (a flush is optional maintenance: off with proactive compaction) or a raw dict."""
    if isinstance(compaction, CompactionConfig):
        return compaction.enabled and compaction.memory_flush.enabled
    if isinstance(compaction, dict):
        flush = compaction.get("memoryFlush")
        if isinstance(flush, dict) and flush.get("enabled") is False:
            return False
    return True


def _now(timezone_name: str | None) -> datetime:
    if timezone_name:
        try:
            return datetime.now(ZoneInfo(timezone_name))
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return datetime.now().astimezone()

"""The silent memory flush: one extra turn before a compaction, so the agent can write what
matters to its memory files before older messages are summarised away
(context-and-cron.md: `agents.defaults.compaction.memoryFlush`).

How the compaction code is meant to call it (integration at merge):

    if flush_due(...) and memory_flush_enabled(config) and workspace is writable
            and the turn is not a heartbeat:
        user_text = memory_flush_prompt(now=..., timezone_name=defaults.user_timezone)
        run ONE model turn on a private copy of the history:
            system prompt  = the session's normal prompt + "\n\n" + MEMORY_FLUSH_SYSTEM
            messages       = history copy + a user message with `user_text`
            tools          = the turn's allowed tools (the agent writes with write/edit)
            model          = compaction.memoryFlush.model, else the session model, no fallbacks
        neither the prompt nor the reply is appended to the transcript or delivered
        (the expected reply is NO_REPLY); a failure is logged and never blocks the
        compaction or the user's reply; run at most once per compaction cycle.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.agents.store import SILENT_REPLY_TOKEN

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
    """`agents.defaults.compaction.memoryFlush.enabled` (default true) from the raw value
    (the compaction section is modelled by the context work; a dict until then)."""
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

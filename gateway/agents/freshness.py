"""Automatic session expiry: `session.reset` daily / idle (agents.md §6.1, config.md §3.10).

Pure functions; the store applies the verdict by starting a new `sessionId`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Literal

ResetMode = Literal["none", "daily", "idle"]


@dataclass(frozen=True)
class ResetPolicy:
    """One `reset` block: `{mode, atHour, idleMinutes}`."""

    mode: ResetMode = "none"
    at_hour: int = 4
    idle_minutes: int | None = None


@dataclass(frozen=True)
class ResetRules:
    """`session.reset`, `session.resetByType`, `session.resetByChannel` together."""

    default: ResetPolicy = ResetPolicy()
    by_type: Mapping[str, ResetPolicy] = field(default_factory=dict)  # direct|group|thread
    by_channel: Mapping[str, ResetPolicy] = field(default_factory=dict)


def select_reset_policy(
    rules: ResetRules, *, channel: str | None, chat_type: str | None, is_thread: bool = False
) -> ResetPolicy:
    """Precedence: `resetByChannel.<ch>` > `resetByType.<direct|group|thread>` > `reset`."""
    if channel:
        by_channel = rules.by_channel.get(channel.strip().lower())
        if by_channel is not None:
            return by_channel
    if is_thread:
        kind = "thread"
    elif chat_type == "direct" or chat_type is None:
        kind = "direct"
    else:
        kind = "group"  # group, channel and room sessions share the `group` policy
    return rules.by_type.get(kind, rules.default)


def daily_boundary(now: datetime, at_hour: int) -> datetime:
    """The most recent `at_hour:00` local time at or before `now` (`now` must be aware)."""
    boundary = now.replace(hour=at_hour, minute=0, second=0, microsecond=0)
    return boundary if boundary <= now else boundary - timedelta(days=1)


def is_expired(
    policy: ResetPolicy,
    *,
    session_started_at_ms: int,
    last_interaction_at_ms: int | None,
    now_ms: int,
    tz: tzinfo | None = None,
) -> bool:
    """True when the next message must start a fresh `sessionId`.

    `daily` uses `sessionStartedAt`; `idle` uses `lastInteractionAt`. A daily policy that
    also sets `idleMinutes` expires on whichever comes first. `tz=None` = host local time.
    """
    if policy.mode == "none":
        return False
    if policy.mode == "daily":
        now = datetime.fromtimestamp(now_ms / 1000).astimezone(tz)
        started = datetime.fromtimestamp(session_started_at_ms / 1000).astimezone(tz)
        if started < daily_boundary(now, policy.at_hour):
            return True
    if policy.idle_minutes is not None and policy.mode in ("idle", "daily"):
        last = (
            last_interaction_at_ms if last_interaction_at_ms is not None else session_started_at_ms
        )
        if now_ms - last > policy.idle_minutes * 60_000:
            return True
    return False

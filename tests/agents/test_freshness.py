from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.agents.freshness import ResetPolicy, ResetRules, is_expired, select_reset_policy

TZ = timezone(timedelta(hours=2))


def ms(text: str, tz: timezone = TZ) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=tz).timestamp() * 1000)


DAILY = ResetPolicy(mode="daily", at_hour=4)
IDLE = ResetPolicy(mode="idle", idle_minutes=60)
BOTH = ResetPolicy(mode="daily", at_hour=4, idle_minutes=60)


@pytest.mark.parametrize(
    ("policy", "started", "last", "now", "expired"),
    [
        (ResetPolicy(), "2026-01-01 00:00", None, "2027-01-01 00:00", False),
        (DAILY, "2026-01-01 05:00", None, "2026-01-01 23:59", False),
        (DAILY, "2026-01-01 05:00", None, "2026-01-02 03:59", False),
        (DAILY, "2026-01-01 05:00", None, "2026-01-02 04:00", True),
        (DAILY, "2026-01-02 03:00", None, "2026-01-02 03:30", False),
        (DAILY, "2026-01-02 03:00", None, "2026-01-02 04:01", True),
        (DAILY, "2026-01-01 05:00", "2026-01-02 04:30", "2026-01-02 04:31", True),
        (IDLE, "2026-01-01 05:00", "2026-01-01 05:00", "2026-01-01 06:00", False),
        (IDLE, "2026-01-01 05:00", "2026-01-01 05:00", "2026-01-01 06:01", True),
        (IDLE, "2026-01-01 05:00", None, "2026-01-01 06:01", True),
        (ResetPolicy(mode="idle"), "2026-01-01 05:00", None, "2027-01-01 00:00", False),
        (BOTH, "2026-01-01 05:00", "2026-01-01 05:10", "2026-01-01 06:11", True),  # idle first
        (BOTH, "2026-01-02 03:30", "2026-01-02 03:59", "2026-01-02 04:01", True),  # daily first
        (BOTH, "2026-01-01 05:00", "2026-01-01 22:00", "2026-01-01 22:30", False),
    ],
)
def test_is_expired(
    policy: ResetPolicy, started: str, last: str | None, now: str, expired: bool
) -> None:
    result = is_expired(
        policy,
        session_started_at_ms=ms(started),
        last_interaction_at_ms=ms(last) if last else None,
        now_ms=ms(now),
        tz=TZ,
    )
    assert result is expired


def test_daily_uses_the_given_timezone() -> None:
    started = ms("2026-01-02 03:00", UTC)  # 05:00 at UTC+2, i.e. after that day's boundary
    now = ms("2026-01-02 04:30", UTC)
    assert is_expired(
        DAILY, session_started_at_ms=started, last_interaction_at_ms=None, now_ms=now, tz=UTC
    )
    assert not is_expired(
        DAILY, session_started_at_ms=started, last_interaction_at_ms=None, now_ms=now, tz=TZ
    )


RULES = ResetRules(
    default=ResetPolicy(mode="idle", idle_minutes=1),
    by_type={"direct": DAILY, "thread": BOTH},
    by_channel={"telegram": ResetPolicy(mode="none")},
)


@pytest.mark.parametrize(
    ("channel", "chat_type", "thread", "expected"),
    [
        ("telegram", "direct", False, ResetPolicy(mode="none")),
        ("Telegram", "group", True, ResetPolicy(mode="none")),
        ("discord", "direct", False, DAILY),
        ("discord", None, False, DAILY),
        ("discord", "channel", True, BOTH),
        ("discord", "channel", False, ResetPolicy(mode="idle", idle_minutes=1)),
        ("discord", "group", False, ResetPolicy(mode="idle", idle_minutes=1)),
    ],
)
def test_select_reset_policy(
    channel: str, chat_type: str | None, thread: bool, expected: ResetPolicy
) -> None:
    assert select_reset_policy(RULES, channel=channel, chat_type=chat_type, is_thread=thread) == (
        expected
    )

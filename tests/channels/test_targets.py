"""The target strings an operator's `send` / `message.action` may name (channels.targets)."""

from __future__ import annotations

import pytest

from channels.targets import Destination, TargetError, check_message_id, parse_target


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("42", Destination("42")),
        (" -1001234 ", Destination("-1001234")),
        ("telegram:42", Destination("42")),
        ("TG:telegram:group:-100", Destination("-100")),
        ("-1001234:topic:7", Destination("-1001234", "7")),
        ("-1001234:7", Destination("-1001234", "7")),
        ("@news_room", Destination("@news_room")),
        ("@news_room:topic:3", Destination("@news_room", "3")),
        ("https://t.me/news_room", Destination("@news_room")),
        ("t.me/news_room", Destination("@news_room")),
    ],
)
def test_telegram_targets(raw: str, want: Destination) -> None:
    assert parse_target("telegram", raw) == want


@pytest.mark.parametrize(
    "raw",
    ["", "  ", "#general", "@abc", "news_room", "t.me/news_room:topic:7", "42:topic:x", "1" * 21,
     "42\n43", "https://example.com/news_room", "user:42"],
)  # fmt: skip
def test_telegram_rejects(raw: str) -> None:
    with pytest.raises(TargetError):
        parse_target("telegram", raw)


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("123456789012345678", Destination("123456789012345678")),
        ("channel:123", Destination("123")),
        ("discord:Channel:123", Destination("123")),
        ("<#123>", Destination("123")),
        ("user:42", Destination("42", dm=True)),
        ("<@42>", Destination("42", dm=True)),
        ("<@!42>", Destination("42", dm=True)),
    ],
)
def test_discord_targets(raw: str, want: Destination) -> None:
    assert parse_target("discord", raw) == want


@pytest.mark.parametrize(
    "raw", ["#general", "general", "channel:", "user:abc", "<@&42>", "role:42", "@someone", "-42"]
)
def test_discord_rejects(raw: str) -> None:
    with pytest.raises(TargetError, match="Discord target"):
        parse_target("discord", raw)


def test_message_ids_are_digits() -> None:
    assert check_message_id(" 77 ", "replyToId") == "77"
    with pytest.raises(TargetError, match="replyToId must be a numeric id"):
        check_message_id("77a", "replyToId")
    with pytest.raises(TargetError, match="no target format"):
        parse_target("slack", "C123")

"""Where an operator's outbound message goes: the target strings of `send` and `message.action`.

The forms are the reference CLI's (`openclaw message send --target …`), checked here before
anything reaches a platform so a typo is a clear error, not a message to the wrong place:

| Channel  | Accepted                                                                      |
| -------- | ----------------------------------------------------------------------------- |
| Telegram | chat id (`-100…` for groups), `@username`, `t.me/<username>`,                 |
|          | `<chatId>:topic:<topicId>` (or `<chatId>:<topicId>`); `telegram:`/`tg:` prefix |
| Discord  | `channel:<id>`, bare `<id>` (a channel), `<#id>`, `user:<id>` or `<@id>` (a DM); |
|          | `discord:` prefix                                                            |

Names (`#general`, a Discord username) are not looked up: ids only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Telegram chat ids are 64-bit integers; Discord snowflakes are unsigned 64-bit (≤ 20 digits).
_TG_CHAT = re.compile(r"-?\d{1,20}")
_TG_USERNAME = re.compile(r"[A-Za-z0-9_]{5,32}")
_TG_LINK = re.compile(r"(?:https?://)?t\.me/([A-Za-z0-9_]{5,32})", re.I)
_TG_TOPIC = re.compile(r"(.+?):(?:topic:)?(\d{1,20})")
_TG_PREFIX = re.compile(r"(?:telegram|tg):", re.I)
_SNOWFLAKE = re.compile(r"\d{1,20}")
_DC_MENTION_USER = re.compile(r"<@!?(\d{1,20})>")
_DC_MENTION_CHANNEL = re.compile(r"<#(\d{1,20})>")
_MESSAGE_ID = re.compile(r"\d{1,20}")


class TargetError(ValueError):
    """A target string that names no chat this channel can address (the message says why)."""


@dataclass(frozen=True)
class Destination:
    """A parsed target: `chat_id` to post in, or (`dm`) a user whose DM has to be opened."""

    chat_id: str
    thread_id: str | None = None
    dm: bool = False


def parse_target(channel: str, raw: str) -> Destination:
    """The destination `raw` names on `channel` ("telegram" or "discord"); TargetError if none."""
    text = raw.strip()
    if not text:
        raise TargetError("target must not be empty")
    if channel == "telegram":
        return _telegram(text, raw)
    if channel == "discord":
        return _discord(text, raw)
    raise TargetError(f"channel {channel!r} has no target format")


def check_message_id(value: str, what: str) -> str:
    """A platform message/thread id as both platforms write them (digits); TargetError else."""
    text = value.strip()
    if not _MESSAGE_ID.fullmatch(text):
        raise TargetError(f"{what} must be a numeric id, got {value!r}")
    return text


def _telegram(text: str, raw: str) -> Destination:
    while (prefix := _TG_PREFIX.match(text)) is not None:
        text = text[prefix.end() :].strip()
        if text[:6].lower() == "group:":  # the session keys' `telegram:group:<id>` form
            text = text[6:].strip()
    thread_id: str | None = None
    if (topic := _TG_TOPIC.fullmatch(text)) is not None:
        text, thread_id = topic.group(1), topic.group(2)
    if _TG_CHAT.fullmatch(text):
        return Destination(text, thread_id)
    if text.startswith("@") and _TG_USERNAME.fullmatch(text[1:]):
        return Destination(text, thread_id)
    if thread_id is None and (link := _TG_LINK.fullmatch(text)) is not None:
        return Destination("@" + link.group(1))
    raise TargetError(
        f"Telegram target {raw!r} is not a chat id, @username or <chatId>:topic:<topicId>"
    )


def _discord(text: str, raw: str) -> Destination:
    if text[:8].lower() == "discord:":
        text = text[8:].strip()
    kind, sep, rest = text.partition(":")
    if sep and kind.lower() in ("channel", "user"):
        if _SNOWFLAKE.fullmatch(rest.strip()):
            return Destination(rest.strip(), dm=kind.lower() == "user")
    elif _SNOWFLAKE.fullmatch(text):
        return Destination(text)
    elif (mention := _DC_MENTION_USER.fullmatch(text)) is not None:
        return Destination(mention.group(1), dm=True)
    elif (mention := _DC_MENTION_CHANNEL.fullmatch(text)) is not None:
        return Destination(mention.group(1))
    raise TargetError(
        f"Discord target {raw!r} is not channel:<id>, user:<id>, <@id> or a channel id "
        "(names are not looked up)"
    )

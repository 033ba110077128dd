"""Telegram channel adapter (python-telegram-bot): long polling → pipeline, `Transport` back.

`channels.telegram.apiRoot` points the Bot API at another host (tests: the fake server).
"""

from channels.telegram.channel import (
    BAD_TOKEN_ERROR,
    MISSING_TOKEN_ERROR,
    TOKEN_ENV,
    TelegramChannel,
    TelegramTransport,
    TokenError,
    format_for_telegram,
    resolve_token,
)
from channels.telegram.inbound import to_inbound

__all__ = [
    "BAD_TOKEN_ERROR",
    "MISSING_TOKEN_ERROR",
    "TOKEN_ENV",
    "TelegramChannel",
    "TelegramTransport",
    "TokenError",
    "format_for_telegram",
    "resolve_token",
    "to_inbound",
]

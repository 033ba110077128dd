"""Discord channel adapter (discord.py): events → `InboundMessage`, `Transport` for replies.

The manager creates one `DiscordChannel` per configured account::

    token = resolve_token(config.channels.discord)          # config token, else DISCORD_BOT_TOKEN
    channel = DiscordChannel(gateway=gw, account_id="default", token=token,
                             config=config.channels.discord, on_message=pipeline.handle)
    await channel.start(); channel.status(); await channel.stop()

Env `DISCORD_API_URL` (e.g. `http://127.0.0.1:PORT/api/v10`) points REST and the gateway
websocket at another host; see `channels.discord.library`.
"""

from channels.discord.channel import (
    BAD_TOKEN_ERROR,
    INTENT_ERROR,
    MISSING_TOKEN_ERROR,
    TOKEN_ENV,
    ChannelNotConnected,
    DiscordChannel,
    DiscordTransport,
    OnMessage,
    intents,
    resolve_token,
)
from channels.discord.inbound import to_inbound
from channels.discord.library import API_URL_ENV, ApiUrlError, apply_api_url

__all__ = [
    "API_URL_ENV",
    "BAD_TOKEN_ERROR",
    "INTENT_ERROR",
    "MISSING_TOKEN_ERROR",
    "TOKEN_ENV",
    "ApiUrlError",
    "ChannelNotConnected",
    "DiscordChannel",
    "DiscordTransport",
    "OnMessage",
    "apply_api_url",
    "intents",
    "resolve_token",
    "to_inbound",
]

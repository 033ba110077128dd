"""The media settings read from the config: size limits and what a model can look at."""

from __future__ import annotations

from gateway.config.models import DiscordConfig, OpenClawConfig, TelegramConfig

MB = 1024 * 1024
CHANNEL_DEFAULT_MAX_MB = 100.0  # channels.<telegram|discord>.mediaMaxMb
CHAT_DEFAULT_MAX_MB = 20.0  # agents.defaults.mediaMaxMb (Control UI / chat.send)
# Providers whose models read images unless their `models[].input` says otherwise; other
# (local, OpenAI-compatible) models must declare `input: ["text", "image"]`.
VISION_BY_DEFAULT = frozenset({"anthropic", "openai", "google", "openrouter"})


def channel_max_bytes(section: DiscordConfig | TelegramConfig) -> int:
    return int((section.media_max_mb or CHANNEL_DEFAULT_MAX_MB) * MB)


def chat_max_bytes(config: OpenClawConfig) -> int:
    return int((config.agents.defaults.media_max_mb or CHAT_DEFAULT_MAX_MB) * MB)


# The largest decoded attachment one WebSocket frame can carry, and the agents' image cap
# (the values hello-ok's `policy.attachments` advertises, protocol handshake).
FRAME_ATTACHMENT_MAX_BYTES = 19_464_192
IMAGE_ATTACHMENT_MAX_BYTES = 6_291_456


def attachment_policy(config: OpenClawConfig) -> dict[str, int]:
    """hello-ok `policy.attachments`: `mediaMaxMb` within what a frame can carry."""
    most = min(chat_max_bytes(config), FRAME_ATTACHMENT_MAX_BYTES)
    return {"maxBytes": most, "maxImageBytes": min(most, IMAGE_ATTACHMENT_MAX_BYTES)}


def supports_images(config: OpenClawConfig, provider: str, model: str) -> bool:
    entry = config.models.providers.get(provider)
    for definition in entry.models if entry is not None else []:
        if definition.id == model and definition.input is not None:
            return "image" in definition.input
    return provider in VISION_BY_DEFAULT

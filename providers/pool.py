"""Provider clients, created on first use and reused while their settings stay the same."""

from __future__ import annotations

from collections.abc import Callable

from providers.endpoints import API_ALIASES
from providers.types import Provider, ProviderSettings


class ProviderPool:
    """Hands out one client per provider; changed settings (key, URL) build a new one."""

    def __init__(self, settings_for: Callable[[str], ProviderSettings]) -> None:
        # settings_for(provider) resolves config + env; raises MissingCredentials.
        self._settings_for = settings_for
        self._clients: dict[str, tuple[ProviderSettings, Provider]] = {}

    def get(self, provider: str) -> Provider:
        settings = self._settings_for(provider)
        cached = self._clients.get(provider)
        if cached is not None and cached[0] == settings:
            return cached[1]
        client = _build(settings)
        self._clients[provider] = (settings, client)
        return client

    async def close(self) -> None:
        for _, client in self._clients.values():
            close = getattr(client, "close", None)
            if close is not None:
                await close()
        self._clients.clear()


# The module that speaks each API (imported off the event loop before a turn needs it).
SDK_MODULES: dict[str, str] = {
    "anthropic-messages": "providers.anthropic_api",
    "google-generative-ai": "providers.google_api",
    "openai-completions": "providers.openai_api",
    "openai-responses": "providers.openai_api",
}


def sdk_module(api: str | None) -> str:
    """The provider module for a config `api` value (aliases resolved; OpenAI's by default)."""
    return SDK_MODULES.get(API_ALIASES.get(api or "", api or ""), "providers.openai_api")


def _build(settings: ProviderSettings) -> Provider:
    # SDKs are imported on first use: an idle gateway does not pay for them.
    if settings.api == "anthropic-messages":
        from providers.anthropic_api import AnthropicProvider

        return AnthropicProvider(settings)
    if settings.api == "google-generative-ai":
        from providers.google_api import GoogleProvider

        return GoogleProvider(settings)
    from providers.openai_api import OpenAIProvider

    return OpenAIProvider(settings)

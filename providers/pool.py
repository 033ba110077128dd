"""Provider clients, created on first use and reused while their settings stay the same."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from providers.endpoints import provider_settings
from providers.types import Provider, ProviderSettings


class ProviderPool:
    """Hands out one client per provider; a changed config (key, URL) builds a new one."""

    def __init__(
        self,
        provider_config: Callable[[str], dict[str, object]],
        env: Mapping[str, str] = os.environ,
    ) -> None:
        # provider_config(provider) -> {"api", "baseUrl", "apiKey", "timeoutSeconds"} (resolved)
        self._config = provider_config
        self._env = env
        self._clients: dict[str, tuple[ProviderSettings, Provider]] = {}

    def get(self, provider: str) -> Provider:
        cfg = self._config(provider)
        settings = provider_settings(
            provider,
            api=_str(cfg.get("api")),
            base_url=_str(cfg.get("baseUrl")),
            api_key=_str(cfg.get("apiKey")),
            timeout_s=_float(cfg.get("timeoutSeconds")),
            env=self._env,
        )
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


def _build(settings: ProviderSettings) -> Provider:
    # SDKs are imported on first use: an idle gateway does not pay for them.
    if settings.api == "anthropic-messages":
        from providers.anthropic_api import AnthropicProvider

        return AnthropicProvider(settings)
    from providers.openai_api import OpenAIProvider

    return OpenAIProvider(settings)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None

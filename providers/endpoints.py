"""Resolve a provider's settings (API kind, base URL, credentials) from config and env."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from providers.types import DEFAULT_API, ENV_KEYS, Api, MissingCredentials, ProviderSettings

KNOWN_APIS: frozenset[str] = frozenset(
    {"anthropic-messages", "openai-completions", "openai-responses"}
)


def normalize_base_url(api: Api, base_url: str | None) -> str | None:
    """Base URLs as each SDK expects them.

    The OpenAI SDK appends `/chat/completions` to its base, so a bare host gets `/v1`; the
    Anthropic SDK appends `/v1/messages`, so a trailing `/v1` is removed. Either form works in
    config, as it does in the reference.
    """
    if not base_url:
        return None
    parts = urlsplit(base_url.strip())
    path = parts.path.rstrip("/")
    if api == "anthropic-messages":
        if path.endswith("/v1"):
            path = path[: -len("/v1")]
    elif path == "":
        path = "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def provider_settings(
    provider: str,
    *,
    api: str | None,
    base_url: str | None,
    api_key: str | None,
    timeout_s: float | None,
    env: Mapping[str, str],
) -> ProviderSettings:
    """Settings for one provider. Raises MissingCredentials naming the env var to set."""
    chosen = api or DEFAULT_API.get(provider)
    if chosen is None:
        raise MissingCredentials(
            f'provider "{provider}" has no API kind; set models.providers.{provider}.api'
        )
    if chosen not in KNOWN_APIS:
        raise MissingCredentials(
            f'provider "{provider}" uses api "{chosen}", which this gateway does not speak'
        )
    kind: Api = chosen  # type: ignore[assignment]
    bearer = None
    key = api_key
    if not key and provider == "anthropic":
        # Subscription tokens go in the Authorization header, not x-api-key.
        bearer = env.get("ANTHROPIC_OAUTH_TOKEN") or None
    if not key and bearer is None:
        key = env.get(ENV_KEYS.get(provider, f"{provider.upper().replace('-', '_')}_API_KEY"))
    if not key and bearer is None:
        var = ENV_KEYS.get(provider, f"{provider.upper().replace('-', '_')}_API_KEY")
        raise MissingCredentials(
            f"no API key configured for {provider}: set {var}"
            f" (or models.providers.{provider}.apiKey)"
        )
    return ProviderSettings(
        provider=provider,
        api=kind,
        base_url=normalize_base_url(kind, base_url),
        api_key=key or None,
        bearer_token=bearer,
        timeout_s=timeout_s,
    )

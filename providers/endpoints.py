"""Resolve a provider's settings (API kind, base URL, credentials) from config and env."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from providers.types import DEFAULT_API, ENV_KEYS, Api, MissingCredentials, ProviderSettings

KNOWN_APIS: frozenset[str] = frozenset(
    {"anthropic-messages", "openai-completions", "openai-responses", "google-generative-ai"}
)
# Config `api` values spoken through another API: Ollama's native API is served here through
# its OpenAI-compatible endpoint (the same host, `/v1`), which streams text and tool calls.
API_ALIASES: dict[str, Api] = {"ollama": "openai-completions"}

# Where each known provider answers when `models.providers.<p>.baseUrl` is not set (the
# reference's provider pages). Anthropic, OpenAI and Google use their SDKs' own defaults.
DEFAULT_BASE_URLS: dict[str, str] = {
    "openrouter": "https://openrouter.ai/api/v1",
    "groq": "https://api.groq.com/openai/v1",
    "xai": "https://api.x.ai/v1",
    "mistral": "https://api.mistral.ai/v1",
    "deepseek": "https://api.deepseek.com",
    "together": "https://api.together.xyz/v1",
    "cerebras": "https://api.cerebras.ai/v1",
    "fireworks": "https://api.fireworks.ai/inference/v1",
    "nvidia": "https://integrate.api.nvidia.com/v1",
    "moonshot": "https://api.moonshot.ai/v1",
    "deepinfra": "https://api.deepinfra.com/v1/openai",
    "huggingface": "https://router.huggingface.co/v1",
    "ollama": "http://127.0.0.1:11434",
    "lmstudio": "http://127.0.0.1:1234/v1",
    "vllm": "http://127.0.0.1:8000/v1",
    "sglang": "http://127.0.0.1:30000/v1",
}
# Further env vars tried, in order, after ENV_KEYS[provider].
EXTRA_ENV_KEYS: dict[str, tuple[str, ...]] = {
    "google": ("GOOGLE_API_KEY",),
    "huggingface": ("HF_TOKEN",),
}
# Providers that keep their key requirement even on a local URL (a local proxy for a hosted
# API still wants the hosted key; tests point these at loopback fakes).
FIRST_PARTY: frozenset[str] = frozenset({"anthropic", "openai", "google"})
# Sent as the bearer token to a local server that needs none: the OpenAI SDK insists on a key,
# and without one it would read OPENAI_API_KEY and send it to the local host.
LOCAL_PLACEHOLDER_KEY = "ollama-local"


def env_key_names(provider: str) -> tuple[str, ...]:
    """The env vars that may hold `provider`'s key, in the order they are tried."""
    first = ENV_KEYS.get(provider, f"{provider.upper().replace('-', '_')}_API_KEY")
    return (first, *EXTRA_ENV_KEYS.get(provider, ()))


def is_local_url(url: str) -> bool:
    """Loopback, private-network, link-local, `.local` or bare-hostname hosts (no key needed)."""
    host = (urlsplit(url.strip()).hostname or "").lower()
    if not host:
        return False
    if host == "localhost" or host.endswith(".local") or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host  # a bare LAN hostname such as `gpu-box`
    return ip.is_loopback or ip.is_private or ip.is_link_local


def resolve_api(provider: str, api: str | None) -> str | None:
    """The API a provider speaks: config `api` (aliases applied), else the provider's default."""
    chosen = api or DEFAULT_API.get(provider)
    return API_ALIASES.get(chosen, chosen) if chosen else None


def normalize_base_url(api: Api, base_url: str | None) -> str | None:
    """Base URLs as each SDK expects them.

    The OpenAI SDK appends `/chat/completions` to its base, so a bare host gets `/v1`; the
    Anthropic SDK appends `/v1/messages`, so a trailing `/v1` is removed; a Google URL keeps
    its version segment (`…/v1beta`, the reference's form), which the Google provider hands
    to its SDK as the API version. Either form works in config, as it does in the reference.
    """
    if not base_url:
        return None
    parts = urlsplit(base_url.strip())
    path = parts.path.rstrip("/")
    if api == "anthropic-messages":
        if path.endswith("/v1"):
            path = path[: -len("/v1")]
    elif api == "google-generative-ai":
        pass
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
    """Settings for one provider. Raises MissingCredentials naming the key or env var to set."""
    chosen = resolve_api(provider, api)
    if chosen is None:
        raise MissingCredentials(
            f'unknown provider "{provider}": configure models.providers.{provider}'
            " (baseUrl, api, apiKey) or use a known provider"
        )
    if chosen not in KNOWN_APIS:
        raise MissingCredentials(
            f'provider "{provider}" uses api "{chosen}", which this gateway does not speak'
            f" (supported: {', '.join(sorted(KNOWN_APIS | API_ALIASES.keys()))})"
        )
    kind: Api = chosen  # type: ignore[assignment]
    url = base_url or DEFAULT_BASE_URLS.get(provider)
    bearer = None
    key = api_key
    if not key and provider == "anthropic":
        # Subscription tokens go in the Authorization header, not x-api-key.
        bearer = env.get("ANTHROPIC_OAUTH_TOKEN") or None
    names = env_key_names(provider)
    if not key and bearer is None:
        key = next((env[n] for n in names if env.get(n)), None)
    if not key and bearer is None and provider not in FIRST_PARTY and url and is_local_url(url):
        key = LOCAL_PLACEHOLDER_KEY
    if not key and bearer is None:
        raise MissingCredentials(
            f"no API key configured for {provider}: set {' or '.join(names)}"
            f" (or models.providers.{provider}.apiKey)"
        )
    return ProviderSettings(
        provider=provider,
        api=kind,
        base_url=normalize_base_url(kind, url),
        api_key=key or None,
        bearer_token=bearer,
        timeout_s=timeout_s,
    )

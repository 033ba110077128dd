"""The effective memory-search settings of one agent.

Keys, most specific first: `agents.entries.<id>.memorySearch`, `agents.defaults.memorySearch`
(the older spelling), then `memory.search` (the reference's current one). Each layer
overrides only the keys it sets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.config.models import MemorySearchConfig, OpenClawConfig
from gateway.config.secrets import SecretError, resolve_secret

DEFAULT_MAX_RESULTS = 6
EMBEDDING_PROVIDERS = frozenset({"openai", "openai-compatible"})
DEFAULT_EMBEDDING_MODEL = "text-embedding-3-small"


@dataclass(frozen=True)
class ExtraPath:
    path: Path
    pattern: str | None = None


@dataclass(frozen=True)
class Embeddings:
    provider: str
    model: str
    api_key: str | None
    base_url: str | None
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def identity(self) -> str:
        """What the stored vectors depend on; a change discards them."""
        return f"{self.provider}|{self.model}|{self.base_url or ''}"


@dataclass(frozen=True)
class MemorySettings:
    enabled: bool = True
    extra_paths: tuple[ExtraPath, ...] = ()
    max_results: int = DEFAULT_MAX_RESULTS
    min_score: float = 0.0
    chunk_tokens: int = 400
    chunk_overlap: int = 80
    embeddings: Embeddings | None = None
    # Why vector search is off although a provider was named (missing key, unknown provider).
    embeddings_problem: str | None = None


def _merged(config: OpenClawConfig, agent_id: str) -> MemorySearchConfig:
    layers: list[MemorySearchConfig] = [config.memory.search]
    if config.agents.defaults.memory_search is not None:
        layers.append(config.agents.defaults.memory_search)
    entry = config.agents.entries.get(agent_id)
    if entry is not None and entry.memory_search is not None:
        layers.append(entry.memory_search)
    merged = layers[0].model_dump()
    for layer in layers[1:]:
        merged.update(layer.model_dump(include=layer.model_fields_set))
    return MemorySearchConfig.model_validate(merged)


def memory_settings(
    config: OpenClawConfig,
    agent_id: str,
    workspace: Path,
    env: Mapping[str, str] | None = None,
) -> MemorySettings:
    env = os.environ if env is None else env
    cfg = _merged(config, agent_id)
    extras: list[ExtraPath] = []
    for item in cfg.extra_paths:
        raw, pattern = (item, None) if isinstance(item, str) else (item.path, item.pattern)
        path = Path(os.path.expanduser(raw))
        extras.append(ExtraPath(path if path.is_absolute() else workspace / path, pattern))
    embeddings, problem = _embeddings(cfg, config, env)
    return MemorySettings(
        enabled=cfg.enabled,
        extra_paths=tuple(extras),
        max_results=cfg.query.max_results or DEFAULT_MAX_RESULTS,
        min_score=cfg.query.min_score or 0.0,
        chunk_tokens=cfg.chunking.tokens,
        chunk_overlap=min(cfg.chunking.overlap, cfg.chunking.tokens // 2),
        embeddings=embeddings,
        embeddings_problem=problem,
    )


def _embeddings(
    cfg: MemorySearchConfig, config: OpenClawConfig, env: Mapping[str, str]
) -> tuple[Embeddings | None, str | None]:
    provider = (cfg.provider or "").strip().lower()
    if provider in ("", "none", "auto"):
        # Vector search only when asked for by name: no surprise embedding traffic.
        return None, None
    if provider not in EMBEDDING_PROVIDERS:
        return None, (
            f"memory.search.provider {cfg.provider!r} is not supported "
            f"(supported: {', '.join(sorted(EMBEDDING_PROVIDERS))}); keyword search only"
        )
    openai = config.models.providers.get("openai")
    try:
        key = resolve_secret(cfg.remote.api_key, "memory.search.remote.apiKey", env)
        if key is None and openai is not None:
            key = resolve_secret(openai.api_key, "models.providers.openai.apiKey", env)
    except SecretError as exc:
        return None, f"{exc}; keyword search only"
    key = key or env.get("OPENAI_API_KEY") or None
    base_url = cfg.remote.base_url or (openai.base_url if openai is not None else None)
    if key is None and provider == "openai":
        return None, "memory.search.provider is openai but no API key is set; keyword search only"
    return (
        Embeddings(
            provider=provider,
            model=cfg.model or DEFAULT_EMBEDDING_MODEL,
            api_key=key,
            base_url=base_url,
            headers=tuple(sorted(cfg.remote.headers.items())),
        ),
        None,
    )

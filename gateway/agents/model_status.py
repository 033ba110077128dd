"""Whether each configured model can answer right now, for models.list and the startup log.

The wire (`ModelChoice`) has `available`, `unavailableReason` (`missing-auth`, `auth-failed`,
`cooldown`) and `unavailableUntil`; a model whose provider is unknown or speaks an API this
gateway does not is also `available: false`, with a tag naming the problem, since the wire
has no reason for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from gateway.agents.model_turn import provider_settings_from_config
from gateway.config.models import OpenClawConfig
from providers.endpoints import KNOWN_APIS, resolve_api
from providers.failover import ModelHealth, RetryPolicy
from providers.types import MissingCredentials


def provider_problem(config: OpenClawConfig, provider: str, env: Mapping[str, str]) -> str | None:
    """`unknown-provider`, `unsupported-api`, `missing-auth`, or None when usable."""
    entry = config.models.providers.get(provider)
    api = resolve_api(provider, entry.api if entry else None)
    if api is None:
        return "unknown-provider"
    if api not in KNOWN_APIS:
        return "unsupported-api"
    try:
        provider_settings_from_config(config, provider, env)
    except MissingCredentials:
        return "missing-auth"
    return None


def configured_models(config: OpenClawConfig) -> Iterator[tuple[str, str | None]]:
    """(`provider/model`, display name) of `models.providers.<p>.models[]` entries."""
    for provider, entry in config.models.providers.items():
        models = entry.models if isinstance(entry.models, list) else []
        for model in models:
            if isinstance(model, dict) and isinstance(model.get("id"), str) and model["id"]:
                name = model.get("name")
                yield f"{provider}/{model['id']}", name if isinstance(name, str) and name else None


def availability(
    config: OpenClawConfig,
    refs: list[str],
    state_dir: Path,
    env: Mapping[str, str] = os.environ,
) -> dict[str, dict[str, Any]]:
    """Wire fields per ref: {} when usable, else `available: false` and why."""
    health = ModelHealth(state_dir / "agents" / "model-health.json", RetryPolicy())
    problems: dict[str, str | None] = {}
    out: dict[str, dict[str, Any]] = {}
    for ref in refs:
        provider = ref.partition("/")[0]
        if provider not in problems:
            problems[provider] = provider_problem(config, provider, env)
        problem = problems[provider]
        if problem == "missing-auth":
            out[ref] = {"available": False, "unavailableReason": "missing-auth"}
        elif problem is not None:
            out[ref] = {"available": False, "tags": [problem]}
        elif (wait := health.remaining(ref)) > 0:
            until = int((health.clock() + wait) * 1000)
            out[ref] = {
                "available": False,
                "unavailableReason": "cooldown",
                "unavailableUntil": until,
            }
        else:
            out[ref] = {"available": True}
    return out

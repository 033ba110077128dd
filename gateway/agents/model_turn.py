"""The agents' model boundary: a run request in, one failover turn through the providers out."""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.agents.roster import ModelChain
from gateway.agents.runner import DeltaSink, RunFailure, RunOutcome, RunRequest, Usage
from gateway.config.models import OpenClawConfig
from gateway.config.secrets import SecretError, resolve_secret
from gateway.logs import scrubber
from providers.classify import Failure, user_message
from providers.endpoints import provider_settings
from providers.failover import ModelHealth, RetryPolicy, run_turn
from providers.pool import ProviderPool, sdk_module
from providers.types import (
    DEFAULT_API,
    Message,
    MissingCredentials,
    ProviderSettings,
    TurnRequest,
)

if TYPE_CHECKING:
    from gateway.runtime import Gateway

log = logging.getLogger("agent/embedded")

# Runner error kinds (protocol `errorKind`) for our failure reasons.
_ERROR_KIND = {
    "rate_limit": "rate_limit",
    "cooldown": "rate_limit",
    "timeout": "timeout",
    "context_overflow": "context_length",
    "content_filter": "refusal",
}


def provider_settings_from_config(
    config: OpenClawConfig, provider: str, env: Mapping[str, str]
) -> ProviderSettings:
    """`models.providers.<provider>` plus the environment, resolved.

    Raises MissingCredentials (naming the key or env var to set, never a value).
    """
    entry = config.models.providers.get(provider)
    try:
        key = resolve_secret(
            entry.api_key if entry else None, f"models.providers.{provider}.apiKey", env
        )
    except SecretError as exc:
        raise MissingCredentials(str(exc)) from exc
    return provider_settings(
        provider,
        api=entry.api if entry else None,
        base_url=entry.base_url if entry else None,
        api_key=key,
        timeout_s=entry.timeout_seconds if entry else None,
        env=env,
    )


def to_messages(history: tuple[dict[str, Any], ...], text: str) -> tuple[Message, ...]:
    """Transcript messages plus the new user text, merged so roles alternate."""
    out: list[Message] = []
    for message in (*history, {"role": "user", "content": text}):
        role = message.get("role")
        if role not in ("user", "assistant"):
            continue
        body = _text_of(message.get("content"))
        if not body.strip():
            continue
        if out and out[-1].role == role:
            out[-1] = Message.text(role, f"{out[-1].plain_text}\n\n{body}")
        else:
            out.append(Message.text(role, body))
    while out and out[0].role != "user":
        out.pop(0)  # both APIs want the conversation to open with the user
    return tuple(out)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(block.get("text", ""))
            for block in content
            if isinstance(block, dict) and block.get("type") == "text"
        )
    return ""


class ModelTurns:
    """Callable the agent service uses for every turn (see AgentService's ModelTurn)."""

    def __init__(
        self,
        gateway: Gateway,
        env: Mapping[str, str] = os.environ,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.gateway = gateway
        self.env = env
        self.policy = policy or RetryPolicy.from_env(env)
        self.pool = ProviderPool(self._settings_for)
        path: Path = gateway.settings.state_dir / "agents" / "model-health.json"
        self.health = ModelHealth(path, self.policy)

    def _settings_for(self, provider: str) -> ProviderSettings:
        return provider_settings_from_config(self.gateway.loaded.config, provider, self.env)

    async def __call__(
        self, req: RunRequest, sink: DeltaSink, chain: ModelChain, prompt: str
    ) -> RunOutcome:
        text = req.text
        if req.overflow_summary:
            text = f"{req.overflow_summary}\n\n{text}"
        modules = {self._sdk_module(ref.partition("/")[0]) for ref in chain.candidates}
        missing = sorted(m for m in modules if m not in sys.modules)
        if missing:
            # Each SDK loads on first use of its API (idle memory stays low, and one never
            # used is never loaded), off the event loop: importing inline stalled every
            # connection for about a second.
            await asyncio.to_thread(_import_modules, missing)
            # Module-level objects live forever: keep the collector from rescanning them
            # on every full collection (a 100+ ms pause with an SDK loaded).
            gc.freeze()
        request = TurnRequest(model="", messages=to_messages(req.history, text), system=prompt)
        result = await run_turn(
            chain.candidates,
            request,
            self.pool.get,
            sink,
            health=self.health,
            policy=self.policy,
            run_id=req.run_id,
        )
        if result.completion is not None and result.candidate is not None:
            provider, _, model = result.candidate.partition("/")
            done = result.completion
            return RunOutcome(
                text=done.text,
                usage=Usage(
                    input=done.usage.input_tokens,
                    output=done.usage.output_tokens,
                    cache_read=done.usage.cache_read,
                    cache_write=done.usage.cache_write,
                ),
                provider=provider,
                model=model,
                api=result.api,
                stop_reason=_stop_reason(done.stop_reason),
                response_id=done.response_id,
            )
        failure = result.failure or Failure("unknown")
        last = next((a for a in reversed(result.attempts) if a.failure is failure), None)
        provider, _, model = (last.candidate if last else chain.primary).partition("/")
        detail = {
            "provider": provider,
            "model": model,
            "failoverReason": failure.reason,
            "httpStatus": failure.status,
            "providerErrorType": failure.error_type,
            # Provider text can echo request content; registered secrets are masked out.
            "providerErrorMessagePreview": scrubber.scrub(failure.preview)[:300] or None,
        }
        return RunOutcome(
            provider=provider,
            model=model,
            failure=RunFailure(
                user_message(failure),
                _ERROR_KIND.get(failure.reason, "unknown"),
                {k: v for k, v in detail.items() if v is not None},
            ),
        )

    def _sdk_module(self, provider: str) -> str:
        entry = self.gateway.loaded.config.models.providers.get(provider)
        api = (entry.api if entry else None) or DEFAULT_API.get(provider)
        return sdk_module(api)

    async def close(self) -> None:
        await self.pool.close()


def _import_modules(names: list[str]) -> None:
    for name in names:
        importlib.import_module(name)


def _stop_reason(raw: str) -> str:
    return {"end_turn": "stop", "completed": "stop", "max_tokens": "length"}.get(raw, raw)

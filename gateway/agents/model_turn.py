"""The agents' model boundary: a run request in, the tool loop over failover turns out."""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import logging
import math
import os
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.agents import roster as rv
from gateway.agents.compaction import ContextManager, Flush
from gateway.agents.context import CHARS_PER_TOKEN
from gateway.agents.loop import LoopResult, ToolLoop, Toolset, to_messages, tool_spec
from gateway.agents.memory.flush import MEMORY_FLUSH_SYSTEM
from gateway.agents.roster import ModelChain
from gateway.agents.runner import DeltaSink, RunFailure, RunOutcome, RunRequest, Usage
from gateway.agents.usage_footer import sum_usage
from gateway.config.models import OpenClawConfig
from gateway.config.secrets import SecretError, resolve_secret
from gateway.logs import scrubber
from gateway.media.blocks import MediaResolver, fit_request
from gateway.media.service import media_store
from gateway.media.settings import supports_images
from providers.classify import Failure, user_message
from providers.endpoints import provider_settings
from providers.failover import ModelHealth, RetryPolicy, TurnResult, run_turn
from providers.pool import ProviderPool, sdk_module
from providers.types import (
    DEFAULT_API,
    Completion,
    MissingCredentials,
    Provider,
    ProviderSettings,
    StreamEvent,
    TurnRequest,
)

if TYPE_CHECKING:
    from gateway.runtime import Gateway

log = logging.getLogger("agent/embedded")

WRITE_TOOLS = frozenset({"write", "edit", "apply_patch"})
AFTER_TOOLS_TEXT = (
    "Tools had already run in this turn, so it was not retried on another model; "
    "check what they did before asking again."
)

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
        self.context = ContextManager(gateway, self._complete)  # budget + compaction (issue 14)

    def _resolver(self, conversation: Sequence[Mapping[str, Any]]) -> MediaResolver:
        return MediaResolver(media_store(self.gateway), conversation)

    def _fitted(self, provider: str) -> Provider:
        """The provider, sending each request fitted to its model (images, PDFs)."""
        return FittedProvider(self.pool.get(provider), self.gateway)

    def _settings_for(self, provider: str) -> ProviderSettings:
        return provider_settings_from_config(self.gateway.loaded.config, provider, self.env)

    async def __call__(
        self,
        req: RunRequest,
        sink: DeltaSink,
        chain: ModelChain,
        prompt: str,
        toolset: Toolset,
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
        # --- context (issue 14): /compact, budget check, compaction, overflow retry ---
        tools_tokens = tool_tokens(toolset)
        if (command := await self.context.command(req, chain, prompt, tools_tokens)) is not None:
            return command

        async def model(request: TurnRequest, candidates: Sequence[str]) -> TurnResult:
            return await run_turn(
                candidates,
                request,
                self._fitted,
                sink,
                health=self.health,
                policy=self.policy,
                run_id=req.run_id,
            )

        async def attempt(history: tuple[dict[str, Any], ...]) -> LoopResult:
            loop = ToolLoop(model, sink, toolset, run_id=req.run_id, usage_json=_usage_json)
            messages = to_messages(history, text, req.media, self._resolver)
            return await loop.run(messages, prompt, chain.candidates)

        flush = None
        if WRITE_TOOLS & toolset.tools.keys():  # a flush needs a way to write memory files
            flush = self._memory_flush(req, chain, prompt, toolset)
        result, notice = await self.context.turn(
            req, chain, prompt, text, attempt, flush, tools_tokens
        )
        return self._outcome(result, chain, notice)

    def _memory_flush(
        self, req: RunRequest, chain: ModelChain, prompt: str, toolset: Toolset
    ) -> Flush:
        """The silent pre-compaction turn (memory/flush.py): tools write files, every text
        delta, event and transcript record is dropped, and only one model is asked."""
        config = self.gateway.loaded.config
        override = config.agents.defaults.compaction.memory_flush.model
        candidates = (
            (rv.resolve_model_ref(override, rv.model_aliases(config)),)
            if override
            else (chain.primary,)
        )
        silent = _SilentSink()

        async def model(request: TurnRequest, chosen: Sequence[str]) -> TurnResult:
            return await run_turn(
                chosen, request, self.pool.get, silent, health=self.health, policy=self.policy
            )

        async def flush(history: tuple[dict[str, Any], ...], user_text: str) -> None:
            loop = ToolLoop(
                model, silent, toolset, run_id=f"{req.run_id}:flush", usage_json=_usage_json
            )
            result = await loop.run(
                to_messages(history, user_text), f"{prompt}\n\n{MEMORY_FLUSH_SYSTEM}", candidates
            )
            if result.completion is None:
                reason = result.failure.reason if result.failure else "unknown"
                raise RuntimeError(f"the flush turn failed ({reason})")

        return flush

    def _outcome(self, result: LoopResult, chain: ModelChain, notice: str | None) -> RunOutcome:
        if result.completion is not None and result.candidate is not None:
            provider, _, model = result.candidate.partition("/")
            done = result.completion
            final = self.context.usage(result.candidate, done.usage)
            return RunOutcome(
                text=f"{notice}\n\n{done.text}" if notice else done.text,
                usage=final,
                turn_usage=self._turn_usage(result, final),
                provider=provider,
                model=model,
                api=result.api,
                stop_reason=done.stop_reason,
                response_id=done.response_id,
            )
        failure = result.failure or Failure("unknown")
        provider, _, model = (result.failed_candidate or chain.primary).partition("/")
        detail = {
            "provider": provider,
            "model": model,
            "failoverReason": failure.reason,
            "httpStatus": failure.status,
            "providerErrorType": failure.error_type,
            # Provider text can echo request content; registered secrets are masked out.
            "providerErrorMessagePreview": scrubber.scrub(failure.preview)[:300] or None,
        }
        message = user_message(failure)
        if result.after_side_effects:
            message = f"{message}\n{AFTER_TOOLS_TEXT}"
        return RunOutcome(
            provider=provider,
            model=model,
            failure=RunFailure(
                message,
                _ERROR_KIND.get(failure.reason, "unknown"),
                {k: v for k, v in detail.items() if v is not None},
            ),
        )

    def _turn_usage(self, result: LoopResult, final: Usage) -> Usage:
        """Every call of the turn (tool steps, then the answer), each priced on its own."""
        if not result.steps:
            return final
        calls = [self.context.usage(ref, used) for ref, used in result.steps] + [final]
        inp, out, read, write, cost = sum_usage(calls)
        return Usage(
            input=inp,
            output=out,
            cache_read=read,
            cache_write=write,
            cost={"total": round(cost, 9)} if cost is not None else None,
        )

    async def _complete(self, candidates: Sequence[str], request: TurnRequest) -> TurnResult:
        """One request through `candidates` without streaming (compaction summaries)."""
        return await run_turn(
            candidates, request, self.pool.get, _discard, health=self.health, policy=self.policy
        )

    def _sdk_module(self, provider: str) -> str:
        entry = self.gateway.loaded.config.models.providers.get(provider)
        api = (entry.api if entry else None) or DEFAULT_API.get(provider)
        return sdk_module(api)

    async def close(self) -> None:
        await self.pool.close()


def tool_tokens(toolset: Toolset) -> int:
    """Estimated tokens of the tool definitions every request of the turn carries."""
    size = 0
    for found in toolset.tools.values():
        spec = tool_spec(found)
        size += len(spec.name) + len(spec.description) + len(json.dumps(spec.parameters))
    return math.ceil(size / CHARS_PER_TOKEN)


class FittedProvider:
    """A provider whose requests first go through `fit_request` for the model they name."""

    def __init__(self, inner: Provider, gateway: Gateway) -> None:
        self.inner = inner
        self.settings = inner.settings
        self.gateway = gateway

    def stream(self, request: TurnRequest) -> AsyncIterator[StreamEvent]:
        vision = supports_images(self.gateway.loaded.config, self.settings.provider, request.model)
        return self.inner.stream(fit_request(request, api=self.settings.api, vision=vision))


def _discard(text: str) -> None:
    return None


class _SilentSink:
    """A run outlet that keeps nothing: the memory flush is invisible to user and transcript."""

    def __call__(self, text: str) -> None:
        return None

    def reset(self) -> None:
        return None

    def record(self, messages: Sequence[dict[str, Any]]) -> None:
        return None

    def agent_event(self, stream: str, data: dict[str, Any]) -> None:
        return None


def _import_modules(names: list[str]) -> None:
    for name in names:
        importlib.import_module(name)


def _usage(done: Completion) -> Usage:
    return Usage(
        input=done.usage.input_tokens,
        output=done.usage.output_tokens,
        cache_read=done.usage.cache_read,
        cache_write=done.usage.cache_write,
    )


def _usage_json(done: Completion) -> dict[str, object]:
    return _usage(done).to_json()

"""Anthropic Messages API through the official SDK, streaming."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic

from providers.classify import ContentFiltered
from providers.types import (
    Completion,
    EmptyResponse,
    ProviderSettings,
    StreamEvent,
    TextDelta,
    TurnRequest,
    Usage,
)

DEFAULT_TIMEOUT_S = 300.0


class AnthropicProvider:
    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        timeout = settings.timeout_s or DEFAULT_TIMEOUT_S
        # max_retries=0: the failover policy owns every retry (agents.md §9.3).
        self._client = anthropic.AsyncAnthropic(
            api_key=settings.api_key,
            auth_token=settings.bearer_token,
            base_url=settings.base_url,
            max_retries=0,
            timeout=timeout,
        )

    async def stream(self, request: TurnRequest) -> AsyncIterator[StreamEvent]:
        kwargs: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": m.role, "content": m.text} for m in request.messages],
        }
        if request.system:
            kwargs["system"] = request.system
        async with self._client.messages.stream(**kwargs) as stream:
            async for event in stream:
                if event.type == "text" and event.text:
                    yield TextDelta(event.text)
            final = await stream.get_final_message()
        text = "".join(block.text for block in final.content if block.type == "text")
        if final.stop_reason == "refusal":
            raise ContentFiltered()
        if not text:
            raise EmptyResponse()
        usage = final.usage
        yield Completion(
            text=text,
            usage=Usage(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cache_read=usage.cache_read_input_tokens or 0,
                cache_write=usage.cache_creation_input_tokens or 0,
            ),
            stop_reason=final.stop_reason or "end_turn",
            model=final.model,
            response_id=final.id,
        )

    async def close(self) -> None:
        await self._client.close()

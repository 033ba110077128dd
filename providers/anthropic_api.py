"""Anthropic Messages API through the official SDK, streaming.

The request goes through the SDK client's own `post` with its typed SSE stream class: same
HTTP stack, auth headers, SSE decoding and error types as `messages.stream()`, without the
per-call walk over the typed request params (milliseconds per turn on a long history).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
from anthropic.types import Message, RawMessageStreamEvent

from providers.caching import add_cache_breakpoints
from providers.classify import ContentFiltered
from providers.types import (
    Completion,
    EmptyResponse,
    ProviderSettings,
    StreamEvent,
    Text,
    TextDelta,
    TurnRequest,
    Usage,
)

DEFAULT_TIMEOUT_S = 300.0


class AnthropicProvider:
    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        # max_retries=0: the failover policy owns every retry (agents.md §9.3).
        self._client = anthropic.AsyncAnthropic(
            api_key=settings.api_key,
            auth_token=settings.bearer_token,
            base_url=settings.base_url,
            max_retries=0,
            timeout=settings.timeout_s or DEFAULT_TIMEOUT_S,
        )

    async def stream(self, request: TurnRequest) -> AsyncIterator[StreamEvent]:
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": m.role, "content": m.plain_text} for m in request.messages],
            "stream": True,
        }
        if request.system:
            body["system"] = request.system
        body = add_cache_breakpoints(body)  # prompt caching (issue 14, providers/caching.py)
        stream = await self._client.post(
            "/v1/messages",
            body=body,
            cast_to=Message,
            stream=True,
            stream_cls=anthropic.AsyncStream[RawMessageStreamEvent],
        )
        parts: list[str] = []
        input_tokens = output_tokens = cache_read = cache_write = 0
        stop_reason = "end_turn"
        model, message_id = request.model, None
        async with stream:
            async for event in stream:
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    if event.delta.text:
                        parts.append(event.delta.text)
                        yield TextDelta(event.delta.text)
                elif event.type == "message_start":
                    message_id, model = event.message.id, event.message.model
                    usage = event.message.usage
                    input_tokens = usage.input_tokens
                    cache_read = usage.cache_read_input_tokens or 0
                    cache_write = usage.cache_creation_input_tokens or 0
                elif event.type == "message_delta":
                    output_tokens = event.usage.output_tokens
                    stop_reason = event.delta.stop_reason or stop_reason
        if stop_reason == "refusal":
            raise ContentFiltered()
        text = "".join(parts)
        if not text:
            raise EmptyResponse()
        yield Completion(
            content=(Text(text),),
            usage=Usage(input_tokens, output_tokens, cache_read, cache_write),
            stop_reason=stop_reason,
            model=model,
            response_id=message_id,
        )

    async def close(self) -> None:
        await self._client.close()

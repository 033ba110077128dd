"""OpenAI through the official SDK: Chat Completions and Responses, both streaming.

Requests go through the SDK client's own `post` with its typed SSE stream classes: same HTTP
stack, auth, SSE decoding and error types as the resource methods, without their per-call
walk over the typed request params (milliseconds per turn on a long history).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent

from providers.classify import ContentFiltered
from providers.types import (
    Completion,
    EmptyResponse,
    ProviderSettings,
    StreamEvent,
    StreamFailure,
    Text,
    TextDelta,
    TurnRequest,
    Usage,
)

DEFAULT_TIMEOUT_S = 300.0


class OpenAIProvider:
    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        # max_retries=0: the failover policy owns every retry (agents.md §9.3).
        self._client = openai.AsyncOpenAI(
            api_key=settings.api_key,
            base_url=settings.base_url,
            max_retries=0,
            timeout=settings.timeout_s or DEFAULT_TIMEOUT_S,
        )

    def stream(self, request: TurnRequest) -> AsyncIterator[StreamEvent]:
        if self.settings.api == "openai-responses":
            return self._responses(request)
        return self._completions(request)

    async def _completions(self, request: TurnRequest) -> AsyncIterator[StreamEvent]:
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages += [{"role": m.role, "content": m.plain_text} for m in request.messages]
        body = {
            "model": request.model,
            "messages": messages,
            "max_completion_tokens": request.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        stream = await self._client.post(
            "/chat/completions",
            body=body,
            cast_to=ChatCompletion,
            stream=True,
            stream_cls=openai.AsyncStream[ChatCompletionChunk],
        )
        parts: list[str] = []
        usage = Usage()
        finish = "stop"
        model = request.model
        response_id: str | None = None
        async with stream:
            async for chunk in stream:
                response_id = response_id or chunk.id
                model = chunk.model or model
                if chunk.usage is not None:
                    usage = Usage(
                        input_tokens=chunk.usage.prompt_tokens,
                        output_tokens=chunk.usage.completion_tokens,
                    )
                for choice in chunk.choices:
                    if choice.delta.content:
                        parts.append(choice.delta.content)
                        yield TextDelta(choice.delta.content)
                    if choice.finish_reason:
                        finish = choice.finish_reason
        if finish == "content_filter":
            raise ContentFiltered()
        text = "".join(parts)
        if not text:
            raise EmptyResponse()
        yield Completion(
            content=(Text(text),),
            usage=usage,
            stop_reason=finish,
            model=model,
            response_id=response_id,
        )

    async def _responses(self, request: TurnRequest) -> AsyncIterator[StreamEvent]:
        body: dict[str, Any] = {
            "model": request.model,
            "input": [{"role": m.role, "content": m.plain_text} for m in request.messages],
            "max_output_tokens": request.max_tokens,
            "stream": True,
        }
        if request.system:
            body["instructions"] = request.system
        stream = await self._client.post(
            "/responses",
            body=body,
            cast_to=Response,
            stream=True,
            stream_cls=openai.AsyncStream[ResponseStreamEvent],
        )
        parts: list[str] = []
        final: Response | None = None
        async with stream:
            async for event in stream:
                if event.type == "response.output_text.delta" and event.delta:
                    parts.append(event.delta)
                    yield TextDelta(event.delta)
                elif event.type == "response.completed":
                    final = event.response
                elif event.type == "error":
                    raise StreamFailure(event.code, event.message)
                elif event.type == "response.failed":
                    err = event.response.error
                    raise StreamFailure(err.code if err else None, err.message if err else "")
        text = "".join(parts) or (final.output_text if final else "")
        if not text:
            raise EmptyResponse()
        usage = final.usage if final else None
        yield Completion(
            content=(Text(text),),
            usage=Usage(
                input_tokens=usage.input_tokens if usage else 0,
                output_tokens=usage.output_tokens if usage else 0,
            ),
            stop_reason=(final.status if final else None) or "completed",
            model=final.model if final else request.model,
            response_id=final.id if final else None,
        )

    async def close(self) -> None:
        await self._client.close()

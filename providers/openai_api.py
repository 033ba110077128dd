"""OpenAI through the official SDK: Chat Completions and Responses, both streaming.

Requests go through the SDK client's own `post` with its typed SSE stream classes: same HTTP
stack, auth, SSE decoding and error types as the resource methods, without their per-call
walk over the typed request params (milliseconds per turn on a long history).

Neutral blocks (tools.md §5.5): Chat Completions carries tool calls as the assistant's
`tool_calls` (arguments streamed as string fragments per call index) and results as `role:
"tool"` messages; Responses carries `function_call` / `function_call_output` input items.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent

from gateway.tls import client_context
from providers.classify import ContentFiltered
from providers.types import (
    Block,
    Completion,
    Document,
    EmptyResponse,
    Image,
    Message,
    ProviderSettings,
    StreamEvent,
    StreamFailure,
    Text,
    TextDelta,
    ToolCall,
    ToolResult,
    TurnRequest,
    Usage,
    arguments_json,
    normalise_stop_reason,
    parse_arguments,
)

DEFAULT_TIMEOUT_S = 300.0


def _data_url(block: Image | Document) -> str:
    return f"data:{block.media_type};base64,{base64.b64encode(block.data).decode('ascii')}"


def _chat_parts(blocks: list[Block]) -> str | list[dict[str, Any]]:
    """User content: a plain string when it is only text (the common, small form)."""
    if all(isinstance(b, Text) for b in blocks):
        return "".join(b.text for b in blocks if isinstance(b, Text))
    parts: list[dict[str, Any]] = []
    for b in blocks:
        if isinstance(b, Text):
            parts.append({"type": "text", "text": b.text})
        elif isinstance(b, Image):
            parts.append({"type": "image_url", "image_url": {"url": _data_url(b)}})
        elif isinstance(b, Document):
            file: dict[str, Any] = {"file_data": _data_url(b)}
            if b.name:
                file["filename"] = b.name
            parts.append({"type": "file", "file": file})
    return parts


def chat_messages(request: TurnRequest) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if request.system:
        out.append({"role": "system", "content": request.system})
    for m in request.messages:
        if m.role == "assistant":
            text = m.plain_text
            calls = [b for b in m.content if isinstance(b, ToolCall)]
            if not calls:
                out.append({"role": "assistant", "content": text})
                continue
            out.append(
                {
                    "role": "assistant",
                    "content": text or None,
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": arguments_json(c)},
                        }
                        for c in calls
                    ],
                }
            )
            continue
        # Tool results first: they must follow the assistant message that asked for them.
        rest: list[Block] = []
        for b in m.content:
            if isinstance(b, ToolResult):
                out.append({"role": "tool", "tool_call_id": b.call_id, "content": b.text})
            else:
                rest.append(b)
        if rest:
            out.append({"role": "user", "content": _chat_parts(rest)})
    return out


def responses_input(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        pending: list[Block] = []
        for b in m.content:
            if isinstance(b, ToolCall | ToolResult):
                _flush_items(out, m.role, pending)
                pending = []
                if isinstance(b, ToolCall):
                    item = {
                        "type": "function_call",
                        "call_id": b.id,
                        "name": b.name,
                        "arguments": arguments_json(b),
                    }
                else:
                    item = {"type": "function_call_output", "call_id": b.call_id, "output": b.text}
                out.append(item)
            else:
                pending.append(b)
        _flush_items(out, m.role, pending)
    return out


def _flush_items(out: list[dict[str, Any]], role: str, blocks: list[Block]) -> None:
    if not blocks:
        return
    if all(isinstance(b, Text) for b in blocks):
        out.append(
            {"role": role, "content": "".join(b.text for b in blocks if isinstance(b, Text))}
        )
    else:
        out.append({"role": role, "content": _responses_parts(blocks, role)})


def _responses_parts(blocks: list[Block], role: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for b in blocks:
        if isinstance(b, Text):
            kind = "output_text" if role == "assistant" else "input_text"
            parts.append({"type": kind, "text": b.text})
        elif isinstance(b, Image):
            parts.append({"type": "input_image", "image_url": _data_url(b)})
        elif isinstance(b, Document):
            parts.append(
                {"type": "input_file", "file_data": _data_url(b), "filename": b.name or "file"}
            )
    return parts


class _Fragments:
    __slots__ = ("id", "name", "parts")

    def __init__(self) -> None:
        self.id, self.name, self.parts = "", "", list[str]()


class OpenAIProvider:
    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        timeout = settings.timeout_s or DEFAULT_TIMEOUT_S
        # max_retries=0: the failover policy owns every retry (agents.md §9.3).
        self._client = openai.AsyncOpenAI(
            api_key=settings.api_key,
            base_url=settings.base_url,
            max_retries=0,
            timeout=timeout,
            # The SDK's own client class (its limits, keep-alive, redirects), with the
            # process's one TLS context instead of a CA bundle loaded for this client.
            http_client=openai.DefaultAsyncHttpxClient(timeout=timeout, verify=client_context()),
        )

    def stream(self, request: TurnRequest) -> AsyncIterator[StreamEvent]:
        if self.settings.api == "openai-responses":
            return self._responses(request)
        return self._completions(request)

    async def _completions(self, request: TurnRequest) -> AsyncIterator[StreamEvent]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": chat_messages(request),
            "max_completion_tokens": request.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in request.tools
            ]
            if request.tool_choice == "none":
                body["tool_choice"] = "none"
        stream = await self._client.post(
            "/chat/completions",
            body=body,
            cast_to=ChatCompletion,
            stream=True,
            stream_cls=openai.AsyncStream[ChatCompletionChunk],
        )
        parts: list[str] = []
        calls: dict[int, _Fragments] = {}
        usage = Usage()
        finish = "stop"
        model = request.model
        response_id: str | None = None
        async with stream:
            async for chunk in stream:
                response_id = response_id or chunk.id
                model = chunk.model or model
                if chunk.usage is not None:
                    details = chunk.usage.prompt_tokens_details
                    cached = (details.cached_tokens or 0) if details else 0
                    usage = Usage(
                        # OpenAI counts cached prompt tokens inside prompt_tokens; ours (as
                        # Anthropic's) keep them apart: input + cache_read = the prompt.
                        input_tokens=chunk.usage.prompt_tokens - cached,
                        output_tokens=chunk.usage.completion_tokens,
                        cache_read=cached,
                    )
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta.content:
                        parts.append(delta.content)
                        yield TextDelta(delta.content)
                    for frag in delta.tool_calls or ():
                        slot = calls.setdefault(frag.index, _Fragments())
                        slot.id = frag.id or slot.id
                        if frag.function is not None:
                            slot.name = frag.function.name or slot.name
                            if frag.function.arguments:
                                slot.parts.append(frag.function.arguments)
                    if choice.finish_reason:
                        finish = choice.finish_reason
        if finish == "content_filter":
            raise ContentFiltered()
        content: list[Block] = []
        text = "".join(parts)
        if text:
            content.append(Text(text))
        for index in sorted(calls):
            slot = calls[index]
            arguments, raw = parse_arguments("".join(slot.parts))
            content.append(ToolCall(slot.id or f"call_{index}", slot.name, arguments, raw))
        if not content:
            raise EmptyResponse()
        yield Completion(
            content=tuple(content),
            usage=usage,
            stop_reason=normalise_stop_reason(finish, bool(calls)),
            model=model,
            response_id=response_id,
        )

    async def _responses(self, request: TurnRequest) -> AsyncIterator[StreamEvent]:
        body: dict[str, Any] = {
            "model": request.model,
            "input": responses_input(request.messages),
            "max_output_tokens": request.max_tokens,
            "stream": True,
        }
        if request.system:
            body["instructions"] = request.system
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                    "strict": False,
                }
                for t in request.tools
            ]
            if request.tool_choice == "none":
                body["tool_choice"] = "none"
        stream = await self._client.post(
            "/responses",
            body=body,
            cast_to=Response,
            stream=True,
            stream_cls=openai.AsyncStream[ResponseStreamEvent],
        )
        # Output items by index: text parts and finished function calls, in the model's order.
        items: dict[int, Block] = {}
        texts: dict[int, list[str]] = {}
        final: Response | None = None
        async with stream:
            async for event in stream:
                if event.type == "response.output_text.delta" and event.delta:
                    texts.setdefault(event.output_index, []).append(event.delta)
                    yield TextDelta(event.delta)
                elif event.type == "response.output_item.done":
                    item = event.item
                    if item.type == "function_call":
                        arguments, raw = parse_arguments(item.arguments or "")
                        items[event.output_index] = ToolCall(
                            item.call_id, item.name, arguments, raw
                        )
                elif event.type == "response.completed":
                    final = event.response
                elif event.type == "error":
                    raise StreamFailure(event.code, event.message)
                elif event.type == "response.failed":
                    err = event.response.error
                    raise StreamFailure(err.code if err else None, err.message if err else "")
                elif event.type == "response.incomplete":
                    final = event.response
        for index, pieces in texts.items():
            items.setdefault(index, Text("".join(pieces)))
        content = [items[i] for i in sorted(items)]
        if not content and final is not None and final.output_text:
            content = [Text(final.output_text)]
        if not content:
            raise EmptyResponse()
        usage = final.usage if final else None
        calls = any(isinstance(b, ToolCall) for b in content)
        status: str | None = final.status if final else None
        if status == "incomplete" and final is not None and final.incomplete_details:
            status = final.incomplete_details.reason
        if status == "content_filter":
            raise ContentFiltered()
        yield Completion(
            content=tuple(content),
            usage=_responses_usage(usage),
            stop_reason=normalise_stop_reason(status or "completed", calls),
            model=final.model if final else request.model,
            response_id=final.id if final else None,
        )

    async def close(self) -> None:
        await self._client.close()


def _responses_usage(usage: Any) -> Usage:
    """The Responses API's counts, with cached input apart from the rest as in `Usage`."""
    if usage is None:
        return Usage()
    details = getattr(usage, "input_tokens_details", None)
    cached = (getattr(details, "cached_tokens", 0) or 0) if details else 0
    return Usage(
        input_tokens=usage.input_tokens - cached,
        output_tokens=usage.output_tokens,
        cache_read=cached,
    )

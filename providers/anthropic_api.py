"""Anthropic Messages API through the official SDK, streaming.

The request goes through the SDK client's own `post` with its typed SSE stream class: same
HTTP stack, auth headers, SSE decoding and error types as `messages.stream()`, without the
per-call walk over the typed request params (milliseconds per turn on a long history).

Neutral blocks map to `text`, `tool_use` (assistant), `tool_result` (user), `image` and
`document` blocks (tools.md §5.5); a tool call's input arrives as `input_json_delta`
fragments and is parsed once its block stops.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import anthropic
from anthropic.types import Message as ApiMessage
from anthropic.types import RawMessageStreamEvent

from gateway.tls import client_context
from providers.caching import add_cache_breakpoints
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
    Text,
    TextDelta,
    ToolCall,
    ToolResult,
    TurnRequest,
    Usage,
    normalise_stop_reason,
    parse_arguments,
)

DEFAULT_TIMEOUT_S = 300.0


def _block(block: Block) -> dict[str, Any]:
    if isinstance(block, Text):
        return {"type": "text", "text": block.text}
    if isinstance(block, ToolCall):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.arguments}
    if isinstance(block, ToolResult):
        return {
            "type": "tool_result",
            "tool_use_id": block.call_id,
            "content": block.text,
            "is_error": block.is_error,
        }
    data = base64.b64encode(block.data).decode("ascii")
    if isinstance(block, Image):
        source = {"type": "base64", "media_type": block.media_type, "data": data}
        return {"type": "image", "source": source}
    if isinstance(block, Document) and block.media_type.startswith("text/"):
        text = block.data.decode("utf-8", errors="replace")
        doc: dict[str, Any] = {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": text},
        }
    else:
        doc = {
            "type": "document",
            "source": {"type": "base64", "media_type": block.media_type, "data": data},
        }
    if block.name:
        doc["title"] = block.name
    return doc


def wire_message(message: Message) -> dict[str, Any]:
    content = message.content
    if len(content) == 1 and isinstance(content[0], Text):
        return {"role": message.role, "content": content[0].text}  # the common, small form
    return {"role": message.role, "content": [_block(b) for b in content if _keep(b)]}


def _keep(block: Block) -> bool:
    return not (isinstance(block, Text) and not block.text)  # the API refuses empty text


def request_body(request: TurnRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": [wire_message(m) for m in request.messages],
        "stream": True,
    }
    if request.system:
        body["system"] = request.system
    if request.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in request.tools
        ]
        if request.tool_choice == "none":
            body["tool_choice"] = {"type": "none"}
    return body


class _ToolUse:
    __slots__ = ("id", "name", "parts")

    def __init__(self, call_id: str, name: str) -> None:
        self.id, self.name, self.parts = call_id, name, list[str]()


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
            # The SDK's own client class (its limits, keep-alive, redirects), with the
            # process's one TLS context instead of a CA bundle loaded for this client.
            http_client=anthropic.DefaultAsyncHttpxClient(timeout=timeout, verify=client_context()),
        )

    async def stream(self, request: TurnRequest) -> AsyncIterator[StreamEvent]:
        stream = await self._client.post(
            "/v1/messages",
            # Prompt caching (issue 14): breakpoints on the stable prefix, providers/caching.py.
            body=add_cache_breakpoints(request_body(request)),
            cast_to=ApiMessage,
            stream=True,
            stream_cls=anthropic.AsyncStream[RawMessageStreamEvent],
        )
        # Blocks by stream index, so text and tool calls keep the model's order.
        blocks: dict[int, list[str] | _ToolUse] = {}
        input_tokens = output_tokens = cache_read = cache_write = 0
        stop_reason = "end_turn"
        model, message_id = request.model, None
        async with stream:
            async for event in stream:
                if event.type == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta":
                        if delta.text:
                            slot = blocks.setdefault(event.index, [])
                            if isinstance(slot, list):
                                slot.append(delta.text)
                            yield TextDelta(delta.text)
                    elif delta.type == "input_json_delta":
                        use = blocks.get(event.index)
                        if isinstance(use, _ToolUse):
                            use.parts.append(delta.partial_json)
                elif event.type == "content_block_start":
                    block = event.content_block
                    if block.type == "tool_use":
                        blocks[event.index] = _ToolUse(block.id, block.name)
                    elif block.type == "text":
                        blocks[event.index] = [block.text] if block.text else []
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
        content: list[Block] = []
        for index in sorted(blocks):
            slot = blocks[index]
            if isinstance(slot, _ToolUse):
                arguments, raw = parse_arguments("".join(slot.parts))
                content.append(ToolCall(slot.id, slot.name, arguments, raw))
            elif slot:
                content.append(Text("".join(slot)))
        if not content:
            raise EmptyResponse()
        calls = any(isinstance(b, ToolCall) for b in content)
        yield Completion(
            content=tuple(content),
            usage=Usage(input_tokens, output_tokens, cache_read, cache_write),
            stop_reason=normalise_stop_reason(stop_reason, calls),
            model=model,
            response_id=message_id,
        )

    async def close(self) -> None:
        await self._client.close()

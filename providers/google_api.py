"""Google Gemini through the official `google-genai` SDK (Gemini API), streaming.

Neutral blocks map to Gemini parts: Text → text, Image/Document → inline data, ToolCall →
functionCall, ToolResult → functionResponse; assistant turns have the role `model`. The SDK's
own retries stay off (its default) and automatic function calling is disabled: the failover
policy and the agent's tool loop own those decisions.
"""

from __future__ import annotations

import itertools
import os
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from typing import Any

from google import genai
from google.genai import types

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
)

DEFAULT_TIMEOUT_S = 300.0
# Finish reasons that mean a safety or policy filter cut the answer.
FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "MODEL_ARMOR",
    }
)
# Gemini 3 wants each function call's thought signature sent back with it. Calls made by
# another model (or before a restart) have none; Google documents this value for them.
SKIP_SIGNATURE = b"skip_thought_signature_validator"
_SIGNATURES_KEPT = 512
_API_VERSION = re.compile(r"v\d+(?:(?:alpha|beta)\d*)?")
_call_ids = itertools.count(1)


class GoogleProvider:
    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        timeout_ms = int((settings.timeout_s or DEFAULT_TIMEOUT_S) * 1000)
        # The process's one TLS context for the SDK's httpx clients (`verify`) and its aiohttp
        # session and websockets (`ssl`): without it the client loads three CA bundles.
        tls = client_context()
        options = types.HttpOptions(
            timeout=timeout_ms,
            client_args={"verify": tls},
            async_client_args={"verify": tls, "ssl": tls},
        )
        if settings.base_url:
            # `https://host/v1beta` (the reference's form): host for the SDK, version apart.
            base, _, last = settings.base_url.rstrip("/").rpartition("/")
            if _API_VERSION.fullmatch(last) and "://" in base:
                options.base_url, options.api_version = base + "/", last
            else:
                options.base_url = settings.base_url
        self._client = genai.Client(api_key=settings.api_key, http_options=options)
        # call id -> thought signature of calls this provider produced, for the follow-up turn.
        self._signatures: OrderedDict[str, bytes] = OrderedDict()

    async def stream(self, request: TurnRequest) -> AsyncIterator[StreamEvent]:
        config = types.GenerateContentConfig(
            max_output_tokens=request.max_tokens,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        if request.system:
            config.system_instruction = request.system
        if request.tools:
            config.tools = [
                types.Tool(
                    function_declarations=[
                        types.FunctionDeclaration(
                            name=t.name,
                            description=t.description,
                            parameters_json_schema=dict(t.parameters),
                        )
                        for t in request.tools
                    ]
                )
            ]
        stream = await self._client.aio.models.generate_content_stream(
            model=request.model,
            contents=[self._content(m) for m in request.messages],
            config=config,
        )
        content: list[Block] = []
        finish: str | None = None
        usage = Usage()
        model, response_id = request.model, None
        async for chunk in stream:
            response_id = response_id or chunk.response_id
            model = chunk.model_version or model
            feedback = chunk.prompt_feedback
            if feedback is not None and feedback.block_reason is not None:
                raise ContentFiltered()
            if chunk.usage_metadata is not None:
                meta = chunk.usage_metadata
                usage = Usage(
                    input_tokens=meta.prompt_token_count or 0,
                    output_tokens=(meta.candidates_token_count or 0)
                    + (meta.thoughts_token_count or 0),
                    cache_read=meta.cached_content_token_count or 0,
                )
            for candidate in chunk.candidates or ():
                if candidate.finish_reason is not None:
                    finish = str(candidate.finish_reason.value)
                for part in (candidate.content.parts if candidate.content else None) or ():
                    if part.function_call is not None:
                        content.append(self._tool_call(part))
                    elif part.text and not part.thought:
                        _append_text(content, part.text)
                        yield TextDelta(part.text)
        if finish in FILTERED:
            raise ContentFiltered()
        if finish == "MALFORMED_FUNCTION_CALL":
            raise StreamFailure(finish, "the model produced a malformed function call")
        if not content:
            raise EmptyResponse()
        calls = any(isinstance(b, ToolCall) for b in content)
        yield Completion(
            content=tuple(content),
            usage=usage,
            stop_reason="toolUse" if calls else _stop_reason(finish),
            model=model,
            response_id=response_id,
        )

    def _tool_call(self, part: types.Part) -> ToolCall:
        call = part.function_call
        assert call is not None
        # The Gemini API often leaves the id out; the tool loop needs one to pair results.
        call_id = call.id or f"gemini_call_{os.getpid()}_{next(_call_ids)}"
        if part.thought_signature:
            self._signatures[call_id] = part.thought_signature
            while len(self._signatures) > _SIGNATURES_KEPT:
                self._signatures.popitem(last=False)
        args: Mapping[str, Any] = call.args or {}
        return ToolCall(id=call_id, name=call.name or "", arguments=dict(args))

    def _content(self, message: Message) -> types.Content:
        parts: list[types.Part] = []
        for block in message.content:
            if isinstance(block, Text):
                if block.text:
                    parts.append(types.Part(text=block.text))
            elif isinstance(block, Image | Document):
                parts.append(
                    types.Part(inline_data=types.Blob(mime_type=block.media_type, data=block.data))
                )
            elif isinstance(block, ToolCall):
                parts.append(
                    types.Part(
                        function_call=types.FunctionCall(
                            id=_wire_id(block.id), name=block.name, args=dict(block.arguments)
                        ),
                        thought_signature=self._signatures.get(block.id, SKIP_SIGNATURE),
                    )
                )
            elif isinstance(block, ToolResult):
                key = "error" if block.is_error else "output"
                parts.append(
                    types.Part(
                        function_response=types.FunctionResponse(
                            id=_wire_id(block.call_id), name=block.name, response={key: block.text}
                        )
                    )
                )
        if not parts:
            parts.append(types.Part(text=" "))  # Gemini refuses a turn without parts
        return types.Content(role="model" if message.role == "assistant" else "user", parts=parts)

    async def close(self) -> None:
        await self._client.aio.aclose()


def _append_text(content: list[Block], text: str) -> None:
    # Consecutive text parts of one answer are one text block.
    if content and isinstance(content[-1], Text):
        content[-1] = Text(content[-1].text + text)
    else:
        content.append(Text(text))


def _wire_id(call_id: str) -> str | None:
    # Ids we made up for Gemini calls that had none are not Gemini's: do not send them back.
    return None if call_id.startswith("gemini_call_") else call_id


def _stop_reason(finish: str | None) -> str:
    return {"STOP": "stop", "MAX_TOKENS": "length", None: "stop"}.get(finish, finish or "stop")

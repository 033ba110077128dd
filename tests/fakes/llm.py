"""A fake model API on 127.0.0.1: Anthropic Messages and OpenAI Chat Completions / Responses.

The real SDKs talk to it. Behaviour is scripted: each request pops the next action from
`script` (FIFO); with the script empty it answers `default_text`. Action keys:
  text          reply text (streamed word by word)
  status        answer with this HTTP error status and a provider-shaped error body
  delay         seconds to wait before answering (provider hanging / timeouts)
  headers       extra response headers (e.g. {"retry-after": "2"})
  stream_error  after the first text delta, end the stream with this error (mid-stream failure)
  error_type    override the provider error type/code in the error body
`GET /v1/models` answers both SDKs' model lists, refusing keys not in `valid_keys` when set.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

from aiohttp import web

from tests.fakes.base import LoopbackServer

ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}
OPENAI_ERROR_CODES = {
    400: "invalid_request_error",
    401: "invalid_api_key",
    402: "insufficient_quota",
    404: "model_not_found",
    429: "rate_limit_exceeded",
}
_ids = itertools.count(1)


def words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p + (" " if i < len(parts) - 1 else "") for i, p in enumerate(parts)]


class FakeLLM(LoopbackServer):
    def __init__(self, default_text: str = "ok") -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/messages", self._anthropic)
        app.router.add_post("/messages", self._anthropic)
        app.router.add_post("/v1/chat/completions", self._openai_chat)
        app.router.add_post("/chat/completions", self._openai_chat)
        app.router.add_post("/v1/responses", self._openai_responses)
        app.router.add_post("/responses", self._openai_responses)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/models", self._models)
        super().__init__(app)
        self.script: list[dict[str, Any]] = []
        # The keys `GET /models` accepts (None: any); completions never check keys.
        self.valid_keys: set[str] | None = None
        self.default_text = default_text
        self.completed_at: list[float] = []  # monotonic time each streamed answer ended

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests]

    async def _next(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Any]]:
        body = await request.json()
        action = self.script.pop(0) if self.script else {}
        await self.record(
            {
                "path": request.path,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": body,
                "at": time.monotonic(),
            }
        )
        if action.get("delay"):
            await asyncio.sleep(float(action["delay"]))
        return body, action

    # --- model lists (both APIs; a cheap authenticated call) -------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        anthropic = "anthropic-version" in request.headers
        key = request.headers.get("x-api-key") or request.headers.get(
            "Authorization", ""
        ).removeprefix("Bearer ")
        await self.record({"path": request.path, "key_given": bool(key), "body": {}})
        if self.valid_keys is not None and key not in self.valid_keys:
            if anthropic:
                error = {
                    "type": "error",
                    "error": {"type": "authentication_error", "message": "invalid x-api-key"},
                }
            else:
                error = {"error": {"message": "Incorrect API key", "code": "invalid_api_key"}}
            return web.json_response(error, status=401)
        model = {
            "id": "fake-model",
            "type": "model",
            "object": "model",
            "display_name": "Fake",
            "created_at": "2026-01-01T00:00:00Z",
            "created": 0,
            "owned_by": "fake",
        }
        return web.json_response(
            {
                "object": "list",
                "data": [model],
                "has_more": False,
                "first_id": "fake-model",
                "last_id": "fake-model",
            }
        )

    # --- Anthropic ------------------------------------------------------------------------

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        body, action = await self._next(request)
        headers = {"request-id": f"req_{next(_ids)}", **action.get("headers", {})}
        if action.get("status"):
            status = int(action["status"])
            kind = action.get("error_type") or ANTHROPIC_ERROR_TYPES.get(status, "api_error")
            error = {"type": "error", "error": {"type": kind, "message": f"fake {status}"}}
            return web.json_response(error, status=status, headers=headers)
        text = str(action.get("text", self.default_text))
        message_id, model = f"msg_{next(_ids)}", body.get("model", "fake")
        usage_out = max(1, len(text.split()))
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": 3, "output_tokens": usage_out},
                },
                headers=headers,
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", **headers})
        await resp.prepare(request)

        async def event(name: str, data: dict[str, Any]) -> None:
            await resp.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())

        await event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 3, "output_tokens": 1},
                },
            },
        )
        await event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        )
        for i, piece in enumerate(words(text)):
            await event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                },
            )
            if i == 0 and action.get("stream_error"):
                kind = str(action["stream_error"])
                await event("error", {"type": "error", "error": {"type": kind, "message": "boom"}})
                return resp
        await event("content_block_stop", {"type": "content_block_stop", "index": 0})
        await event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": usage_out},
            },
        )
        await event("message_stop", {"type": "message_stop"})
        return resp

    # --- OpenAI ---------------------------------------------------------------------------

    def _openai_error(self, action: dict[str, Any]) -> web.Response:
        status = int(action["status"])
        code = action.get("error_type") or OPENAI_ERROR_CODES.get(status, "server_error")
        body = {"error": {"message": f"fake {status}", "type": code, "param": None, "code": code}}
        headers = {"x-request-id": f"req_{next(_ids)}", **action.get("headers", {})}
        return web.json_response(body, status=status, headers=headers)

    async def _openai_chat(self, request: web.Request) -> web.StreamResponse:
        body, action = await self._next(request)
        if action.get("status"):
            return self._openai_error(action)
        text = str(action.get("text", self.default_text))
        cid, model, now = f"chatcmpl-{next(_ids)}", body.get("model"), int(time.time())
        usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": now,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": now,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        async def data(obj: dict[str, Any]) -> None:
            await resp.write(f"data: {json.dumps(obj)}\n\n".encode())

        await data(chunk({"role": "assistant", "content": ""}))
        for i, piece in enumerate(words(text)):
            await data(chunk({"content": piece}))
            if i == 0 and action.get("stream_error"):
                await data({"error": {"message": "boom", "type": str(action["stream_error"])}})
                return resp
        await data(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            await data({**chunk({}), "choices": [], "usage": usage})
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        self.completed_at.append(time.monotonic())
        return resp

    async def _openai_responses(self, request: web.Request) -> web.StreamResponse:
        body, action = await self._next(request)
        if action.get("status"):
            return self._openai_error(action)
        text = str(action.get("text", self.default_text))
        rid, model = f"resp_{next(_ids)}", body.get("model")
        item = {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
        full = {
            "id": rid,
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "model": model,
            "output": [item],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": 3,
                "output_tokens": 2,
                "total_tokens": 5,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        }
        if not body.get("stream"):
            return web.json_response(full)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        seq = itertools.count()

        async def event(obj: dict[str, Any]) -> None:
            obj["sequence_number"] = next(seq)
            await resp.write(f"event: {obj['type']}\ndata: {json.dumps(obj)}\n\n".encode())

        part = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
        await event(
            {
                "type": "response.created",
                "response": {**full, "status": "in_progress", "output": []},
            }
        )
        await event(
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {**item, "status": "in_progress", "content": []},
            }
        )
        await event(
            {
                "type": "response.content_part.added",
                **part,
                "part": {"type": "output_text", "text": "", "annotations": []},
            }
        )
        for i, piece in enumerate(words(text)):
            await event(
                {"type": "response.output_text.delta", **part, "delta": piece, "logprobs": []}
            )
            if i == 0 and action.get("stream_error"):
                await event(
                    {
                        "type": "error",
                        "code": str(action["stream_error"]),
                        "message": "boom",
                        "param": None,
                    }
                )
                return resp
        await event({"type": "response.output_text.done", **part, "text": text, "logprobs": []})
        await event({"type": "response.content_part.done", **part, "part": item["content"][0]})
        await event({"type": "response.output_item.done", "output_index": 0, "item": item})
        await event({"type": "response.completed", "response": full})
        return resp

"""A fake model API on 127.0.0.1: Anthropic Messages and OpenAI Chat Completions / Responses.

The real SDKs talk to it. Behaviour is scripted: each request pops the next action from
`script` (FIFO); with the script empty it answers `default_text`. Action keys:
  text          reply text (streamed word by word)
  status        answer with this HTTP error status and a provider-shaped error body
  delay         seconds to wait before answering (provider hanging / timeouts)
  word_delay    seconds between streamed words (Anthropic, Chat Completions): a slow model;
                `first_token_at` records (monotonic) when each answer's first word went out
  headers       extra response headers (e.g. {"retry-after": "2"})
  stream_error  after the first text delta, end the stream with this error (mid-stream failure)
  error_type    override the provider error type/code in the error body
  tool_calls    [{"name", "arguments" (an object, or a string sent verbatim: bad JSON), "id"?}]
                streamed the API's way (Anthropic `input_json_delta`, Chat Completions argument
                fragments, Responses `function_call` items); `text` (default none) comes first
  usage         Chat Completions: the `usage` object to report (`prompt_tokens`,
                `completion_tokens`, …) instead of the default 3 in / 2 out
  responses_usage  the same for the Responses API (`input_tokens`, `input_tokens_details`, …)
With the script empty, `responder(api, body)` (when set) picks the action, e.g. "call `write`
unless the last message already holds its result" (see `tool_results`). A request whose
`tool_choice` forbids tools gets the action's text (or `default_text`) without its calls.
`realistic_usage` makes Chat Completions report prompt tokens ≈ request bytes / 4 (context
tests). `GET /v1/models` answers both SDKs' model lists, refusing keys not in `valid_keys` when set.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
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
ARG_FRAGMENT = 7  # characters of argument JSON per streamed fragment
Responder = Callable[[str, dict[str, Any]], dict[str, Any]]


def _fragments(text: str) -> list[str]:
    return [text[i : i + ARG_FRAGMENT] for i in range(0, len(text), ARG_FRAGMENT)] or [""]


def _calls(action: dict[str, Any]) -> list[dict[str, Any]]:
    """The action's tool calls with ids and argument text filled in."""
    out = []
    for call in action.get("tool_calls") or ():
        args = call.get("arguments", {})
        raw = args if isinstance(args, str) else json.dumps(args)
        out.append({"id": call.get("id") or f"call_{next(_ids)}", "name": call["name"], "raw": raw})
    return out


def _tools_forbidden(body: dict[str, Any]) -> bool:
    choice = body.get("tool_choice")
    return choice == "none" or (isinstance(choice, dict) and choice.get("type") == "none")


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Tool results at the end of a request (after the last assistant turn), any API.

    Each is {"id", "text", "is_error"} (is_error is None where the API has no flag)."""
    out: list[dict[str, Any]] = []
    if "input" in body:  # Responses
        for item in reversed(body["input"]):
            if item.get("type") == "function_call_output":
                out.insert(0, {"id": item["call_id"], "text": item["output"], "is_error": None})
            elif item.get("type") == "function_call" or item.get("role") == "assistant":
                break
        return out
    for message in reversed(body.get("messages") or []):
        role = message.get("role")
        if role == "tool":  # Chat Completions
            out.insert(
                0, {"id": message["tool_call_id"], "text": message["content"], "is_error": None}
            )
            continue
        if role == "user" and isinstance(message.get("content"), list):  # Anthropic
            for block in message["content"]:
                if block.get("type") == "tool_result":
                    content = block.get("content")
                    if isinstance(content, list):
                        content = "".join(b.get("text", "") for b in content)
                    out.append(
                        {"id": block["tool_use_id"], "text": content, "is_error": block["is_error"]}
                    )
        if role in ("assistant", "user"):
            break
    return out


def tool_names(body: dict[str, Any]) -> list[str]:
    """Names of the tools a request declares, any API."""
    names: list[str] = []
    for t in body.get("tools") or ():
        names.append(str(t.get("name") or (t.get("function") or {}).get("name")))
    return names


def words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p + (" " if i < len(parts) - 1 else "") for i, p in enumerate(parts)]


def speech_audio(text: str, response_format: str | None) -> tuple[bytes, str]:
    """What the fake speech endpoint answers: a stand-in Ogg/Opus (or MP3) file whose
    payload is the text, so a test can tell which text was spoken."""
    payload = text.encode()
    if response_format == "mp3":
        return b"ID3\x04\x00\x00\x00\x00\x00\x00" + payload, "audio/mpeg"
    head = b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x13OpusHead\x01\x01\x38\x01\x80\xbb"
    return head + b"\x00" * 16 + payload, "audio/ogg"


class FakeLLM(LoopbackServer):
    def __init__(self, default_text: str = "ok") -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/messages", self._anthropic)
        app.router.add_post("/messages", self._anthropic)
        app.router.add_post("/v1/chat/completions", self._openai_chat)
        app.router.add_post("/chat/completions", self._openai_chat)
        app.router.add_post("/v1/responses", self._openai_responses)
        app.router.add_post("/responses", self._openai_responses)
        app.router.add_post("/v1/audio/transcriptions", self._transcription)
        app.router.add_post("/audio/transcriptions", self._transcription)
        app.router.add_post("/v1/audio/speech", self._speech)
        app.router.add_post("/audio/speech", self._speech)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/models", self._models)
        super().__init__(app)
        self.script: list[dict[str, Any]] = []
        # The keys `GET /models` accepts (None: any); completions never check keys.
        self.valid_keys: set[str] | None = None
        self.default_text = default_text
        self.completed_at: list[float] = []  # monotonic time each streamed answer ended
        self.first_token_at: list[float] = []  # monotonic time each answer's first word left
        self.responder: Responder | None = None
        self.realistic_usage = False  # Chat Completions: report prompt tokens ≈ bytes / 4

        # Speech to text: each upload pops the next transcript (an int: that HTTP error).
        self.transcripts: list[str | int] = []
        self.uploads: list[dict[str, Any]] = []  # {"model", "filename", "bytes", ...}
        # Text to speech: each request body is kept; a queued int answers with that error.
        self.speech_requests: list[dict[str, Any]] = []
        self.speech_failures: list[int] = []

    async def _pace(self, index: int, action: dict[str, Any]) -> None:
        """Before streaming word `index`: note the first token, wait `word_delay` after."""
        if index == 0:
            self.first_token_at.append(time.monotonic())
        elif action.get("word_delay"):
            await asyncio.sleep(float(action["word_delay"]))

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if "body" in r]

    def images(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The image parts of a request body, any of the three APIs."""
        found: list[dict[str, Any]] = []

        def walk(value: Any) -> None:
            if isinstance(value, dict):
                if value.get("type") in ("image", "image_url", "input_image"):
                    found.append(value)
                for v in value.values():
                    walk(v)
            elif isinstance(value, list):
                for v in value:
                    walk(v)

        walk(body.get("messages") or body.get("input"))
        return found

    async def _transcription(self, request: web.Request) -> web.Response:
        """OpenAI's `POST /v1/audio/transcriptions` (multipart), as the openai SDK calls it."""
        form = await request.post()
        upload: dict[str, Any] = {"auth": request.headers.get("Authorization", "")}
        for key, value in form.items():
            if isinstance(value, web.FileField):
                upload["filename"] = value.filename
                upload["content_type"] = value.content_type
                upload["bytes"] = value.file.read()
            else:
                upload[key] = str(value)
        self.uploads.append(upload)
        await self.record({"path": request.path, "upload": upload, "at": time.monotonic()})
        answer = self.transcripts.pop(0) if self.transcripts else "hello from the recording"
        if isinstance(answer, int):
            return web.json_response(
                {"error": {"message": "transcription unavailable", "type": "server_error"}},
                status=answer,
            )
        return web.json_response({"text": answer})

    async def _speech(self, request: web.Request) -> web.Response:
        """OpenAI's `POST /v1/audio/speech` (JSON in, audio bytes out), as the SDK calls it."""
        body = await request.json()
        body["auth"] = request.headers.get("Authorization", "")
        self.speech_requests.append(body)
        await self.record({"path": request.path, "speech": body, "at": time.monotonic()})
        if self.speech_failures:
            return web.json_response(
                {"error": {"message": "speech unavailable", "type": "server_error"}},
                status=self.speech_failures.pop(0),
            )
        data, mime = speech_audio(str(body.get("input", "")), body.get("response_format"))
        return web.Response(body=data, content_type=mime)

    async def _next(self, request: web.Request, api: str) -> tuple[dict[str, Any], dict[str, Any]]:
        body = await request.json()
        if self.script:
            action = self.script.pop(0)
        elif self.responder is not None:
            action = self.responder(api, body)
        else:
            action = {}
        if action.get("tool_calls") and _tools_forbidden(body):
            action = {k: v for k, v in action.items() if k != "tool_calls"}
            action.setdefault("text", self.default_text)
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
        body, action = await self._next(request, "anthropic")
        headers = {"request-id": f"req_{next(_ids)}", **action.get("headers", {})}
        if action.get("status"):
            status = int(action["status"])
            kind = action.get("error_type") or ANTHROPIC_ERROR_TYPES.get(status, "api_error")
            error = {"type": "error", "error": {"type": kind, "message": f"fake {status}"}}
            return web.json_response(error, status=status, headers=headers)
        calls = _calls(action)
        text = str(action.get("text", "" if calls else self.default_text))
        message_id, model = f"msg_{next(_ids)}", body.get("model", "fake")
        usage_out = max(1, len(text.split()))
        stop_reason = "tool_use" if calls else "end_turn"
        if not body.get("stream"):
            content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
            content += [
                {
                    "type": "tool_use",
                    "id": c["id"],
                    "name": c["name"],
                    "input": json.loads(c["raw"]),
                }
                for c in calls
            ]
            return web.json_response(
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": content,
                    "stop_reason": stop_reason,
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
        index = 0
        if text:
            await event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            for i, piece in enumerate(words(text)):
                await self._pace(i, action)
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
                    error = {"type": "error", "error": {"type": kind, "message": "boom"}}
                    await event("error", error)
                    return resp
            await event("content_block_stop", {"type": "content_block_stop", "index": 0})
            index = 1
        for call in calls:
            block = {"type": "tool_use", "id": call["id"], "name": call["name"], "input": {}}
            await event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
            for piece in _fragments(call["raw"]):
                await event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    },
                )
            await event("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        await event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": usage_out},
            },
        )
        await event("message_stop", {"type": "message_stop"})
        self.completed_at.append(time.monotonic())
        return resp

    # --- OpenAI ---------------------------------------------------------------------------

    def _openai_error(self, action: dict[str, Any]) -> web.Response:
        status = int(action["status"])
        code = action.get("error_type") or OPENAI_ERROR_CODES.get(status, "server_error")
        body = {"error": {"message": f"fake {status}", "type": code, "param": None, "code": code}}
        headers = {"x-request-id": f"req_{next(_ids)}", **action.get("headers", {})}
        return web.json_response(body, status=status, headers=headers)

    async def _openai_chat(self, request: web.Request) -> web.StreamResponse:
        body, action = await self._next(request, "openai-completions")
        if action.get("status"):
            return self._openai_error(action)
        calls = _calls(action)
        text = str(action.get("text", "" if calls else self.default_text))
        cid, model, now = f"chatcmpl-{next(_ids)}", body.get("model"), int(time.time())
        usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        if self.realistic_usage:  # prompt tokens ≈ request size / 4, like a real provider
            prompt = max(1, len(json.dumps(body)) // 4)
            usage = {"prompt_tokens": prompt, "completion_tokens": 2, "total_tokens": prompt + 2}
        if action.get("usage"):
            usage = dict(action["usage"])
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
        for i, piece in enumerate(words(text) if text else ()):
            await self._pace(i, action)
            await data(chunk({"content": piece}))
            if i == 0 and action.get("stream_error"):
                await data({"error": {"message": "boom", "type": str(action["stream_error"])}})
                return resp
        for n, call in enumerate(calls):
            head = {"name": call["name"], "arguments": ""}
            first = {"index": n, "id": call["id"], "type": "function", "function": head}
            await data(chunk({"tool_calls": [first]}))
            for piece in _fragments(call["raw"]):
                await data(chunk({"tool_calls": [{"index": n, "function": {"arguments": piece}}]}))
        await data(chunk({}, "tool_calls" if calls else "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            await data({**chunk({}), "choices": [], "usage": usage})
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        self.completed_at.append(time.monotonic())
        return resp

    async def _openai_responses(self, request: web.Request) -> web.StreamResponse:
        body, action = await self._next(request, "openai-responses")
        if action.get("status"):
            return self._openai_error(action)
        calls = _calls(action)
        text = str(action.get("text", "" if calls else self.default_text))
        rid, model = f"resp_{next(_ids)}", body.get("model")
        item = {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
        call_items = [
            {
                "type": "function_call",
                "id": f"fc_{next(_ids)}",
                "call_id": c["id"],
                "name": c["name"],
                "arguments": c["raw"],
                "status": "completed",
            }
            for c in calls
        ]
        output = ([item] if text else []) + call_items
        full = {
            "id": rid,
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "model": model,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": action.get("responses_usage")
            or {
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

        await event(
            {
                "type": "response.created",
                "response": {**full, "status": "in_progress", "output": []},
            }
        )
        index = 0
        if text:
            part = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
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
            index = 1
        for call_item in call_items:
            started = {**call_item, "arguments": "", "status": "in_progress"}
            await event(
                {"type": "response.output_item.added", "output_index": index, "item": started}
            )
            for piece in _fragments(str(call_item["arguments"])):
                await event(
                    {
                        "type": "response.function_call_arguments.delta",
                        "item_id": call_item["id"],
                        "output_index": index,
                        "delta": piece,
                    }
                )
            await event(
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": call_item["id"],
                    "output_index": index,
                    "name": call_item["name"],
                    "arguments": call_item["arguments"],
                }
            )
            await event(
                {"type": "response.output_item.done", "output_index": index, "item": call_item}
            )
            index += 1
        await event({"type": "response.completed", "response": full})
        self.completed_at.append(time.monotonic())
        return resp

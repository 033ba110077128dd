"""A fake Gemini API on 127.0.0.1: the REST endpoints the `google-genai` SDK calls.

`POST /{version}/models/{model}:streamGenerateContent?alt=sse` (Server-Sent Events) and
`:generateContent` (one JSON answer). Scripted like tests/fakes/llm.py: each request pops the
next action from `script`; with the script empty it answers `default_text`. Action keys:
  text           reply text (streamed word by word)
  function_call  {"name": ..., "args": {...}, "id"?: ...} or a list of them: the model calls tools
  signature      thought signature (base64) attached to each function call part
  status         answer with this HTTP status and a Google-shaped error body
  error_status   override the canonical status (e.g. "INVALID_ARGUMENT"); error_reason adds an
                 ErrorInfo reason (e.g. "API_KEY_INVALID"); retry_delay adds RetryInfo ("7s")
  finish         the finishReason of the last chunk (default STOP), e.g. "SAFETY"
  block          promptFeedback.blockReason: the prompt itself was blocked
  delay          seconds to wait before answering
Every request is recorded (path, query, headers, body) for the tests to inspect.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

from aiohttp import web

from tests.fakes.base import LoopbackServer
from tests.fakes.llm import words

GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_ids = itertools.count(1)


class FakeGemini(LoopbackServer):
    def __init__(self, default_text: str = "ok") -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{version}/models/{call:.+}", self._handle)
        super().__init__(app)
        self.script: list[dict[str, Any]] = []
        self.default_text = default_text

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model, _, method = request.match_info["call"].partition(":")
        action = self.script.pop(0) if self.script else {}
        await self.record(
            {
                "path": request.path,
                "query": dict(request.query),
                "model": model,
                "method": method,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": body,
                "at": time.monotonic(),
            }
        )
        if action.get("delay"):
            await asyncio.sleep(float(action["delay"]))
        if action.get("status"):
            return self._error(action)
        chunks = self._chunks(model, action)
        if method == "generateContent":
            return web.json_response(self._merge(chunks))
        if method != "streamGenerateContent" or request.query.get("alt") != "sse":
            return web.json_response(
                {"error": {"code": 404, "message": f"no {method}", "status": "NOT_FOUND"}},
                status=404,
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for chunk in chunks:
            await resp.write(f"data: {json.dumps(chunk)}\r\n\r\n".encode())
        await resp.write_eof()
        return resp

    def _error(self, action: dict[str, Any]) -> web.Response:
        code = int(action["status"])
        status = action.get("error_status") or GOOGLE_STATUS.get(code, "UNKNOWN")
        details: list[dict[str, Any]] = []
        if action.get("error_reason"):
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": action["error_reason"],
                    "domain": "googleapis.com",
                }
            )
        if action.get("retry_delay"):
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": action["retry_delay"],
                }
            )
        error = {"code": code, "message": f"fake {code}", "status": status}
        if details:
            error["details"] = details
        return web.json_response({"error": error}, status=code, headers=action.get("headers"))

    def _chunks(self, model: str, action: dict[str, Any]) -> list[dict[str, Any]]:
        response_id = f"resp-{next(_ids)}"
        usage = {"promptTokenCount": 4, "candidatesTokenCount": 3, "totalTokenCount": 7}
        if action.get("block"):
            return [
                {
                    "promptFeedback": {"blockReason": action["block"]},
                    "usageMetadata": usage,
                    "modelVersion": model,
                    "responseId": response_id,
                }
            ]
        calls = action.get("function_call")
        parts: list[list[dict[str, Any]]]
        if calls:
            calls = calls if isinstance(calls, list) else [calls]
            call_parts = []
            for call in calls:
                part: dict[str, Any] = {"functionCall": call}
                if action.get("signature"):
                    part["thoughtSignature"] = action["signature"]
                call_parts.append(part)
            parts = [call_parts]
        else:
            text = str(action.get("text", self.default_text))
            parts = [[{"text": piece}] for piece in words(text)]
        chunks: list[dict[str, Any]] = [
            {
                "candidates": [{"content": {"role": "model", "parts": p}, "index": 0}],
                "modelVersion": model,
                "responseId": response_id,
            }
            for p in parts
        ]
        chunks[-1]["candidates"][0]["finishReason"] = action.get("finish", "STOP")
        chunks[-1]["usageMetadata"] = usage
        return chunks

    @staticmethod
    def _merge(chunks: list[dict[str, Any]]) -> dict[str, Any]:
        merged = dict(chunks[-1])
        if "candidates" in merged:
            parts = [p for c in chunks for p in c["candidates"][0]["content"]["parts"]]
            candidate = dict(merged["candidates"][0])
            candidate["content"] = {"role": "model", "parts": parts}
            merged["candidates"] = [candidate]
        return merged

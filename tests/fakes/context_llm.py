"""A fake Anthropic Messages API with a real context window, real-looking usage and caching.

* `input_tokens` ≈ request body bytes / 4 (like the reference's observation rig), so usage
  grows with the history exactly as a provider's would.
* A request above `window` tokens is refused as Anthropic does (HTTP 400,
  `invalid_request_error`, "prompt is too long: N tokens > M maximum").
* Prompt caching: a request's prefix up to each `cache_control` breakpoint (cache markers
  themselves ignored) is remembered; the next request that repeats a remembered prefix
  byte-for-byte reports it as `cache_read_input_tokens`, the newly marked part as
  `cache_creation_input_tokens`, and only the rest as `input_tokens`.
* Summary requests (system prompt of the compaction summariser) are answered with a
  checkpoint that keeps every line containing `FACT:` from the conversation and the
  previous summary, which is how a good summariser keeps facts from turn 1.
* `fail_summaries` makes summary requests fail (HTTP 500); `hang_summaries` makes them
  wait until released (for restart-mid-compaction tests); `overflow_next` refuses the next
  N ordinary requests as too long whatever their size.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from typing import Any

from aiohttp import web

from tests.fakes.base import LoopbackServer

SUMMARY_MARKER = "You write checkpoint summaries"
_ids = itertools.count(1)


def _strip_cache(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_cache(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip_cache(v) for v in value]
    return value


def _system_text(body: dict[str, Any]) -> str:
    system = body.get("system")
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return "".join(b.get("text", "") for b in system if isinstance(b, dict))
    return ""


def _all_text(body: dict[str, Any]) -> str:
    out: list[str] = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out += [b.get("text", "") for b in content if isinstance(b, dict)]
    return "\n".join(out)


def tokens_of(data: bytes | str) -> int:
    return max(1, len(data) // 4)


class ContextFakeLLM(LoopbackServer):
    def __init__(self, window: int = 8_000, reply: str = "noted") -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/messages", self._messages)
        super().__init__(app)
        self.window = window
        self.reply = reply
        self.fail_summaries = False
        self.hang_summaries: asyncio.Event | None = None
        self.overflow_next = 0
        self.cached: set[str] = set()
        self.turns: list[dict[str, Any]] = []  # ordinary requests: tokens + usage reported
        self.summaries: list[dict[str, Any]] = []
        self.refused: list[int] = []  # token counts of requests refused as too long

    def _cache_usage(self, body: dict[str, Any], total: int) -> tuple[int, int]:
        """(cache read, cache write) for this body; remembers its marked prefixes."""
        stripped = _strip_cache(body)
        segments: list[Any] = []
        marks: list[int] = []
        system = body.get("system")
        if isinstance(system, list):
            segments.append(_strip_cache(system))
            if any(isinstance(b, dict) and "cache_control" in b for b in system):
                marks.append(len(segments))
        elif system:
            segments.append(system)
        for original, clean in zip(
            body.get("messages", []), stripped.get("messages", []), strict=True
        ):
            segments.append(clean)
            content = original.get("content")
            if isinstance(content, list) and any(
                isinstance(b, dict) and "cache_control" in b for b in content
            ):
                marks.append(len(segments))
        read = written = 0
        for mark in marks:
            prefix = json.dumps(segments[:mark], sort_keys=True, separators=(",", ":"))
            size = tokens_of(prefix)
            if prefix in self.cached:
                read = max(read, size)
            else:
                self.cached.add(prefix)
                written = max(written, size)
        written = max(0, written - read)
        read = min(read, total)
        written = min(written, total - read)
        return read, written

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw)
        total = tokens_of(raw)
        is_summary = SUMMARY_MARKER in _system_text(body)
        await self.record(
            {"path": request.path, "body": body, "tokens": total, "summary": is_summary}
        )
        if total > self.window or (self.overflow_next and not is_summary):
            if self.overflow_next and not is_summary:
                self.overflow_next -= 1
            self.refused.append(total)
            error = {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "message": f"prompt is too long: {total} tokens > {self.window} maximum",
                },
            }
            return web.json_response(error, status=400)
        if is_summary:
            if self.hang_summaries is not None:
                await self.hang_summaries.wait()
            if self.fail_summaries:
                error = {"type": "error", "error": {"type": "api_error", "message": "boom"}}
                return web.json_response(error, status=500)
            text = self._summary(_all_text(body))
        else:
            text = self.reply
        read, written = self._cache_usage(body, total)
        usage = {
            "input_tokens": total - read - written,
            "output_tokens": tokens_of(text),
            "cache_read_input_tokens": read,
            "cache_creation_input_tokens": written,
        }
        (self.summaries if is_summary else self.turns).append(
            {"tokens": total, "usage": usage, "body": body}
        )
        return await self._stream(request, body, text, usage)

    @staticmethod
    def _summary(conversation: str) -> str:
        facts = sorted(set(re.findall(r"FACT:[^\n<]*", conversation)))
        lines = ["## Goal and user preferences", "Keep chatting.", "## Decisions", "- none"]
        lines += ["## Open TODOs", "- none", "## Constraints/Rules", "- none"]
        lines += ["## Pending user asks", "- none", "## Exact identifiers"]
        lines += [f"- {fact.strip()}" for fact in facts] or ["- none"]
        return "\n".join(lines)

    async def _stream(
        self, request: web.Request, body: dict[str, Any], text: str, usage: dict[str, int]
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        async def event(name: str, data: dict[str, Any]) -> None:
            await resp.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())

        start_usage = {k: v for k, v in usage.items() if k != "output_tokens"} | {
            "output_tokens": 1
        }
        await event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": f"msg_{next(_ids)}",
                    "type": "message",
                    "role": "assistant",
                    "model": body.get("model", "fake"),
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
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
        await event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": text},
            },
        )
        await event("content_block_stop", {"type": "content_block_stop", "index": 0})
        await event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
        await event("message_stop", {"type": "message_stop"})
        return resp

"""OpenAI-compatible endpoints: /v1/models, /v1/chat/completions, /v1/responses.

Off by default (`gateway.http.endpoints.chatCompletions.enabled`, `.responses.enabled`), as
in the reference. The `model` field names an agent (`openclaw`, `openclaw/default`,
`openclaw/<id>`, `openclaw:<id>`, `agent:<id>`), never a provider model; each request is an
ordinary agent turn through the same runner as `chat.send`. Authenticated with the gateway
token or password as a bearer secret; a correct secret is never throttled.

Sessions: stateless by default (a fresh session per request, with the request's earlier
messages given to the agent as context); an OpenAI `user` string maps to a stable session so
an app can continue one conversation.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from gateway.agents import roster as rv
from gateway.agents.runner import QueueFull, RunEvent, SubmitRequest
from gateway.agents.service import AgentService
from gateway.auth import secrets_equal
from gateway.config.models import HttpEndpoint, OpenClawConfig
from gateway.http_api.common import HttpError, address_of, bearer, read_json
from gateway.http_api.runs import TurnWatch
from gateway.runtime import Gateway

log = logging.getLogger("gateway/http")

MAX_BODY_BYTES = 20 * 1024 * 1024  # the reference's limit for these endpoints
CHANNEL = "openai-http"


# --- access ---------------------------------------------------------------------------------------


async def authorize(gateway: Gateway, request: Request) -> None:
    """Bearer gateway secret, throttled per client address like the WebSocket `connect`:
    a throttled address waits `hold_s` before its secret is checked, then the right secret
    passes and a wrong one gets 429 (gateway/auth.py FailedAuthLimiter)."""
    auth = gateway.settings.auth
    if auth.mode == "none":
        return
    expected = (auth.password if auth.mode == "password" else auth.token) or ""
    address = address_of(gateway, request)
    if gateway.limiter.throttled_for(address) > 0:
        await asyncio.sleep(gateway.limiter.hold_s)
    given = bearer(request)
    if given is not None and expected and secrets_equal(given, expected):
        gateway.limiter.success(address)
        return
    throttled = gateway.limiter.failure(address)
    if throttled > 0:
        raise HttpError(
            429,
            "too many failed authentication attempts; try again later",
            "rate_limit_error",
            {"Retry-After": str(max(1, int(throttled + 0.999)))},
        )
    what = "missing" if given is None else "invalid"
    raise HttpError(
        401,
        f"{what} bearer token: send Authorization: Bearer <gateway {auth.mode}>",
        "authentication_error",
        {"WWW-Authenticate": "Bearer"},
    )


def agent_for_model(config: OpenClawConfig, model: str | None) -> str:
    """The agent a `model` value targets (404 for an agent that does not exist)."""
    default = rv.default_agent_id(config)
    raw = (model or "openclaw").strip()
    for prefix in ("openclaw/", "openclaw:", "agent:"):
        if raw.lower().startswith(prefix):
            wanted = raw[len(prefix) :].strip().lower()
            break
    else:
        if raw.lower() == "openclaw":
            return default
        raise HttpError(
            404,
            f"model {raw!r} is not an agent target; use openclaw, openclaw/default or "
            "openclaw/<agentId> (GET /v1/models lists them)",
            "model_not_found",
        )
    if wanted in ("", "default"):
        return default
    if wanted not in rv.roster(config).agent_ids:
        raise HttpError(404, f"unknown agent {wanted!r} in model {raw!r}", "model_not_found")
    return wanted


def model_ids(config: OpenClawConfig) -> list[str]:
    ids = ["openclaw", "openclaw/default"]
    ids += [f"openclaw/{agent_id}" for agent_id in rv.roster(config).agent_ids]
    return list(dict.fromkeys(ids))


def _endpoint(gateway: Gateway, name: str) -> HttpEndpoint:
    endpoints = gateway.loaded.config.gateway.http.endpoints
    endpoint: HttpEndpoint = getattr(endpoints, name)
    if not endpoint.enabled:
        raise HttpError(404, "Not Found", "not_found")
    return endpoint


def _service(gateway: Gateway) -> AgentService:
    svc: AgentService | None = gateway.extensions.get("agents")
    if svc is None or gateway.phase == "draining":
        raise HttpError(503, "the gateway is not accepting turns right now", "unavailable")
    return svc


# --- request → turn -------------------------------------------------------------------------------


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") in ("text", "input_text", "output_text"):
                parts.append(str(part.get("text", "")))
            elif isinstance(part, dict) and part.get("type") in ("image_url", "input_image"):
                parts.append("[image omitted]")
        return "\n".join(p for p in parts if p)
    return ""


def compose_prompt(messages: Sequence[tuple[str, str]]) -> str:
    """One user turn from an OpenAI message list: the last user message, with what came
    before it (system instructions and earlier turns) given as labelled context."""
    if not messages:
        raise HttpError(400, "messages must contain at least one message")
    last_user = max((i for i, (role, _) in enumerate(messages) if role == "user"), default=None)
    if last_user is None:
        raise HttpError(400, "messages must contain a user message")
    current = messages[last_user][1]
    if not current.strip():
        raise HttpError(400, f"messages[{last_user}].content must not be empty")
    earlier = [(r, t) for r, t in messages[:last_user] if t.strip()]
    if not earlier:
        return current
    labels = {"system": "System", "developer": "System", "user": "User", "assistant": "Assistant"}
    lines = [f"{labels.get(role, role.title())}: {text}" for role, text in earlier]
    return "[Conversation so far]\n" + "\n\n".join(lines) + "\n\n[Current message]\n" + current


def _session_key(agent_id: str, user: Any, request: Request) -> str:
    explicit = request.headers.get("x-openclaw-session-key")
    if explicit:
        key = explicit.strip().lower()
        if key.split(":")[0] in ("subagent", "cron", "acp") or ":cron:" in key:
            raise HttpError(400, "x-openclaw-session-key uses a reserved namespace")
        return key if key.startswith("agent:") else f"agent:{agent_id}:{key}"
    if isinstance(user, str) and user.strip():
        digest = hashlib.sha256(user.strip().encode()).hexdigest()[:24]
        return f"agent:{agent_id}:openai-user:{digest}"
    return f"agent:{agent_id}:openai:{uuid.uuid4().hex}"


def _submit(
    gateway: Gateway, endpoint: HttpEndpoint, agent_id: str, key: str, text: str
) -> TurnWatch:
    svc = _service(gateway)
    request = SubmitRequest(
        session_key=key,
        text=text,
        agent_id=agent_id,
        run_id=f"openai-{uuid.uuid4().hex[:16]}",
        channel=CHANNEL,
        chat_type="direct",
        metadata={"senderIsOwner": endpoint.sender_is_owner},
    )
    try:
        return TurnWatch(svc, request)
    except QueueFull as exc:
        raise HttpError(429, str(exc), "rate_limit_error", {"Retry-After": "2"}) from exc


def _failure_text(event: RunEvent) -> str:
    return event.text or f"the agent run ended: {event.state}"


# --- /v1/models -----------------------------------------------------------------------------------


def _model_object(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "openclaw"}


def routes(gateway: Gateway) -> list[BaseRoute]:
    async def guarded(request: Request, handler: Any) -> Response:
        try:
            response: Response = await handler(request)
            return response
        except HttpError as exc:
            return exc.response()

    async def list_models(request: Request) -> Response:
        async def run(request: Request) -> Response:
            _any_enabled(gateway)
            await authorize(gateway, request)
            ids = model_ids(gateway.loaded.config)
            return JSONResponse({"object": "list", "data": [_model_object(i) for i in ids]})

        return await guarded(request, run)

    async def get_model(request: Request) -> Response:
        async def run(request: Request) -> Response:
            _any_enabled(gateway)
            await authorize(gateway, request)
            wanted = request.path_params["model_id"]
            if wanted not in model_ids(gateway.loaded.config):
                raise HttpError(404, f"model {wanted!r} not found", "model_not_found")
            return JSONResponse(_model_object(wanted))

        return await guarded(request, run)

    async def chat(request: Request) -> Response:
        return await guarded(request, lambda r: chat_completions(gateway, r))

    async def responses(request: Request) -> Response:
        return await guarded(request, lambda r: create_response(gateway, r))

    return [
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/responses", responses, methods=["POST"]),
    ]


def _any_enabled(gateway: Gateway) -> None:
    endpoints = gateway.loaded.config.gateway.http.endpoints
    if not (endpoints.chat_completions.enabled or endpoints.responses.enabled):
        raise HttpError(404, "Not Found", "not_found")


# --- /v1/chat/completions -------------------------------------------------------------------------


async def chat_completions(gateway: Gateway, request: Request) -> Response:
    endpoint = _endpoint(gateway, "chat_completions")
    await authorize(gateway, request)
    body = await read_json(request, endpoint.max_body_bytes or MAX_BODY_BYTES)
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list):
        raise HttpError(400, "messages must be an array of {role, content} objects")
    messages: list[tuple[str, str]] = []
    for index, item in enumerate(raw_messages):
        if not isinstance(item, dict) or not isinstance(item.get("role"), str):
            raise HttpError(400, f"messages[{index}] must be an object with a string role")
        messages.append((item["role"], _content_text(item.get("content"))))
    if body.get("tools"):
        raise HttpError(
            400,
            "client-side tools are not supported by this gateway; the agent uses its own tools",
        )
    config = gateway.loaded.config
    model = body.get("model")
    agent_id = agent_for_model(config, model if isinstance(model, str) else None)
    key = _session_key(agent_id, body.get("user"), request)
    text = compose_prompt(messages)
    watch = _submit(gateway, endpoint, agent_id, key, text)
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    model_name = model if isinstance(model, str) and model else "openclaw"
    if body.get("stream"):
        options = body.get("stream_options")
        usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return StreamingResponse(
            _chat_stream(watch, request, completion_id, created, model_name, usage),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    answer = ""
    async for piece in _until_disconnect(watch, request):
        answer += piece.text
        if piece.final is not None:
            if piece.final.state != "final":
                raise HttpError(502, _failure_text(piece.final), "agent_error")
            answer = piece.final.text if not piece.final.silent else ""
    return JSONResponse(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer},
                    "finish_reason": "stop",
                }
            ],
            "usage": await _usage(watch),
        }
    )


async def _until_disconnect(watch: TurnWatch, request: Request) -> AsyncIterator[Any]:
    """The run's pieces; a client that goes away aborts the run (nothing keeps running)."""
    finished = False
    try:
        async for piece in watch.pieces():
            if piece.final is not None:
                finished = True
            yield piece
    finally:
        if not finished:
            watch.abort()


async def _usage(watch: TurnWatch) -> dict[str, int]:
    """Token counts the provider reported for this run (zeros when it reported none)."""
    result = await watch.handle.wait()
    usage = result.outcome.usage if result.outcome is not None else None
    prompt = (usage.input + usage.cache_read + usage.cache_write) if usage else 0
    completion = usage.output if usage else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _sse(data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode()


async def _chat_stream(
    watch: TurnWatch,
    request: Request,
    completion_id: str,
    created: int,
    model: str,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    yield chunk({"role": "assistant", "content": ""})
    async for piece in _until_disconnect(watch, request):
        if piece.text:
            yield chunk({"content": piece.text})
        if piece.final is None:
            continue
        if piece.final.state != "final":
            yield _sse({"error": {"message": _failure_text(piece.final), "type": "agent_error"}})
            yield _sse("[DONE]")
            return
        if watch.diverged:
            yield _sse(
                {
                    "error": {
                        "message": "the answer restarted on another model after text was sent",
                        "type": "agent_error",
                    }
                }
            )
            yield _sse("[DONE]")
            return
        yield chunk({}, "stop")
        if include_usage:
            yield _sse(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": await _usage(watch),
                }
            )
        yield _sse("[DONE]")


# --- /v1/responses --------------------------------------------------------------------------------


def _responses_input(body: dict[str, Any]) -> list[tuple[str, str]]:
    raw = body.get("input")
    messages: list[tuple[str, str]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions.strip():
        messages.append(("system", instructions))
    if isinstance(raw, str):
        messages.append(("user", raw))
        return messages
    if not isinstance(raw, list):
        raise HttpError(400, "input must be a string or an array of input items")
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise HttpError(400, f"input[{index}] must be an object")
        kind = item.get("type", "message")
        if kind != "message":
            raise HttpError(400, f"input[{index}].type {kind!r} is not supported")
        role = item.get("role")
        if not isinstance(role, str):
            raise HttpError(400, f"input[{index}].role must be a string")
        messages.append((role, _content_text(item.get("content"))))
    return messages


async def create_response(gateway: Gateway, request: Request) -> Response:
    endpoint = _endpoint(gateway, "responses")
    await authorize(gateway, request)
    body = await read_json(request, endpoint.max_body_bytes or MAX_BODY_BYTES)
    if body.get("tools"):
        raise HttpError(
            400,
            "client-side tools are not supported by this gateway; the agent uses its own tools",
        )
    config = gateway.loaded.config
    model = body.get("model")
    agent_id = agent_for_model(config, model if isinstance(model, str) else None)
    key = _session_key(agent_id, body.get("user"), request)
    watch = _submit(gateway, endpoint, agent_id, key, compose_prompt(_responses_input(body)))
    response_id = f"resp_{uuid.uuid4().hex[:24]}"
    item_id = f"msg_{uuid.uuid4().hex[:24]}"
    model_name = model if isinstance(model, str) and model else "openclaw"
    created = int(time.time())
    if body.get("stream"):
        return StreamingResponse(
            _responses_stream(watch, request, response_id, item_id, model_name, created),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    answer = ""
    async for piece in _until_disconnect(watch, request):
        if piece.final is not None:
            if piece.final.state != "final":
                raise HttpError(502, _failure_text(piece.final), "agent_error")
            answer = "" if piece.final.silent else piece.final.text
    return JSONResponse(
        _response_object(
            response_id, item_id, model_name, created, "completed", answer, await _usage(watch)
        )
    )


def _response_object(
    response_id: str,
    item_id: str,
    model: str,
    created: int,
    status: str,
    text: str,
    usage: dict[str, int] | None,
) -> dict[str, Any]:
    output = []
    if status == "completed":
        output.append(
            {
                "id": item_id,
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        )
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "model": model,
        "output": output,
        "parallel_tool_calls": False,
        "tool_choice": "auto",
        "tools": [],
        "usage": None
        if usage is None
        else {
            "input_tokens": usage["prompt_tokens"],
            "output_tokens": usage["completion_tokens"],
            "total_tokens": usage["total_tokens"],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }


async def _responses_stream(
    watch: TurnWatch,
    request: Request,
    response_id: str,
    item_id: str,
    model: str,
    created: int,
) -> AsyncIterator[bytes]:
    seq = 0

    def event(kind: str, **fields: Any) -> bytes:
        nonlocal seq
        seq += 1
        payload = {"type": kind, "sequence_number": seq, **fields}
        return f"event: {kind}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()

    pending = _response_object(response_id, item_id, model, created, "in_progress", "", None)
    yield event("response.created", response=pending)
    yield event(
        "response.output_item.added",
        output_index=0,
        item={
            "id": item_id,
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        },
    )
    yield event(
        "response.content_part.added",
        item_id=item_id,
        output_index=0,
        content_index=0,
        part={"type": "output_text", "text": "", "annotations": []},
    )
    text = ""
    async for piece in _until_disconnect(watch, request):
        if piece.text:
            text += piece.text
            yield event(
                "response.output_text.delta",
                item_id=item_id,
                output_index=0,
                content_index=0,
                delta=piece.text,
                logprobs=[],
            )
        if piece.final is None:
            continue
        if piece.final.state != "final" or watch.diverged:
            failed = _response_object(response_id, item_id, model, created, "failed", "", None)
            failed["error"] = {"code": "server_error", "message": _failure_text(piece.final)}
            yield event("response.failed", response=failed)
            return
        yield event(
            "response.output_text.done",
            item_id=item_id,
            output_index=0,
            content_index=0,
            text=text,
            logprobs=[],
        )
        usage = await _usage(watch)
        done = _response_object(response_id, item_id, model, created, "completed", text, usage)
        yield event("response.completed", response=done)

"""Gemini through the real google-genai SDK against the fake Gemini API (tests/fakes/gemini.py)."""

from __future__ import annotations

import base64
import socket
from typing import Any

import pytest

from providers.classify import Failure, classify
from providers.endpoints import provider_settings
from providers.google_api import GoogleProvider
from providers.types import (
    Completion,
    Image,
    Message,
    Text,
    TextDelta,
    ToolCall,
    ToolResult,
    ToolSpec,
    TurnRequest,
)
from tests.fakes.gemini import FakeGemini

CLOCK = ToolSpec(
    "clock",
    "The current time in a time zone.",
    {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
)


def provider(fake: FakeGemini, **env: str) -> GoogleProvider:
    settings = provider_settings(
        "google",
        api=None,
        base_url=fake.url + "/v1beta",
        api_key=None,
        timeout_s=5,
        env=env or {"GEMINI_API_KEY": "AIza-gemini-test"},
    )
    return GoogleProvider(settings)


async def run(p: GoogleProvider, request: TurnRequest) -> tuple[list[str], Completion]:
    deltas: list[str] = []
    done: Completion | None = None
    async for event in p.stream(request):
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        else:
            done = event
    assert done is not None
    return deltas, done


async def failure_of(p: GoogleProvider, request: TurnRequest) -> Failure:
    try:
        await run(p, request)
    except Exception as exc:
        return classify(exc)
    raise AssertionError("expected a failure")


def ask(text: str = "hi", **extra: Any) -> TurnRequest:
    return TurnRequest(model="gemini-test", messages=(Message.text("user", text),), **extra)


async def test_streams_text_with_the_system_instruction(gemini_fake: FakeGemini) -> None:
    gemini_fake.script.append({"text": "hello from the fake"})
    p = provider(gemini_fake)
    try:
        deltas, done = await run(p, ask("hi there", system="You are terse."))
    finally:
        await p.close()
    assert deltas == ["hello ", "from ", "the ", "fake"]
    assert done.text == "hello from the fake" and done.stop_reason == "stop"
    assert done.usage.input_tokens == 4 and done.usage.output_tokens == 3
    assert done.response_id and done.response_id.startswith("resp-")
    (req,) = gemini_fake.requests
    assert req["path"] == "/v1beta/models/gemini-test:streamGenerateContent"
    assert req["query"] == {"alt": "sse"}
    assert req["headers"]["x-goog-api-key"] == "AIza-gemini-test"
    body = req["body"]
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hi there"}]}]
    assert body["systemInstruction"]["parts"] == [{"text": "You are terse."}]
    assert body["generationConfig"]["maxOutputTokens"] == 8192


async def test_google_api_key_is_the_second_choice(gemini_fake: FakeGemini) -> None:
    p = provider(gemini_fake, GOOGLE_API_KEY="AIza-google")
    try:
        await run(p, ask())
    finally:
        await p.close()
    assert gemini_fake.requests[0]["headers"]["x-goog-api-key"] == "AIza-google"
    both = provider_settings(
        "google", api=None, base_url=None, api_key=None, timeout_s=None,
        env={"GOOGLE_API_KEY": "AIza-google", "GEMINI_API_KEY": "AIza-gemini"},
    )  # fmt: skip
    assert both.api_key == "AIza-gemini" and both.api == "google-generative-ai"


async def test_tool_call_round_trip(gemini_fake: FakeGemini) -> None:
    signature = base64.b64encode(b"opaque-thought").decode()
    gemini_fake.script += [
        {"function_call": {"name": "clock", "args": {"tz": "UTC"}}, "signature": signature},
        {"text": "It is noon."},
    ]
    p = provider(gemini_fake)
    try:
        first_deltas, first = await run(p, ask("what time is it?", tools=(CLOCK,)))
        (call,) = first.tool_calls
        assert first.stop_reason == "toolUse" and first_deltas == []
        assert call.name == "clock" and dict(call.arguments) == {"tz": "UTC"} and call.id
        history = (
            Message.text("user", "what time is it?"),
            Message("assistant", first.content),
            Message("user", (ToolResult(call.id, "clock", "12:00"),)),
        )
        _, second = await run(p, TurnRequest(model="gemini-test", messages=history, tools=(CLOCK,)))
    finally:
        await p.close()
    assert second.text == "It is noon." and second.stop_reason == "stop"
    declared = gemini_fake.bodies[0]["tools"][0]["functionDeclarations"][0]
    assert declared["name"] == "clock" and declared["description"] == CLOCK.description
    schema = declared.get("parametersJsonSchema") or declared.get("parameters_json_schema")
    assert schema == CLOCK.parameters
    model_turn, response_turn = gemini_fake.bodies[1]["contents"][1:]
    assert model_turn["role"] == "model"
    (call_part,) = model_turn["parts"]
    assert call_part["functionCall"] == {"name": "clock", "args": {"tz": "UTC"}}
    assert call_part["thoughtSignature"] == signature  # sent back as received
    assert response_turn["role"] == "user"
    assert response_turn["parts"] == [
        {"functionResponse": {"name": "clock", "response": {"output": "12:00"}}}
    ]


async def test_calls_from_another_model_and_error_results(gemini_fake: FakeGemini) -> None:
    # A tool call made by another provider (fallback mid-session) has no thought signature.
    history = (
        Message.text("user", "list files"),
        Message("assistant", (Text("Looking."), ToolCall("toolu_1", "ls", {"path": "."}))),
        Message("user", (ToolResult("toolu_1", "ls", "denied", is_error=True),)),
    )
    p = provider(gemini_fake)
    try:
        await run(p, TurnRequest(model="gemini-test", messages=history))
    finally:
        await p.close()
    model_turn, response_turn = gemini_fake.bodies[0]["contents"][1:]
    text_part, call_part = model_turn["parts"]
    assert text_part == {"text": "Looking."}
    assert call_part["functionCall"] == {"id": "toolu_1", "name": "ls", "args": {"path": "."}}
    assert base64.b64decode(call_part["thoughtSignature"]) == b"skip_thought_signature_validator"
    assert response_turn["parts"][0]["functionResponse"] == {
        "id": "toolu_1",
        "name": "ls",
        "response": {"error": "denied"},
    }


async def test_image_block_goes_inline(gemini_fake: FakeGemini) -> None:
    png = b"\x89PNG\r\n\x1a\nfake-image-bytes"
    message = Message("user", (Text("what is this?"), Image("image/png", png)))
    p = provider(gemini_fake)
    try:
        _, done = await run(p, TurnRequest(model="gemini-test", messages=(message,)))
    finally:
        await p.close()
    assert done.text == "from gemini"
    parts = gemini_fake.bodies[0]["contents"][0]["parts"]
    assert parts[0] == {"text": "what is this?"}
    # The SDK writes some fields in proto snake_case, which the API accepts like camelCase.
    inline = parts[1].get("inlineData") or parts[1].get("inline_data")
    assert (inline.get("mimeType") or inline.get("mime_type")) == "image/png"
    assert base64.b64decode(inline["data"]) == png


@pytest.mark.parametrize(
    ("action", "reason", "status"),
    [
        ({"status": 429, "retry_delay": "7s"}, "rate_limit", 429),
        ({"status": 503}, "overloaded", 503),
        ({"status": 500}, "server", 500),
        ({"status": 400}, "bad_request", 400),
        ({"status": 400, "error_reason": "API_KEY_INVALID"}, "auth", 400),
        ({"status": 401}, "auth", 401),
        ({"status": 403}, "auth", 403),
        ({"status": 404}, "not_found", 404),
    ],
)
async def test_http_errors_are_classified(
    gemini_fake: FakeGemini, action: dict[str, Any], reason: str, status: int
) -> None:
    gemini_fake.script.append(action)
    p = provider(gemini_fake)
    try:
        failure = await failure_of(p, ask())
    finally:
        await p.close()
    assert (failure.reason, failure.status) == (reason, status)
    assert failure.error_type == (
        {429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE", 400: "INVALID_ARGUMENT"}.get(status)
        or failure.error_type
    )
    if status == 429:
        assert failure.retry_after_s == 7.0
    assert len(gemini_fake.requests) == 1  # the SDK's own retries stay off


@pytest.mark.parametrize("action", [{"finish": "SAFETY"}, {"block": "PROHIBITED_CONTENT"}])
async def test_safety_blocks_are_content_filter(
    gemini_fake: FakeGemini, action: dict[str, Any]
) -> None:
    gemini_fake.script.append(action)
    p = provider(gemini_fake)
    try:
        failure = await failure_of(p, ask())
    finally:
        await p.close()
    assert failure.reason == "content_filter"


async def test_refused_connection_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    settings = provider_settings(
        "google", api=None, base_url=f"http://127.0.0.1:{port}/v1beta", api_key="AIza-x",
        timeout_s=5, env={},
    )  # fmt: skip
    p = GoogleProvider(settings)
    try:
        failure = await failure_of(p, ask())
    finally:
        await p.close()
    assert failure.reason == "timeout" and failure.retryable

"""Tool calls through the real SDKs: each API's streamed calls → neutral blocks, and back."""

from __future__ import annotations

from typing import Any

import pytest

from providers.anthropic_api import AnthropicProvider
from providers.openai_api import OpenAIProvider
from providers.types import (
    Api,
    Completion,
    Message,
    ProviderSettings,
    Text,
    TextDelta,
    ToolCall,
    ToolResult,
    ToolSpec,
    TurnRequest,
)
from tests.fakes.llm import FakeLLM, tool_names, tool_results

APIS: list[Api] = ["anthropic-messages", "openai-completions", "openai-responses"]
SPEC = ToolSpec(
    "write",
    "Write a file.",
    {
        "type": "object",
        "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["path", "content"],
    },
)


def provider(api: Api, fake: FakeLLM) -> AnthropicProvider | OpenAIProvider:
    if api == "anthropic-messages":
        return AnthropicProvider(ProviderSettings("anthropic", api, fake.url, "sk-ant-test"))
    return OpenAIProvider(ProviderSettings("openai", api, fake.url + "/v1", "sk-test"))


async def complete(
    p: AnthropicProvider | OpenAIProvider, request: TurnRequest
) -> tuple[list[str], Completion]:
    deltas: list[str] = []
    done: Completion | None = None
    async for event in p.stream(request):
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        else:
            done = event
    assert done is not None
    return deltas, done


@pytest.fixture
async def fake() -> Any:
    server = await FakeLLM(default_text="done").start()
    yield server
    await server.stop()


@pytest.mark.parametrize("api", APIS)
async def test_streamed_tool_calls_become_neutral_blocks(api: Api, fake: FakeLLM) -> None:
    long_text = "line one\n" * 20  # many argument fragments
    fake.script.append(
        {
            "text": "Writing it now.",
            "tool_calls": [
                {"id": "c1", "name": "write", "arguments": {"path": "a.md", "content": long_text}},
                {"id": "c2", "name": "read", "arguments": {"path": "a.md"}},
            ],
        }
    )
    p = provider(api, fake)
    try:
        request = TurnRequest("m", (Message.text("user", "go"),), system="sys", tools=(SPEC,))
        deltas, done = await complete(p, request)
    finally:
        await p.close()
    assert "".join(deltas) == "Writing it now."
    assert done.stop_reason == "toolUse"
    assert done.content[0] == Text("Writing it now.")
    assert done.tool_calls == (
        ToolCall("c1", "write", {"path": "a.md", "content": long_text}),
        ToolCall("c2", "read", {"path": "a.md"}),
    )
    assert tool_names(fake.bodies[0]) == ["write"]


@pytest.mark.parametrize("api", APIS)
async def test_invalid_argument_json_is_kept_raw(api: Api, fake: FakeLLM) -> None:
    fake.script.append({"tool_calls": [{"id": "c1", "name": "write", "arguments": '{"path": '}]})
    p = provider(api, fake)
    try:
        _, done = await complete(p, TurnRequest("m", (Message.text("user", "go"),), tools=(SPEC,)))
    finally:
        await p.close()
    assert done.tool_calls == (ToolCall("c1", "write", {}, raw_arguments='{"path": '),)
    assert done.stop_reason == "toolUse"


@pytest.mark.parametrize("api", APIS)
async def test_calls_and_results_are_replayed_in_each_apis_shape(api: Api, fake: FakeLLM) -> None:
    history = (
        Message.text("user", "note it"),
        Message("assistant", (Text("ok"), ToolCall("c1", "write", {"path": "n.md"}))),
        Message(
            "user",
            (
                ToolResult("c1", "write", "wrote 3 bytes"),
                Text("and?"),
            ),
        ),
    )
    p = provider(api, fake)
    try:
        _, done = await complete(p, TurnRequest("m", history, tools=(SPEC,)))
    finally:
        await p.close()
    assert done.text == "done" and done.stop_reason == "stop"
    body = fake.bodies[0]
    if api == "anthropic-messages":
        assert body["messages"][1]["content"] == [
            {"type": "text", "text": "ok"},
            {"type": "tool_use", "id": "c1", "name": "write", "input": {"path": "n.md"}},
        ]
        # The newest message also carries a prompt-caching breakpoint (providers/caching.py).
        assert body["messages"][2]["content"] == [
            {
                "type": "tool_result",
                "tool_use_id": "c1",
                "content": "wrote 3 bytes",
                "is_error": False,
            },
            {"type": "text", "text": "and?", "cache_control": {"type": "ephemeral"}},
        ]
        assert body["tools"][0]["input_schema"] == SPEC.parameters
    elif api == "openai-completions":
        assert body["messages"][1] == {
            "role": "assistant",
            "content": "ok",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "write", "arguments": '{"path": "n.md"}'},
                }
            ],
        }
        assert body["messages"][2] == {
            "role": "tool",
            "tool_call_id": "c1",
            "content": "wrote 3 bytes",
        }
        assert body["messages"][3] == {"role": "user", "content": "and?"}
    else:
        assert body["input"][1:] == [
            {"role": "assistant", "content": "ok"},
            {
                "type": "function_call",
                "call_id": "c1",
                "name": "write",
                "arguments": '{"path": "n.md"}',
            },
            {"type": "function_call_output", "call_id": "c1", "output": "wrote 3 bytes"},
            {"role": "user", "content": "and?"},
        ]


@pytest.mark.parametrize("api", APIS)
async def test_tool_choice_none_gets_text(api: Api, fake: FakeLLM) -> None:
    fake.responder = lambda _api, body: (
        {"tool_calls": [{"name": "write", "arguments": {}}]} if not tool_results(body) else {}
    )
    p = provider(api, fake)
    try:
        request = TurnRequest("m", (Message.text("user", "go"),), tools=(SPEC,), tool_choice="none")
        _, done = await complete(p, request)
    finally:
        await p.close()
    assert done.tool_calls == () and done.text == "done"


@pytest.mark.parametrize("api", ["openai-completions", "openai-responses"])
async def test_cached_prompt_tokens_are_counted_apart(api: Api, fake: FakeLLM) -> None:
    """OpenAI counts cached tokens inside the prompt; `Usage` keeps them apart (as Anthropic)."""
    fake.script.append(
        {
            "text": "ok",
            "usage": {
                "prompt_tokens": 1000,
                "completion_tokens": 5,
                "total_tokens": 1005,
                "prompt_tokens_details": {"cached_tokens": 800},
            },
            "responses_usage": {
                "input_tokens": 1000,
                "output_tokens": 5,
                "total_tokens": 1005,
                "input_tokens_details": {"cached_tokens": 800},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        }
    )
    p = provider(api, fake)
    try:
        _, done = await complete(p, TurnRequest("m", (Message.text("user", "go"),)))
    finally:
        await p.close()
    assert (done.usage.input_tokens, done.usage.cache_read, done.usage.output_tokens) == (
        200,
        800,
        5,
    )

"""The tool loop end to end: real gateway, real SDK clients, fake model servers on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import tests.agents.loop_tools as lt
from gateway.agents import tools as tool_modules
from gateway.agents.loop import ABORTED_TEXT
from gateway.agents.model_turn import AFTER_TOOLS_TEXT
from tests.agents.loop_tools import write_then_read
from tests.fakes.llm import FakeLLM, tool_names, tool_results
from tests.harness import Client, chat, chat_events, connected, final_text, live_gateway

APIS = ["anthropic-messages", "openai-completions", "openai-responses"]


def config(fake: FakeLLM, api: str = "openai-completions", **defaults: Any) -> dict[str, Any]:
    provider = "anthropic" if api == "anthropic-messages" else "openai"
    base = fake.url if provider == "anthropic" else fake.url + "/v1"
    entry: dict[str, Any] = {"baseUrl": base, "apiKey": "sk-test", "api": api}
    return {
        "models": {"providers": {provider: entry}},
        "agents": {"defaults": {"model": {"primary": f"{provider}/m-test"}, **defaults}},
    }


@pytest.fixture(autouse=True)
def _fast_failover(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWGATE_FAILOVER_TIME_SCALE", "0.001")


@pytest.fixture(autouse=True)
def _test_tools() -> Iterator[None]:
    with lt.registered():
        yield


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    server = FakeLLM(default_text="done")
    await server.start()
    yield server
    await server.stop()


def agent_events(client: Client, run_id: str) -> list[dict[str, Any]]:
    return [
        e["payload"]
        for e in client.events
        if e.get("event") == "agent" and e["payload"]["runId"] == run_id
    ]


@pytest.mark.parametrize("api", APIS)
async def test_write_then_read_round_trip(tmp_path: Path, fake: FakeLLM, api: str) -> None:
    fake.responder = write_then_read
    async with (
        live_gateway(tmp_path, config(fake, api)) as live,
        connected(live, caps=["tool-events"]) as client,
    ):
        events = await chat(client, "write a note to notes/todo.md, then read it back", key="r1")
        assert final_text(events) == "The note says: buy milk"
        history = await client.call("chat.history", {"sessionKey": "main"})
        listed = await client.call("sessions.list", {})
        tool_stream = [e["data"] for e in agent_events(client, "r1") if e["stream"] == "tool"]
        seqs = [e["seq"] for e in agent_events(client, "r1")] + [e["seq"] for e in events]
    assert (tmp_path / "workspace" / "notes" / "todo.md").read_text() == "buy milk"
    assert listed["sessions"][0]["messageCount"] == 6  # tool steps counted, index written once
    assert len(fake.requests) == 3
    assert "test_write" in tool_names(fake.bodies[0])
    # The tools the session may use are listed in the system prompt.
    system = json.dumps(fake.bodies[0])
    assert "- test_write:" in system and "No tools are available" not in system

    roles = [m["role"] for m in history["messages"]]
    assert roles == ["user", "assistant", "toolResult", "assistant", "toolResult", "assistant"]
    first = history["messages"][1]
    assert first["stopReason"] == "toolUse"
    assert first["content"][0] == {"type": "text", "text": "Writing it."}
    call = first["content"][1]
    assert call["type"] == "toolCall" and call["name"] == "test_write"
    assert call["arguments"] == {"path": "notes/todo.md", "content": "buy milk"}
    result = history["messages"][2]
    assert result["toolCallId"] == call["id"] and result["toolName"] == "test_write"
    assert result["content"] == [{"type": "text", "text": "wrote 8 bytes to notes/todo.md"}]
    assert result["isError"] is False and result["details"] == {"bytes": 8}
    assert history["messages"][4]["content"] == [{"type": "text", "text": "buy milk"}]
    assert history["messages"][5]["stopReason"] == "stop"

    phases = [(d["phase"], d["name"]) for d in tool_stream]
    assert phases == [
        ("start", "test_write"),
        ("result", "test_write"),
        ("start", "test_read"),
        ("result", "test_read"),
    ]
    assert tool_stream[0]["args"] == {"path": "notes/todo.md", "content": "buy milk"}
    assert tool_stream[3]["result"]["content"] == [{"type": "text", "text": "buy milk"}]
    assert tool_stream[3]["isError"] is False
    assert sorted(seqs) == list(range(1, len(seqs) + 1))  # one counter per run


async def test_tool_events_only_reach_clients_with_the_cap(tmp_path: Path, fake: FakeLLM) -> None:
    fake.responder = write_then_read
    async with live_gateway(tmp_path, config(fake)) as live, connected(live) as client:
        events = await chat(client, "go", key="plain")
        assert final_text(events) == "The note says: buy milk"
        # Lifecycle, assistant and item events go to every reader; tool events (arguments and
        # results) only with the cap.
        streams = [e["stream"] for e in agent_events(client, "plain")]
        assert "tool" not in streams and "item" in streams, streams
        assert set(streams) <= {"lifecycle", "assistant", "item"}, streams


async def test_history_with_tools_is_replayed_on_the_next_turn(
    tmp_path: Path, fake: FakeLLM
) -> None:
    fake.responder = write_then_read
    async with live_gateway(tmp_path, config(fake)) as live, connected(live) as client:
        await chat(client, "note it")
        fake.responder = None
        assert final_text(await chat(client, "thanks")) == "done"
    messages = fake.bodies[-1]["messages"]
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert messages[2]["tool_calls"][0]["function"]["name"] == "test_write"
    assert messages[3]["tool_call_id"] == messages[2]["tool_calls"][0]["id"]
    assert messages[5]["content"] == "buy milk"


async def test_bad_calls_become_error_results_and_the_turn_continues(
    tmp_path: Path, fake: FakeLLM
) -> None:
    fake.script.append(
        {
            "tool_calls": [
                {"id": "u1", "name": "no_such_tool", "arguments": {}},
                {"id": "b1", "name": "test_write", "arguments": '{"path": "x'},
                {"id": "w1", "name": "test_write", "arguments": {"path": 3}},
            ]
        }
    )
    fake.script.append({"text": "sorry"})
    async with (
        live_gateway(tmp_path, config(fake, "anthropic-messages")) as live,
        connected(live, caps=["tool-events"]) as client,
    ):
        events = await chat(client, "do things", key="bad")
        assert final_text(events) == "sorry"
        items = [e["data"] for e in agent_events(client, "bad") if e["stream"] == "item"]
    results = tool_results(fake.bodies[1])
    assert [r["id"] for r in results] == ["u1", "b1", "w1"]
    assert all(r["is_error"] is True for r in results)
    unknown, bad_json, bad_type = (json.loads(r["text"]) for r in results)
    assert unknown["status"] == "error" and "not found" in unknown["error"]
    assert "not a JSON object" in bad_json["error"] and bad_json["received"] == '{"path": "x'
    assert "path" in bad_type["error"] and "content" in bad_type["error"]
    ends = [i for i in items if i["phase"] == "end"]
    assert [i["status"] for i in ends] == ["blocked", "blocked", "failed"]
    assert not (tmp_path / "workspace" / "x").exists()


async def test_calls_of_one_response_run_concurrently_results_in_call_order(
    tmp_path: Path, fake: FakeLLM
) -> None:
    # Each call waits until both are waiting: this only finishes if they run at once.
    calls = [
        {"id": "a", "name": "test_barrier", "arguments": {"name": "pair"}},
        {"id": "b", "name": "test_barrier", "arguments": {"name": "pair"}},
        {"id": "c", "name": "test_read", "arguments": {"path": "missing.md"}},
    ]
    fake.script += [{"tool_calls": calls}, {"text": "both passed"}]
    async with live_gateway(tmp_path, config(fake)) as live, connected(live) as client:
        assert final_text(await chat(client, "sync")) == "both passed"
    results = tool_results(fake.bodies[1])
    assert [r["id"] for r in results] == ["a", "b", "c"]
    assert all(r["text"].startswith("pair passed") for r in results[:2])
    assert "does not exist" in results[2]["text"]


async def test_abort_cancels_a_running_tool(tmp_path: Path, fake: FakeLLM) -> None:
    lt.STARTED.pop("abortme", None)
    call = {"id": "s1", "name": "test_sleep", "arguments": {"name": "abortme", "seconds": 60}}
    fake.script.append({"tool_calls": [call]})
    async with live_gateway(tmp_path, config(fake)) as live, connected(live) as client:
        ack = await client.call(
            "chat.send", {"sessionKey": "main", "message": "sleep", "idempotencyKey": "ab-1"}
        )
        started = lt.STARTED.setdefault("abortme", asyncio.Event())
        await asyncio.wait_for(started.wait(), 10)
        assert (await client.call("chat.abort", {"sessionKey": "main"}))["aborted"] is True
        events = await chat_events(client, ack["runId"])
        assert events[-1]["state"] == "aborted"
        assert "abortme" in lt.CANCELLED
        history = await client.call("chat.history", {"sessionKey": "main"})
        aborted = history["messages"][-1]
        assert aborted["role"] == "toolResult" and aborted["toolCallId"] == "s1"
        assert aborted["isError"] is True and aborted["content"][0]["text"] == ABORTED_TEXT
        # The session keeps working, and the model sees the aborted result.
        assert final_text(await chat(client, "next")) == "done"
    replay = fake.bodies[-1]["messages"]
    assert replay[-2] == {"role": "tool", "tool_call_id": "s1", "content": ABORTED_TEXT}


async def test_iteration_cap_forces_a_final_answer(tmp_path: Path, fake: FakeLLM) -> None:
    fake.responder = lambda _api, _body: {
        "tool_calls": [{"name": "test_read", "arguments": {"path": "loop.md"}}]
    }
    async with (
        live_gateway(tmp_path, config(fake, maxToolIterations=2)) as live,
        connected(live) as client,
    ):
        assert final_text(await chat(client, "loop forever")) == "done"
    assert len(fake.requests) == 3
    assert [b.get("tool_choice") for b in fake.bodies] == [None, None, "none"]


def two_models(primary: FakeLLM, fallback: FakeLLM) -> dict[str, Any]:
    return {
        "models": {
            "providers": {
                "openai": {"baseUrl": primary.url + "/v1", "apiKey": "sk-a"},
                "anthropic": {"baseUrl": fallback.url, "apiKey": "sk-b"},
            }
        },
        "agents": {
            "defaults": {"model": {"primary": "openai/gpt-a", "fallbacks": ["anthropic/claude-b"]}}
        },
    }


@pytest.mark.parametrize("side_effects", [False, True])
async def test_fallback_only_before_side_effects(
    tmp_path: Path, fake: FakeLLM, side_effects: bool
) -> None:
    fallback = FakeLLM(default_text="from the fallback")
    await fallback.start()
    try:
        call = (
            {"name": "test_write", "arguments": {"path": "a.md", "content": "x"}}
            if side_effects
            else {"name": "test_read", "arguments": {"path": "a.md"}}
        )
        fake.script += [{"tool_calls": [call]}, {"status": 401}]
        async with (
            live_gateway(tmp_path, two_models(fake, fallback)) as live,
            connected(live) as client,
        ):
            events = await chat(client, "go")
    finally:
        await fallback.stop()
    if side_effects:
        assert events[-1]["state"] == "error"
        assert AFTER_TOOLS_TEXT in events[-1]["errorMessage"]
        assert fallback.requests == []
    else:
        assert final_text(events) == "from the fallback"
        # The fallback model got the whole tool step, not a replay of the tool.
        assert "a.md does not exist" in tool_results(fallback.bodies[0])[0]["text"]
        assert len(fake.requests) == 2


def _extra_tools() -> list[str]:
    return sorted({*tool_modules.load(), *lt.NAMES})


@pytest.mark.parametrize("name", _extra_tools())
async def test_every_registered_tool_answers_an_empty_call(
    tmp_path: Path, fake: FakeLLM, name: str
) -> None:
    """Whatever tools exist, a call with no arguments yields a result and the turn goes on."""
    if name == "test_sleep":
        arguments: dict[str, Any] = {"seconds": 0}
    elif name == "test_barrier":
        arguments = {"name": "solo", "parties": 1}
    else:
        arguments = {}
    fake.script += [{"tool_calls": [{"id": "t", "name": name, "arguments": arguments}]}]
    async with live_gateway(tmp_path, config(fake)) as live, connected(live) as client:
        assert final_text(await chat(client, f"try {name}", timeout=60)) == "done"
    results = tool_results(fake.bodies[1])
    assert [r["id"] for r in results] == ["t"] and results[0]["text"]

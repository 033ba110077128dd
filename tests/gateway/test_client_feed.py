"""Run events as the official clients follow them (gateway/ws/feed.py): when `lifecycle start`
goes out, who gets tool steps, `session.tool`, `chat.send_timing`; and `tools.effective`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.llm import FakeLLM, tool_results
from tests.harness import Client, chat, connected, final_text, live_gateway


def read_first(_api: str, body: dict[str, Any]) -> dict[str, Any]:
    """A model that reads a workspace file with the real `read` tool, then quotes it."""
    results = tool_results(body)
    if not results:
        return {"tool_calls": [{"name": "read", "arguments": {"path": "notes.txt"}}]}
    return {"text": f"The file says: {results[0]['text'].strip()}"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    server = FakeLLM(default_text="done")
    await server.start()
    yield server
    await server.stop()


def config(fake: FakeLLM, **tools: Any) -> dict[str, Any]:
    return {
        "models": {"providers": {"openai": {"baseUrl": fake.url + "/v1", "apiKey": "sk-test"}}},
        "agents": {"defaults": {"model": {"primary": "openai/m-test"}}},
        "tools": tools,
    }


def of_run(client: Client, event: str, run_id: str) -> list[dict[str, Any]]:
    return [
        e["payload"]
        for e in client.events
        if e.get("event") == event and e["payload"].get("runId") == run_id
    ]


async def drain(
    client: Client, until: str, run_id: str, phase: str | None = None, timeout: float = 10.0
) -> None:
    """Read events until `until` (with `phase`, if given) arrived for this run."""

    def arrived() -> bool:
        return any(
            phase is None or e.get("phase", e.get("data", {}).get("phase")) == phase
            for e in of_run(client, until, run_id)
        )

    async with asyncio.timeout(timeout):
        while not arrived():
            client.events.append(await client.recv(timeout))


async def settle(client: Client) -> None:
    """Read what is left, so that closing the socket is not stuck behind unread frames."""
    while True:
        try:
            client.events.append(await client.recv(0.2))
        except TimeoutError:
            return


async def test_lifecycle_start_leads_and_tool_steps_reach_only_the_tool_cap(
    tmp_path: Path, fake: FakeLLM
) -> None:
    (tmp_path / "workspace").mkdir()
    (tmp_path / "workspace" / "notes.txt").write_text("water the plants\n")
    fake.responder = read_first
    async with (
        live_gateway(tmp_path, config(fake)) as live,
        connected(live, caps=["tool-events"]) as sender,
        connected(live, scopes=["operator.read"]) as bystander,
        connected(live, scopes=["operator.read"]) as watcher,
    ):
        await watcher.call("sessions.messages.subscribe", {"key": "agent:main:main"})
        events = await chat(sender, "what do my notes say?", key="r1")
        assert final_text(events) == "The file says: water the plants"
        await drain(bystander, "chat", "r1")
        await drain(watcher, "session.tool", "r1", "result")
        await drain(sender, "chat.send_timing", "r1", "dispatch-completed")
        for client in (sender, bystander, watcher):
            await settle(client)

    agent = of_run(sender, "agent", "r1")
    # The run's start goes out before its first step (here a tool call, no text yet).
    assert (agent[0]["stream"], agent[0]["data"]["phase"]) == ("lifecycle", "start")
    assert agent[1]["stream"] == "item" and agent[1]["data"]["name"] == "read"
    steps = [(a["stream"], a["data"]["phase"]) for a in agent if a["stream"] == "tool"]
    assert steps == [("tool", "start"), ("tool", "result")]
    # One counter per run across `agent` and `chat` events.
    seqs = [a["seq"] for a in agent] + [c["seq"] for c in events]
    assert sorted(seqs) == list(range(1, len(seqs) + 1)), seqs

    # A reader without the cap follows the run (start, items, end) but not tool arguments.
    seen = of_run(bystander, "agent", "r1")
    assert (seen[0]["stream"], seen[0]["data"]["phase"]) == ("lifecycle", "start")
    assert {a["stream"] for a in seen} == {"lifecycle", "item", "assistant"}, seen
    # The session's message subscriber gets the tool steps as `session.tool`.
    tool = of_run(watcher, "session.tool", "r1")
    assert [t["data"]["phase"] for t in tool] == ["start", "result"]
    assert "water the plants" in tool[1]["data"]["result"]["content"][0]["text"]

    # chat.send_timing: the sender's phases, in order; nobody else gets them.
    timing = of_run(sender, "chat.send_timing", "r1")
    assert [t["phase"] for t in timing] == [
        "dispatch-started",
        "agent-run-started",
        "first-assistant-event",
        "dispatch-completed",
    ]
    for t in timing:
        assert t["sessionKey"] == "agent:main:main" and t["agentId"] == "main"
        assert t["ackToPhaseMs"] >= 0 and t["receivedToPhaseMs"] >= t["ackToPhaseMs"]
    assert [t["receivedToPhaseMs"] for t in timing] == sorted(
        t["receivedToPhaseMs"] for t in timing
    )
    assert of_run(bystander, "chat.send_timing", "r1") == []


async def test_tools_effective_follows_the_tool_policy(tmp_path: Path, fake: FakeLLM) -> None:
    async with live_gateway(tmp_path, config(fake)) as live, connected(live) as client:
        full = await client.call("tools.effective", {"sessionKey": "agent:main:main"})
        hello_methods = client.hello["features"]["methods"]  # type: ignore[attr-defined]
    assert "tools.effective" in hello_methods
    assert full["agentId"] == "main" and full["profile"] == "full"
    names = [t["id"] for g in full["groups"] for t in g["tools"]]
    assert {"read", "write", "exec"} <= set(names), names
    entry = next(t for g in full["groups"] for t in g["tools"] if t["id"] == "read")
    assert entry["source"] == "core" and entry["rawDescription"].startswith(entry["description"])
    assert "notices" not in full

    async with (
        live_gateway(tmp_path, config(fake, profile="minimal")) as live,
        connected(live) as client,
    ):
        minimal = await client.call("tools.effective", {"sessionKey": "main"})
        refused = await client.request("tools.effective", {})
    assert minimal["profile"] == "minimal"
    names = [t["id"] for g in minimal["groups"] for t in g["tools"]]
    assert "read" not in names and "exec" not in names, names
    assert refused["ok"] is False and "sessionKey" in refused["error"]["message"]

"""A conversation that never overflows: the real gateway, real Anthropic SDK, a fake API
with a real context window (tests/fakes/context_llm.py), over a real WebSocket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.agents.compaction import TRUNCATED_NOTICE
from tests.fakes.context_llm import ContextFakeLLM
from tests.harness import (
    TOKEN,
    chat,
    chat_events,
    connected,
    final_text,
    free_port,
    gateway_env,
    live_gateway,
    start_process,
    stop_process,
    wait_healthy,
)

FACT = "FACT: the user's cat is called Zorro-7731"
PRICES = {"input": 1, "output": 5, "cacheRead": 0.1, "cacheWrite": 1.25}


@pytest.fixture
async def fake() -> AsyncIterator[ContextFakeLLM]:
    server = ContextFakeLLM(window=8_000)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def config(fake: ContextFakeLLM, window: int = 8_000, **defaults: Any) -> dict[str, Any]:
    model = {"id": "claude-test", "contextWindow": window, "cost": PRICES}
    return {
        "models": {
            "providers": {
                "anthropic": {"baseUrl": fake.url, "apiKey": "sk-ant-test", "models": [model]}
            }
        },
        "agents": {"defaults": {"model": {"primary": "anthropic/claude-test"}, **defaults}},
    }


def message(turn: int, size: int = 2048) -> str:
    head = f"turn {turn}: " + (FACT + ". " if turn == 1 else "")
    filler = " ".join(f"word{turn}-{i}" for i in range(size))
    return (head + filler)[:size]


def request_text(body: dict[str, Any]) -> str:
    return json.dumps(body["messages"])


async def test_300_turns_of_2kb_in_an_8k_window_never_overflow(
    tmp_path: Path, fake: ContextFakeLLM
) -> None:
    async with live_gateway(tmp_path, config(fake)) as live, connected(live) as client:
        for turn in range(1, 301):
            events = await chat(client, message(turn), timeout=20)
            assert events[-1]["state"] == "final", (turn, events[-1])
        sessions = await client.call("sessions.list", {})
    row = sessions["sessions"][0]
    assert fake.refused == []  # the provider never had to refuse a request
    # Besides the 300 turns, one silent memory-flush request per compaction cycle at most.
    flushes = [t for t in fake.turns if "Pre-compaction memory flush" in request_text(t["body"])]
    assert len(fake.turns) - len(flushes) == 300
    assert len(flushes) <= row["compactionCount"] + 1
    assert max(t["tokens"] for t in fake.turns) <= 8_000 - 1_000  # window - reserve/2
    assert row["compactionCount"] >= 20
    assert row["compactionCount"] == len(
        [e for e in _events(tmp_path) if e["type"] == "compaction"]
    )
    assert row["contextTokens"] == 8_000
    # The fact from turn 1 still reaches the model, through the summaries.
    assert FACT in request_text(fake.turns[-1]["body"])
    assert "turn 1:" not in request_text(fake.turns[-1]["body"])
    # Summary requests themselves fit the window too.
    assert all(s["tokens"] <= 8_000 for s in fake.summaries)


def _events(state: Path) -> list[dict[str, Any]]:
    files = list((state / "agents" / "main" / "sessions").glob("*.jsonl"))
    assert len(files) == 1
    return [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]


async def test_provider_overflow_compacts_and_retries_the_same_turn_without_fallback(
    tmp_path: Path, fake: ContextFakeLLM
) -> None:
    cfg = config(fake, window=200_000)
    cfg["agents"]["defaults"]["model"]["fallbacks"] = ["anthropic/claude-other"]
    async with live_gateway(tmp_path, cfg) as live, connected(live) as client:
        for turn in range(1, 6):
            await chat(client, message(turn, 600))
        fake.overflow_next = 1
        events = await chat(client, "what is my cat called?")
        sessions = await client.call("sessions.list", {})
    assert final_text(events) == "noted"
    assert len(fake.refused) == 1
    ordinary = [r for r in fake.requests if not r["summary"]]
    assert all(r["body"]["model"] == "claude-test" for r in fake.requests)  # no fallback
    assert ordinary[-1]["body"]["messages"][-1]["content"][0]["text"] == "what is my cat called?"
    assert FACT in request_text(ordinary[-1]["body"])  # kept by the summary
    assert sessions["sessions"][0]["compactionCount"] == 1


async def test_overflow_that_persists_is_truncated_and_still_answered(
    tmp_path: Path, fake: ContextFakeLLM
) -> None:
    async with (
        live_gateway(tmp_path, config(fake, window=200_000)) as live,
        connected(live) as client,
    ):
        for turn in range(1, 6):
            await chat(client, message(turn, 600))
        fake.overflow_next = 2
        events = await chat(client, "still there?")
        after = await chat(client, "and now?")
    assert events[-1]["state"] == "final"
    assert final_text(after) == "noted"
    assert len(fake.refused) == 2


async def test_failing_summaries_truncate_and_tell_the_user_once_per_compaction(
    tmp_path: Path, fake: ContextFakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAWGATE_FAILOVER_TIME_SCALE", "0.001")  # the 500s are retried first
    fake.fail_summaries = True
    texts: list[str] = []
    async with live_gateway(tmp_path, config(fake)) as live, connected(live) as client:
        for turn in range(1, 31):
            events = await chat(client, message(turn), timeout=20)
            assert events[-1]["state"] == "final", (turn, events[-1])
            texts.append(final_text(events))
        sessions = await client.call("sessions.list", {})
    told = [t for t in texts if TRUNCATED_NOTICE in t]
    count = sessions["sessions"][0]["compactionCount"]
    assert count >= 2 and len(told) == count
    assert all(t.count(TRUNCATED_NOTICE) == 1 for t in told)
    assert fake.refused == []
    assert max(t["tokens"] for t in fake.turns) <= 7_000


async def test_compact_command_and_sessions_compact(tmp_path: Path, fake: ContextFakeLLM) -> None:
    async with (
        live_gateway(tmp_path, config(fake, window=100_000)) as live,
        connected(live) as client,
    ):
        for turn in range(1, 8):
            await chat(client, message(turn, 1500))
        reply = final_text(await chat(client, "/compact keep the cat"))
        status = final_text(await chat(client, "/status"))
        await chat(client, message(9, 1500))
        await chat(client, message(10, 1500))
        rpc = await client.call("sessions.compact", {"key": "main"})
        sessions = await client.call("sessions.list", {})
    assert reply.startswith("⚙️ Compacted (") and "• Context" in reply
    assert "keep the cat" in request_text(fake.summaries[0]["body"])
    assert "Compactions: 1" in status and "Context:" in status
    assert rpc["ok"] is True and rpc["compacted"] is True
    assert FACT in rpc["result"]["summary"]
    assert rpc["result"]["tokensAfter"] < rpc["result"]["tokensBefore"]
    assert sessions["sessions"][0]["compactionCount"] == 2


async def _launch(state: Path) -> tuple[Any, int]:
    port = free_port()
    proc = start_process(
        ["--allow-unconfigured", "--port", str(port), "--bind", "loopback"],
        gateway_env(state, OPENCLAW_GATEWAY_TOKEN=TOKEN),
    )
    await asyncio.to_thread(wait_healthy, port, proc)
    return proc, port


class _Port:
    def __init__(self, port: int) -> None:
        self.ws = f"ws://127.0.0.1:{port}/"


async def test_a_crash_mid_compaction_leaves_a_readable_session(
    tmp_path: Path, fake: ContextFakeLLM
) -> None:
    (tmp_path / "openclaw.json").write_text(json.dumps(config(fake)))
    fake.hang_summaries = asyncio.Event()
    proc, port = await _launch(tmp_path)
    turn = 0
    try:
        async with connected(_Port(port)) as client:  # type: ignore[arg-type]
            for turn in range(1, 40):
                ack = await client.call(
                    "chat.send",
                    {"sessionKey": "main", "message": message(turn), "idempotencyKey": f"t{turn}"},
                )
                answered = asyncio.ensure_future(chat_events(client, ack["runId"], timeout=20))
                summarising = asyncio.ensure_future(
                    fake.wait_until(lambda reqs: any(r["summary"] for r in reqs), timeout=20)
                )
                done, _ = await asyncio.wait(
                    {answered, summarising}, return_when=asyncio.FIRST_COMPLETED
                )
                if summarising in done:
                    answered.cancel()
                    break
                summarising.cancel()
    finally:
        await asyncio.to_thread(stop_process, proc, 9)  # SIGKILL while the summary hangs
    assert any(r["summary"] for r in fake.requests)
    fake.hang_summaries.set()
    proc, port = await _launch(tmp_path)
    try:
        async with connected(_Port(port)) as client:  # type: ignore[arg-type]
            history = await client.call("chat.history", {"sessionKey": "main"})
            events = await chat(client, "after the crash", timeout=20)
            sessions = await client.call("sessions.list", {})
    finally:
        await asyncio.to_thread(stop_process, proc)
    assert len(history["messages"]) >= 2 * (turn - 1)
    assert final_text(events) == "noted"
    assert sessions["sessions"][0]["compactionCount"] >= 1
    assert fake.refused == []


async def test_usage_totals_cost_and_cache_match_the_per_turn_records(
    tmp_path: Path, fake: ContextFakeLLM
) -> None:
    async with (
        live_gateway(tmp_path, config(fake, window=100_000)) as live,
        connected(live) as client,
    ):
        for turn in range(1, 7):
            await chat(client, message(turn, 800))
        cost = await client.call("usage.cost", {"days": 7})
        sessions = await client.call("sessions.usage", {"agentScope": "all"})
        series = await client.call("sessions.usage.timeseries", {"key": "main"})
        logs = await client.call("sessions.usage.logs", {"key": "main", "limit": 4})
        usage_text = final_text(await chat(client, "/usage cost"))
        await chat(client, "/new")
        await chat(client, message(7, 800))
        after_new = await client.call("usage.cost", {"days": 7})
        status = await client.call("usage.status", {})
        bad = await client.request("usage.cost", {"startDate": "2026-01-01"})
    records = [
        e["message"]["usage"]
        for e in _all_events(tmp_path)
        if e["type"] == "message"
        and e["message"]["role"] == "assistant"
        and "usage" in e["message"]
    ]
    first_six = records[:6]
    totals = cost["totals"]
    assert totals["input"] == sum(u["input"] for u in first_six)
    assert totals["cacheRead"] == sum(u["cacheRead"] for u in first_six) > 0
    assert totals["totalCost"] == pytest.approx(
        sum(u["cost"]["total"] for u in first_six), abs=1e-5
    )
    assert len(cost["daily"]) == 7 and cost["daily"][-1]["totalTokens"] == totals["totalTokens"]
    assert cost["byModel"][0]["model"] == "claude-test"
    assert sessions["aggregates"]["sessionCount"] == 1
    assert sessions["sessions"][0]["usage"]["messageCounts"]["user"] == 6
    assert len(series["points"]) == 6
    assert series["points"][-1]["cumulativeCost"] == pytest.approx(totals["totalCost"], abs=1e-5)
    assert len(logs["logs"]) == 4
    assert usage_text.startswith("💸 Usage cost") and f"${totals['totalCost']:.4f}" in usage_text
    # Totals survive /new: the archived transcript still counts.
    assert after_new["totals"]["input"] == sum(u["input"] for u in records)
    assert status["providers"] == []
    assert bad["ok"] is False and "together" in bad["error"]["message"]


def _all_events(state: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted((state / "agents" / "main" / "sessions").glob("*.jsonl")):
        out += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    out.sort(key=lambda e: e["timestamp"])
    return out

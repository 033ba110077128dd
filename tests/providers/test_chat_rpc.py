"""chat.*, sessions.*, agents.list and models.list over a real WebSocket to the real app."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.fakes.llm import FakeLLM
from tests.harness import chat, chat_events, connected, final_text, live_gateway


def config(fake: FakeLLM, **defaults: Any) -> dict[str, Any]:
    return {
        "models": {"providers": {"openai": {"baseUrl": fake.url + "/v1", "apiKey": "sk-test"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-test"}, **defaults}},
    }


async def test_idempotency_key_starts_one_run(tmp_path: Path, openai_fake: FakeLLM) -> None:
    async with live_gateway(tmp_path, config(openai_fake)) as live, connected(live) as client:
        params = {"sessionKey": "main", "message": "once", "idempotencyKey": "same"}
        first = await client.call("chat.send", params)
        again = await client.call("chat.send", params)
        assert first == again == {"runId": "same", "status": "started"}
        events = await chat_events(client, "same")
        assert final_text(events) == "from openai"
    assert len(openai_fake.requests) == 1


async def test_abort_stops_a_running_turn(tmp_path: Path, openai_fake: FakeLLM) -> None:
    openai_fake.script.append({"delay": 5, "text": "too late"})
    async with live_gateway(tmp_path, config(openai_fake)) as live, connected(live) as client:
        ack = await client.call(
            "chat.send", {"sessionKey": "main", "message": "slow", "idempotencyKey": "slow-1"}
        )
        await openai_fake.wait_until(lambda reqs: len(reqs) == 1)
        result = await client.call("chat.abort", {"sessionKey": "main"})
        assert result["aborted"] is True and result["runIds"] == ["slow-1"]
        events = await chat_events(client, ack["runId"])
        assert events[-1]["state"] == "aborted"
        # The session keeps working after an abort.
        assert final_text(await chat(client, "next")) == "from openai"


async def test_reset_command_is_answered_without_a_model_call(
    tmp_path: Path, openai_fake: FakeLLM
) -> None:
    async with live_gateway(tmp_path, config(openai_fake)) as live, connected(live) as client:
        await chat(client, "remember this")
        before = await client.call("sessions.list", {})
        events = await chat(client, "/new")
        assert events[-1]["state"] == "final"
        after = await client.call("sessions.list", {})
        history = await client.call("chat.history", {"sessionKey": "main"})
    assert len(openai_fake.requests) == 1
    assert before["sessions"][0]["sessionId"] != after["sessions"][0]["sessionId"]
    assert all("remember this" not in str(m["content"]) for m in history["messages"])


async def test_history_is_sent_to_the_model_on_the_next_turn(
    tmp_path: Path, openai_fake: FakeLLM
) -> None:
    openai_fake.script += [{"text": "first answer"}, {"text": "second answer"}]
    async with live_gateway(tmp_path, config(openai_fake)) as live, connected(live) as client:
        await chat(client, "first question")
        await chat(client, "second question")
    messages = openai_fake.requests[1]["body"]["messages"]
    assert messages[0]["role"] == "system" and "workspace" in messages[0]["content"].lower()
    assert messages[1:] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ]


async def test_sessions_reset_and_delete(tmp_path: Path, openai_fake: FakeLLM) -> None:
    async with live_gateway(tmp_path, config(openai_fake)) as live, connected(live) as client:
        await chat(client, "hello", session="agent:main:work")
        listed = await client.call("sessions.list", {})
        assert [s["key"] for s in listed["sessions"]] == ["agent:main:work"]
        reset = await client.call("sessions.reset", {"key": "agent:main:work"})
        assert reset["ok"] is True and reset["key"] == "agent:main:work"
        deleted = await client.call("sessions.delete", {"key": "agent:main:work"})
        assert deleted["ok"] is True
        assert (await client.call("sessions.list", {}))["sessions"] == []
        missing = await client.request("sessions.delete", {"key": "agent:main:nope"})
        assert missing["ok"] is False and missing["error"]["code"] == "NOT_FOUND"


async def test_scopes_and_param_errors(tmp_path: Path, openai_fake: FakeLLM) -> None:
    async with live_gateway(tmp_path, config(openai_fake)) as live:
        async with connected(live, scopes=["operator.read"]) as reader:
            denied = await reader.request(
                "chat.send", {"sessionKey": "main", "message": "x", "idempotencyKey": "r"}
            )
            assert denied["ok"] is False
            assert "operator.write" in denied["error"]["message"]
            assert (await reader.call("agents.list"))["defaultId"] == "main"
            reset = await reader.request("sessions.reset", {"key": "main"})
            assert reset["ok"] is False
        async with connected(live) as client:
            bad = await client.request("chat.send", {"sessionKey": "main", "message": "x"})
            assert bad["ok"] is False and bad["error"]["code"] == "INVALID_REQUEST"
            assert "idempotencyKey" in bad["error"]["message"]
            # The connection survives a bad request.
            assert final_text(await chat(client, "still here")) == "from openai"
    assert len(openai_fake.requests) == 1


async def test_models_and_agents_list(tmp_path: Path, openai_fake: FakeLLM) -> None:
    cfg = config(openai_fake)
    cfg["agents"]["defaults"]["model"]["fallbacks"] = ["anthropic/claude-test"]
    cfg["agents"]["entries"] = {"main": {"default": True}, "work": {"model": "openai/gpt-work"}}
    async with live_gateway(tmp_path, cfg) as live, connected(live) as client:
        models = await client.call("models.list")
        agents = await client.call("agents.list")
    refs = [f"{m['provider']}/{m['id']}" for m in models["models"]]
    assert refs == ["openai/gpt-test", "anthropic/claude-test", "openai/gpt-work"]
    assert [a["id"] for a in agents["agents"]] == ["main", "work"]
    assert agents["defaultId"] == "main"


async def test_chat_send_is_refused_while_draining(tmp_path: Path, openai_fake: FakeLLM) -> None:
    async with live_gateway(tmp_path, config(openai_fake)) as live, connected(live) as client:
        live.gateway.phase = "draining"
        res = await client.request(
            "chat.send", {"sessionKey": "main", "message": "x", "idempotencyKey": "d"}
        )
        live.gateway.phase = "started"
    assert res["ok"] is False and res["error"]["retryable"] is True
    await asyncio.sleep(0)
    assert openai_fake.requests == []


async def test_group_system_prompt_joins_the_workspace_prompt(
    tmp_path: Path, openai_fake: FakeLLM
) -> None:
    from gateway.agents import roster
    from gateway.agents.runner import RunRequest

    async with live_gateway(tmp_path, config(openai_fake)) as live:
        svc = live.gateway.extensions["agents"]
        cfg = live.gateway.loaded.config
        request = RunRequest(
            run_id="r1",
            session_key="agent:main:telegram:group:-100123",
            agent_id="main",
            session_id="s1",
            text="hi",
            history=(),
            metadata={"groupSystemPrompt": "Answer like a ship's log."},
        )
        prompt = svc._system_prompt(cfg, request, roster.model_chain(cfg, "main"))
        direct = svc._system_prompt(
            cfg,
            RunRequest(
                run_id="r2",
                session_key="agent:main:main",
                agent_id="main",
                session_id="s2",
                text="hi",
                history=(),
            ),
            roster.model_chain(cfg, "main"),
        )
    assert "Answer like a ship's log." in prompt
    assert "ship's log" not in direct
    assert "AGENTS.md" in prompt  # the workspace files are still there


async def test_model_aliases_resolve_to_provider_refs(tmp_path: Path, openai_fake: FakeLLM) -> None:
    cfg = config(openai_fake)
    cfg["agents"]["defaults"]["model"] = {"primary": "Fast"}
    cfg["agents"]["defaults"]["models"] = {"openai/gpt-fast": {"alias": "fast"}}
    async with live_gateway(tmp_path, cfg) as live, connected(live) as client:
        assert final_text(await chat(client, "hi")) == "from openai"
    assert openai_fake.requests[0]["body"]["model"] == "gpt-fast"

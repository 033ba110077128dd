"""/v1/models, /v1/chat/completions and /v1/responses through the official `openai` SDK.

A real gateway (real uvicorn on 127.0.0.1) answers with agent turns on a fake model; the
client is the unmodified `openai.AsyncOpenAI`, as Open WebUI or a script would use it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.llm import FakeLLM
from tests.harness import TOKEN, LiveGateway, live_gateway


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    fake = FakeLLM(default_text="hello from the agent")
    await fake.start()
    yield fake
    await fake.stop()


def config(llm: FakeLLM, **endpoints: Any) -> dict[str, Any]:
    return {
        "gateway": {"http": {"endpoints": endpoints or {"chatCompletions": {"enabled": True}}}},
        "models": {"providers": {"openai": {"baseUrl": llm.url + "/v1", "apiKey": "sk-test"}}},
        "agents": {
            "defaults": {"model": {"primary": "openai/gpt-test"}},
            "entries": {"main": {"default": True}, "research": {}},
        },
    }


def client(live: LiveGateway, key: str = TOKEN) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=live.http + "/v1", api_key=key, max_retries=0)


async def test_streaming_chat_completion_with_the_sdk(tmp_path: Path, llm: FakeLLM) -> None:
    async with live_gateway(tmp_path, config(llm)) as live:
        sdk = client(live)
        stream = await sdk.chat.completions.create(
            model="openclaw:main",
            messages=[{"role": "user", "content": "say hello"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        pieces: list[str] = []
        finish: list[str | None] = []
        usage = None
        async for chunk in stream:
            if chunk.choices:
                pieces.append(chunk.choices[0].delta.content or "")
                finish.append(chunk.choices[0].finish_reason)
            if chunk.usage is not None:
                usage = chunk.usage
        await sdk.close()
    assert "".join(pieces) == "hello from the agent"
    assert len([p for p in pieces if p]) > 1  # streamed in pieces, not one blob
    assert finish[-1] == "stop"
    assert usage is not None and usage.completion_tokens > 0
    # The agent's own system prompt and the user's text reached the model.
    sent = llm.bodies[-1]["messages"]
    assert sent[0]["role"] == "system" and sent[-1]["content"] == "say hello"


async def test_non_streaming_and_conversation_context(tmp_path: Path, llm: FakeLLM) -> None:
    async with live_gateway(tmp_path, config(llm)) as live:
        sdk = client(live)
        reply = await sdk.chat.completions.create(
            model="openclaw/research",
            messages=[
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "my name is Ada"},
                {"role": "assistant", "content": "Hi Ada"},
                {"role": "user", "content": "what is my name?"},
            ],
        )
        listed = await sdk.models.list()
        one = await sdk.models.retrieve("openclaw/research")
        await sdk.close()
        sessions = live.gateway.extensions["agents"].store.list_sessions(agent_id="research")
    assert reply.choices[0].message.content == "hello from the agent"
    assert reply.choices[0].finish_reason == "stop"
    prompt = llm.bodies[-1]["messages"][-1]["content"]
    assert "User: my name is Ada" in prompt and "Assistant: Hi Ada" in prompt
    assert "System: Be terse." in prompt and prompt.endswith("what is my name?")
    assert [m.id for m in listed.data] == [
        "openclaw",
        "openclaw/default",
        "openclaw/main",
        "openclaw/research",
    ]
    assert one.id == "openclaw/research"
    assert sessions.total_count == 1  # routed to the research agent


async def test_user_field_keeps_one_session(tmp_path: Path, llm: FakeLLM) -> None:
    llm.script += [{"text": "first"}, {"text": "second"}]
    async with live_gateway(tmp_path, config(llm)) as live:
        sdk = client(live)
        for text in ("one", "two"):
            await sdk.chat.completions.create(
                model="openclaw", user="conv-42", messages=[{"role": "user", "content": text}]
            )
        await sdk.close()
    # The second turn saw the first one's history: the same agent session.
    history = llm.bodies[1]["messages"]
    assert [m["content"] for m in history[1:]] == ["one", "first", "two"]


async def test_responses_api_streams_with_the_sdk(tmp_path: Path, llm: FakeLLM) -> None:
    cfg = config(llm, responses={"enabled": True})
    async with live_gateway(tmp_path, cfg) as live:
        sdk = client(live)
        stream = await sdk.responses.create(model="openclaw", input="hi there", stream=True)
        deltas: list[str] = []
        completed = None
        async for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
            elif event.type == "response.completed":
                completed = event.response
        whole = await sdk.responses.create(model="openclaw", input="again")
        await sdk.close()
    assert "".join(deltas) == "hello from the agent"
    assert completed is not None and completed.output_text == "hello from the agent"
    assert whole.output_text == "hello from the agent"


async def test_auth_errors_and_bad_bodies(tmp_path: Path, llm: FakeLLM) -> None:
    cfg = config(llm, chatCompletions={"enabled": True, "maxBodyBytes": 65536})
    async with live_gateway(tmp_path, cfg) as live:
        wrong = client(live, key="not-the-token")
        with pytest.raises(openai.AuthenticationError) as denied:
            await wrong.chat.completions.create(
                model="openclaw", messages=[{"role": "user", "content": "x"}]
            )
        await wrong.close()
        assert TOKEN not in str(denied.value)
        sdk = client(live)
        with pytest.raises(openai.NotFoundError, match="unknown agent"):
            await sdk.chat.completions.create(
                model="openclaw/nobody", messages=[{"role": "user", "content": "x"}]
            )
        with pytest.raises(openai.BadRequestError, match="user message"):
            await sdk.chat.completions.create(
                model="openclaw", messages=[{"role": "system", "content": "only"}]
            )
        await sdk.close()
        async with httpx.AsyncClient(base_url=live.http) as http:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            garbage = await http.post("/v1/chat/completions", content=b"{nope", headers=auth)
            assert (
                garbage.status_code == 400
                and "not valid JSON" in garbage.json()["error"]["message"]
            )
            deep = await http.post(
                "/v1/chat/completions", content=b"[" * 30_000 + b"]" * 30_000, headers=auth
            )
            assert deep.status_code == 400
            huge = await http.post("/v1/chat/completions", content=b" " * 100_000, headers=auth)
            assert huge.status_code == 413 and "65536" in huge.json()["error"]["message"]
            # Responses is off unless enabled: 404, like the reference.
            off = await http.post("/v1/responses", json={"input": "x"}, headers=auth)
            assert off.status_code == 404
    assert len(llm.requests) == 0


async def test_disabled_by_default(tmp_path: Path, llm: FakeLLM) -> None:
    cfg = config(llm)
    del cfg["gateway"]
    async with live_gateway(tmp_path, cfg) as live, httpx.AsyncClient(base_url=live.http) as http:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert (await http.get("/v1/models", headers=auth)).status_code == 404
        posted = await http.post("/v1/chat/completions", json={}, headers=auth)
        assert posted.status_code == 404


async def test_wrong_tokens_are_throttled_but_the_right_one_still_works(
    tmp_path: Path, llm: FakeLLM
) -> None:
    cfg = config(llm)
    cfg["gateway"]["auth"] = {"rateLimit": {"maxAttempts": 3, "exemptLoopback": False}}
    async with live_gateway(tmp_path, cfg) as live, httpx.AsyncClient(base_url=live.http) as http:
        live.gateway.limiter.hold_s = 0.2  # the wait before a throttled address is checked
        bad = {"Authorization": "Bearer bad"}
        statuses = [(await http.get("/v1/models", headers=bad)).status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        locked = await http.get("/v1/models", headers=bad)
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1
        good = await http.get("/v1/models", headers={"Authorization": f"Bearer {TOKEN}"})
        assert good.status_code == 200


async def test_client_disconnect_aborts_the_run(tmp_path: Path, llm: FakeLLM) -> None:
    llm.script.append({"delay": 5, "text": "too late"})
    async with live_gateway(tmp_path, config(llm)) as live:
        svc = live.gateway.extensions["agents"]
        async with httpx.AsyncClient(base_url=live.http) as http:
            request = http.stream(
                "POST",
                "/v1/chat/completions",
                json={
                    "model": "openclaw",
                    "stream": True,
                    "messages": [{"role": "user", "content": "slow"}],
                },
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            async with request as response:
                assert response.status_code == 200
                await llm.wait_until(lambda reqs: len(reqs) == 1)
        # Closed mid-answer: the run is aborted rather than left running.
        for _ in range(200):
            if not any(svc.runner.status(k).active_run_id for k in _keys(svc)):
                break
            await asyncio.sleep(0.02)
        assert not any(svc.runner.status(k).active_run_id for k in _keys(svc))


def _keys(svc: Any) -> list[str]:
    return [row.key for row in svc.store.list_sessions(agent_id="main", limit=50).rows]

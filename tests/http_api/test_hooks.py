"""Inbound webhooks against a real gateway: auth, agent turns delivered to a fake Telegram chat,
idempotency, mappings, wake, and the limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from channels.telegram import TelegramChannel, TelegramTransport
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import TOKEN as TG_TOKEN
from tests.fakes.telegram import FakeTelegram
from tests.harness import TOKEN, live_gateway

HOOK_TOKEN = "hook-secret-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {HOOK_TOKEN}"}


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    fake = FakeLLM(default_text="summary: all good")
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def tg(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeTelegram]:
    monkeypatch.setattr(TelegramChannel, "poll_timeout_s", 1)
    monkeypatch.setattr(TelegramTransport, "max_delay_s", 0.05)
    fake = FakeTelegram()
    await fake.start()
    yield fake
    await fake.stop()


def config(llm: FakeLLM, tg: FakeTelegram | None = None, **hooks: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "hooks": {"enabled": True, "token": HOOK_TOKEN, **hooks},
        "models": {"providers": {"openai": {"baseUrl": llm.url + "/v1", "apiKey": "sk-test"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-test"}}},
    }
    if tg is not None:
        cfg["channels"] = {"telegram": {"botToken": TG_TOKEN, "apiRoot": tg.url}}
    return cfg


async def test_agent_hook_delivers_to_telegram(
    tmp_path: Path, llm: FakeLLM, tg: FakeTelegram
) -> None:
    async with live_gateway(tmp_path, config(llm, tg)) as live:
        runner = live.gateway.extensions["channels"].get("telegram").runner
        await runner.wait_for_status(lambda s: s.connected)
        async with httpx.AsyncClient(base_url=live.http, timeout=10) as http:
            answer = await http.post(
                "/hooks/agent",
                json={
                    "message": "Deploy finished: 3 services updated",
                    "name": "CI",
                    "channel": "telegram",
                    "to": "4242",
                    "waitForCompletion": True,
                },
                headers=AUTH,
            )
    body = answer.json()
    assert answer.status_code == 200 and body["ok"] is True and body["runId"]
    assert body["completion"] == {
        "status": "ok",
        "replyDisposition": "visible",
        "deliveryAttempted": True,
        "delivered": True,
    }
    sent = tg.calls("sendMessage")
    assert [(str(m["chat_id"]), m["text"]) for m in sent] == [("4242", "summary: all good")]
    # The hook text reached the model wrapped as external content, not as owner instructions.
    prompt = llm.bodies[-1]["messages"][-1]["content"]
    assert "Deploy finished: 3 services updated" in prompt and "EXTERNAL_CONTENT" in prompt


async def test_auth_rules(tmp_path: Path, llm: FakeLLM) -> None:
    async with live_gateway(tmp_path, config(llm)) as live:
        async with httpx.AsyncClient(base_url=live.http) as http:
            body = {"message": "x", "deliver": False}
            assert (await http.post("/hooks/agent", json=body)).status_code == 401
            wrong = await http.post("/hooks/agent", json=body, headers={"x-openclaw-token": "no"})
            assert wrong.status_code == 401 and HOOK_TOKEN not in wrong.text
            # The gateway token is not a hook token.
            gw = await http.post(
                "/hooks/agent", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert gw.status_code == 401
            query = await http.post(f"/hooks/agent?token={HOOK_TOKEN}", json=body, headers=AUTH)
            assert query.status_code == 400 and "header" in query.json()["error"]
            header = await http.post(
                "/hooks/agent", json=body, headers={"x-openclaw-token": HOOK_TOKEN}
            )
            assert header.status_code == 200
            # 20 wrong tokens in a minute: throttled (429 + Retry-After), the right one still works.
            codes = [
                (await http.post("/hooks/agent", json=body, headers={"x-openclaw-token": "bad"}))
                for _ in range(21)
            ]
            assert codes[-1].status_code == 429 and int(codes[-1].headers["Retry-After"]) >= 1
            assert (await http.post("/hooks/agent", json=body, headers=AUTH)).status_code == 200


async def test_idempotency_key_replays_without_a_second_run(tmp_path: Path, llm: FakeLLM) -> None:
    async with live_gateway(tmp_path, config(llm)) as live:
        async with httpx.AsyncClient(base_url=live.http, timeout=10) as http:
            headers = {**AUTH, "Idempotency-Key": "evt-1"}
            body = {"message": "once", "deliver": False, "waitForCompletion": True}
            first = (await http.post("/hooks/agent", json=body, headers=headers)).json()
            again = (await http.post("/hooks/agent", json=body, headers=headers)).json()
            other = await http.post(
                "/hooks/agent", json={**body, "message": "different"}, headers=headers
            )
    assert first["runId"] == again["runId"] and first["completion"] == again["completion"]
    assert other.json()["runId"] != first["runId"]
    assert len(llm.requests) == 2


async def test_bad_requests(tmp_path: Path, llm: FakeLLM) -> None:
    async with live_gateway(tmp_path, config(llm, maxBodyBytes=4096)) as live:
        async with httpx.AsyncClient(base_url=live.http) as http:
            missing = await http.post("/hooks/agent", json={"name": "x"}, headers=AUTH)
            assert missing.status_code == 400 and "message" in missing.json()["error"]
            garbage = await http.post("/hooks/agent", content=b"not json", headers=AUTH)
            assert garbage.status_code == 400
            big = await http.post("/hooks/agent", json={"message": "x" * 10_000}, headers=AUTH)
            assert big.status_code == 413
            agent = await http.post(
                "/hooks/agent", json={"message": "x", "agentId": "ghost"}, headers=AUTH
            )
            assert agent.status_code == 400 and "ghost" in agent.json()["error"]
            half = await http.post(
                "/hooks/agent", json={"message": "x", "channel": "telegram"}, headers=AUTH
            )
            assert half.status_code == 400 and "channel and to" in half.json()["error"]
            unknown = await http.post("/hooks/nothing-here", json={}, headers=AUTH)
            assert unknown.status_code == 404
    assert llm.requests == []


async def test_mapping_renders_a_template(tmp_path: Path, llm: FakeLLM) -> None:
    mapping = {
        "match": {"path": "github"},
        "action": "agent",
        "name": "GitHub {{headers.x-github-event}}",
        "messageTemplate": "{{repository.full_name}}: {{commits[0].message}} by {{pusher.name}}",
        "deliver": False,
    }
    async with live_gateway(tmp_path, config(llm, mappings=[mapping])) as live:
        async with httpx.AsyncClient(base_url=live.http, timeout=10) as http:
            push = {
                "repository": {"full_name": "acme/app"},
                "commits": [{"message": "fix login"}],
                "pusher": {"name": "ada"},
            }
            answer = await http.post(
                "/hooks/github", json=push, headers={**AUTH, "X-GitHub-Event": "push"}
            )
            assert answer.status_code == 200 and answer.json()["ok"] is True
            await llm.wait_until(lambda reqs: len(reqs) == 1)
    prompt = llm.bodies[0]["messages"][-1]["content"]
    assert "acme/app: fix login by ada" in prompt


async def test_wake_runs_in_the_main_session(tmp_path: Path, llm: FakeLLM) -> None:
    async with live_gateway(tmp_path, config(llm)) as live:
        async with httpx.AsyncClient(base_url=live.http) as http:
            answer = await http.post("/hooks/wake", json={"text": "backup done"}, headers=AUTH)
            assert answer.status_code == 200
            assert answer.json()["ok"] is True and answer.json()["mode"] == "now"
            await llm.wait_until(lambda reqs: len(reqs) == 1)
            empty = await http.post("/hooks/wake", json={"text": ""}, headers=AUTH)
            assert empty.status_code == 400
        rows = live.gateway.extensions["agents"].store.list_sessions(agent_id="main").rows
    assert [r.key for r in rows] == ["agent:main:main"]
    assert "backup done" in llm.bodies[0]["messages"][-1]["content"]


async def test_hooks_off_by_default(tmp_path: Path, llm: FakeLLM) -> None:
    cfg = config(llm)
    del cfg["hooks"]
    async with live_gateway(tmp_path, cfg) as live, httpx.AsyncClient(base_url=live.http) as http:
        answer = await http.post("/hooks/agent", json={"message": "x"}, headers=AUTH)
    # Disabled hooks fall through to the rest of the routing (only GET serves the UI there).
    assert answer.status_code == 405
    assert llm.requests == []

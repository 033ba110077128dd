"""End to end: fake Discord ↔ discord.py ↔ our adapter ↔ pipeline ↔ agents ↔ fake model.

The gateway starts Discord itself (channel manager) from the config plus the env the Fly
guide uses (`DISCORD_BOT_TOKEN`) and the test hook `DISCORD_API_URL`.

Configuration is the Fly guide's example (allowlisted guild, channel `general`,
`requireMention: false`) with the guild id of the fake and the model pointed at `FakeLLM`.
"""

from __future__ import annotations

import asyncio
import copy
import json
import signal
import subprocess
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from channels.discord import BAD_TOKEN_ERROR, DiscordChannel
from gateway.agents.commands import NEW_SESSION_REPLY
from tests.fakes import discord as fd
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import FakeLLM
from tests.fixtures import FLY_GUIDE
from tests.harness import (
    TOKEN,
    LiveGateway,
    connected,
    free_port,
    gateway_env,
    live_gateway,
    start_process,
)


def fly_guide_config(llm_url: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(FLY_GUIDE.read_text())
    config = copy.deepcopy(config)
    guilds = config["channels"]["discord"]["guilds"]
    guilds[str(fd.GUILD_ID)] = guilds.pop("YOUR_GUILD_ID")
    config["agents"]["defaults"]["model"] = {"primary": "openai/gpt-test"}
    config["models"] = {
        "providers": {"openai": {"baseUrl": llm_url + "/v1", "apiKey": "sk-test-discord-e2e"}}
    }
    config["gateway"]["bind"] = "loopback"
    return config


@pytest.fixture
def fake(fake_discord_bot: FakeDiscord) -> FakeDiscord:
    return fake_discord_bot


@pytest.fixture
def llm(fake_llm: FakeLLM) -> FakeLLM:
    return fake_llm


def discord_runner(live: LiveGateway) -> DiscordChannel:
    """The Discord account the channel manager built from the config."""
    manager = live.gateway.extensions["channels"]
    rt = manager.get("discord")
    assert rt is not None and isinstance(rt.runner, DiscordChannel)
    return rt.runner


@pytest.fixture
async def running(
    tmp_path: Path, fake: FakeDiscord, llm: FakeLLM
) -> AsyncIterator[tuple[FakeDiscord, FakeLLM, LiveGateway]]:
    async with live_gateway(tmp_path, fly_guide_config(llm.url)) as live:
        await discord_runner(live).wait_for_status(lambda s: s.connected)
        yield fake, llm, live


def posts(fake: FakeDiscord, channel_id: int) -> list[dict[str, Any]]:
    return fake.rest_calls("POST", f"/channels/{channel_id}/messages")


async def test_allowlisted_channel_gets_agent_reply(
    running: tuple[FakeDiscord, FakeLLM, LiveGateway],
) -> None:
    fake, llm, _live = running
    llm.script.append({"text": "Hello from the agent"})
    await fake.message_create(fd.message("hi there, no mention", fd.TEXT_CH, guild_id=fd.GUILD_ID))
    reply = await fake.wait_rest("POST", f"/channels/{fd.TEXT_CH}/messages", timeout=15)
    assert reply["json"]["content"] == "Hello from the agent"
    typing = fake.rest_calls("POST", f"/channels/{fd.TEXT_CH}/typing")
    assert typing and fake.requests.index(typing[0]) < fake.requests.index(reply)
    prompt = json.dumps(llm.requests[-1])
    assert "hi there, no mention" in prompt


async def test_other_channel_is_ignored(running: tuple[FakeDiscord, FakeLLM, LiveGateway]) -> None:
    fake, llm, _live = running
    llm.script.append({"text": "only for general"})
    await fake.message_create(fd.message("anyone?", fd.OTHER_CH, guild_id=fd.GUILD_ID))
    await fake.message_create(fd.message("and here", fd.TEXT_CH, guild_id=fd.GUILD_ID))
    reply = await fake.wait_rest("POST", f"/channels/{fd.TEXT_CH}/messages", timeout=15)
    assert reply["json"]["content"] == "only for general"
    assert len(llm.requests) == 1 and "anyone?" not in json.dumps(llm.requests[0])
    assert not posts(fake, fd.OTHER_CH)
    assert not fake.rest_calls("POST", f"/channels/{fd.OTHER_CH}/typing")


async def test_long_reply_is_chunked_at_2000(
    running: tuple[FakeDiscord, FakeLLM, LiveGateway],
) -> None:
    fake, llm, _live = running
    long_text = " ".join(f"word{i:04d}" for i in range(500))  # 4,499 chars on one line
    llm.script.append({"text": long_text})
    await fake.message_create(fd.message("tell me a lot", fd.TEXT_CH, guild_id=fd.GUILD_ID))
    await fake.wait_rest("POST", f"/channels/{fd.TEXT_CH}/messages", count=3, timeout=15)
    chunks = [p["json"]["content"] for p in posts(fake, fd.TEXT_CH)]
    assert len(chunks) == 3 and all(len(c) <= 2000 for c in chunks)
    assert " ".join(c.strip() for c in chunks).split() == long_text.split()


async def test_new_command_resets_without_a_model_turn(
    running: tuple[FakeDiscord, FakeLLM, LiveGateway],
) -> None:
    fake, llm, _live = running
    await fake.message_create(fd.message("/new", fd.TEXT_CH, guild_id=fd.GUILD_ID))
    reply = await fake.wait_rest("POST", f"/channels/{fd.TEXT_CH}/messages", timeout=15)
    assert reply["json"]["content"] == NEW_SESSION_REPLY
    assert not llm.requests


async def test_unknown_dm_gets_a_pairing_code(
    running: tuple[FakeDiscord, FakeLLM, LiveGateway],
) -> None:
    fake, llm, _live = running
    await fake.message_create(fd.message("hello?", fd.DM_CH))
    reply = await fake.wait_rest("POST", f"/channels/{fd.DM_CH}/messages", timeout=15)
    text = reply["json"]["content"]
    assert "Your Discord user id: 42" in text and "Pairing code:" in text
    assert not llm.requests


async def test_approved_dm_reaches_the_agent(
    running: tuple[FakeDiscord, FakeLLM, LiveGateway],
) -> None:
    fake, llm, live = running
    await fake.message_create(fd.message("let me in", fd.DM_CH))
    pairing = await fake.wait_rest("POST", f"/channels/{fd.DM_CH}/messages", timeout=15)
    async with connected(live) as client:
        pending = await client.call("channels.pairing.list", {"channel": "discord"})
        (request,) = pending["requests"]
        code = request["metadata"]["code"]
        assert request["senderId"] == str(fd.USER_ID) and code in pairing["json"]["content"]
        await client.call("channels.pairing.approve", {"channel": "discord", "code": code})
    llm.script.append({"text": "welcome aboard"})
    await fake.message_create(fd.message("now?", fd.DM_CH))
    reply = await fake.wait_rest("POST", f"/channels/{fd.DM_CH}/messages", count=2, timeout=15)
    assert reply["json"]["content"] == "welcome aboard"


async def test_send_rpc_and_status_through_discord(
    running: tuple[FakeDiscord, FakeLLM, LiveGateway],
) -> None:
    fake, _llm, live = running
    async with connected(live) as client:
        status = await client.call("channels.status", {})
        dc = status["channels"]["discord"]
        assert (dc["running"], dc["connected"], dc["healthState"]) == (True, True, "healthy")
        assert dc["bot"] == {"id": str(fd.BOT_ID), "username": "clawbot"}
        params = {"channel": "discord", "to": str(fd.TEXT_CH), "message": "from RPC"}
        sent = await client.call("send", {**params, "idempotencyKey": "k1"})
    post = await fake.wait_rest("POST", f"/channels/{fd.TEXT_CH}/messages")
    assert post["json"]["content"] == "from RPC" and sent["messageId"]


async def test_socket_drop_reconnects_without_restarting_the_gateway(
    running: tuple[FakeDiscord, FakeLLM, LiveGateway],
) -> None:
    fake, llm, live = running
    runner = discord_runner(live)
    await fake.drop_sockets(4000)
    await fake.wait_op(6)  # RESUME
    await runner.wait_for_status(lambda s: s.connected and s.reconnects == 1)
    llm.script.append({"text": "still here"})
    await fake.message_create(fd.message("you there?", fd.TEXT_CH, guild_id=fd.GUILD_ID))
    reply = await fake.wait_rest("POST", f"/channels/{fd.TEXT_CH}/messages", timeout=15)
    assert reply["json"]["content"] == "still here"
    assert live.gateway.phase == "started"


async def test_bad_token_fails_the_channel_not_the_gateway(
    tmp_path: Path, fake: FakeDiscord, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    monkeypatch.setenv("DISCORD_BOT_TOKEN", "WRONG.TOKEN-not-valid")
    async with live_gateway(tmp_path, fly_guide_config(llm.url)) as live:
        await discord_runner(live).wait_for_status(lambda s: not s.running)
        async with httpx.AsyncClient(base_url=live.http, timeout=5) as http:
            assert (await http.get("/healthz")).status_code == 200
            ready = await http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["failing"] == ["discord:default"]
        async with connected(live) as client:
            dc = (await client.call("channels.status", {}))["channels"]["discord"]
        assert (dc["healthState"], dc["lastError"]) == ("failed", BAD_TOKEN_ERROR)
    assert fake.connected_sockets == 0


class ProcessLog:
    """Collects a child's output lines on a thread; waiters are woken per line (no sleeping)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self._loop.call_soon_threadsafe(self._changed.set)

    async def wait_for(self, needle: str, timeout: float = 20.0) -> str:
        async def _wait() -> str:
            while True:
                self._changed.clear()
                for line in self.lines:
                    if needle in line:
                        return line
                if self.proc.poll() is not None:
                    raise AssertionError("gateway exited:\n" + "\n".join(self.lines))
                await self._changed.wait()

        return await asyncio.wait_for(_wait(), timeout)

    async def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(self.proc.wait, 15)
        await asyncio.to_thread(self._thread.join, 5)
        return code


async def test_real_process_logs_in_once_and_replies(
    tmp_path: Path, fake: FakeDiscord, llm: FakeLLM
) -> None:
    (tmp_path / "openclaw.json").write_text(json.dumps(fly_guide_config(llm.url)))
    env = gateway_env(
        tmp_path,
        OPENCLAW_GATEWAY_TOKEN=TOKEN,
        DISCORD_BOT_TOKEN=fake.token,
        DISCORD_API_URL=fake.api_base,
    )
    proc = start_process(["--port", str(free_port())], env)
    out = ProcessLog(proc)
    try:
        await out.wait_for("[discord] [default] starting provider")
        line = await out.wait_for("logged in to discord")
        assert line.split(" ", 1)[1] == "[discord] logged in to discord as 900 (clawbot)"
        llm.script.append({"text": "hello from a real process"})
        await fake.message_create(fd.message("ping", fd.TEXT_CH, guild_id=fd.GUILD_ID))
        reply = await fake.wait_rest("POST", f"/channels/{fd.TEXT_CH}/messages", timeout=20)
        assert reply["json"]["content"] == "hello from a real process"
    finally:
        code = await out.stop()
    text = "\n".join(out.lines)
    assert code == 0, text
    assert fake.token not in text and "sk-test-discord-e2e" not in text
    assert sum("logged in to discord" in line for line in out.lines) == 1
    # discord.py's records never show up under another subsystem's tag.
    noise = ("Shard ID", "[client]", "voice will NOT be supported", "Traceback")
    assert not [line for line in out.lines if any(n in line for n in noise)], text


async def test_usage_full_footer_arrives_as_discord_subtext(
    tmp_path: Path, fake: FakeDiscord, llm: FakeLLM
) -> None:
    config = fly_guide_config(llm.url)
    config["commands"] = {"allowFrom": {"discord": ["*"]}}  # /usage is not an open command
    usage = {"prompt_tokens": 40_000, "completion_tokens": 500}
    llm.script.append({"text": "counted", "usage": usage})
    route = f"/channels/{fd.TEXT_CH}/messages"
    async with live_gateway(tmp_path, config) as live:
        await discord_runner(live).wait_for_status(lambda s: s.connected)
        await fake.message_create(fd.message("/usage full", fd.TEXT_CH, guild_id=fd.GUILD_ID))
        await fake.wait_rest("POST", route, timeout=15)
        await fake.message_create(fd.message("how big?", fd.TEXT_CH, guild_id=fd.GUILD_ID))
        await fake.wait_rest("POST", route, count=2, timeout=15)
    confirm, answer = (p["json"]["content"] for p in posts(fake, fd.TEXT_CH))
    assert confirm == "⚙️ Usage footer: full."
    # gpt-test has no price in this config: the bar has no cost; the window is the default 200k.
    assert answer == "counted\n-# -\n-# openai🤖gpt-test🐌\xa0| 📚[⣿⠐⠐⠐⠐]200k"

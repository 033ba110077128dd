"""A live gateway with both channels against the fakes, on its own loop in a thread.

Hypothesis drives synchronous test functions; `ChannelRig.run` hands coroutines to the rig's
loop. The rig also keeps a neighbour WebSocket client so every case can check that the
gateway still serves others, and "sentinel" DMs on both platforms whose replies prove that
the channel still polls / reads after garbage.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import discord
import pytest
import websockets

from channels.discord import DiscordChannel
from channels.telegram import TelegramChannel, TelegramTransport
from tests.fakes import discord as fd
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram
from tests.harness import Client, LiveGateway, connect_params, live_gateway

T = TypeVar("T")
TG_SENTINEL_CHAT = 990_001  # never produced by the fuzz strategies (they stay below 10**5)
DC_SENTINEL_CHANNEL = 990_002
DC_SENTINEL_USER = 990_003


def rig_config(llm: FakeLLM, tg: FakeTelegram, dc: FakeDiscord) -> dict[str, Any]:
    open_dms = {"dmPolicy": "open", "allowFrom": ["*"]}
    return {
        "gateway": {"mode": "local"},
        "models": {"providers": {"openai": {"baseUrl": llm.url + "/v1", "apiKey": "sk-test"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-test"}}},
        "session": {"dmScope": "per-channel-peer"},
        "channels": {
            "telegram": {"botToken": tg.token, "apiRoot": tg.url, **open_dms},
            "discord": {"token": dc.token, **open_dms},
        },
    }


@dataclass
class ChannelRig:
    loop: asyncio.AbstractEventLoop
    live: LiveGateway
    tg: FakeTelegram
    dc: FakeDiscord
    llm: FakeLLM
    neighbour: Client
    health_ms: list[float] = field(default_factory=list)
    _sentinels: int = 0

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def channel(self, name: str) -> Any:
        return self.live.gateway.extensions["channels"].get(name).runner

    async def neighbour_health(self) -> None:
        t0 = time.perf_counter()
        payload = await self.neighbour.call("health")
        self.health_ms.append((time.perf_counter() - t0) * 1000)
        assert payload is not None

    def _tg_replies(self) -> int:
        return sum(
            1
            for r in self.tg.requests
            if r["method"] == "sendMessage" and r["params"].get("chat_id") == str(TG_SENTINEL_CHAT)
        )

    def _dc_replies(self) -> int:
        path = f"/channels/{DC_SENTINEL_CHANNEL}/messages"
        return len(self.dc.rest_calls("POST", path))

    async def telegram_sentinel(self, timeout: float = 10.0) -> None:
        """A valid DM after the garbage is still answered: polling goes on."""
        self._sentinels += 1
        before = self._tg_replies()
        self.tg.text_update(
            f"sentinel {self._sentinels}", chat_id=TG_SENTINEL_CHAT, user_id=TG_SENTINEL_CHAT
        )
        await self.tg.wait_until(lambda _: self._tg_replies() > before, timeout)

    async def discord_sentinel(self, timeout: float = 10.0) -> None:
        """A valid DM after the garbage is still answered: the gateway socket is still read."""
        self._sentinels += 1
        before = self._dc_replies()
        author = fd.user(DC_SENTINEL_USER, "sentinel")
        await self.dc.message_create(
            fd.message(f"sentinel {self._sentinels}", DC_SENTINEL_CHANNEL, author)
        )
        await self.dc.wait_until(lambda _: self._dc_replies() > before, timeout)


@contextlib.contextmanager
def channel_rig(tmp: Path) -> Iterator[ChannelRig]:
    """Start the rig in a thread (bounded), yield it, stop it."""
    started = threading.Event()
    stop_holder: dict[str, Any] = {}
    box: dict[str, Any] = {}
    loop = asyncio.new_event_loop()

    async def main() -> None:
        llm, tg, dc = FakeLLM(default_text="ok"), FakeTelegram(), FakeDiscord()
        for server in (llm, tg, dc):
            await server.start()
        stop = asyncio.Event()
        stop_holder["stop"] = stop
        with pytest.MonkeyPatch.context() as mp:
            # Short polls and back-offs as in tests/channels; behaviour stays the real one.
            mp.setattr(TelegramChannel, "poll_timeout_s", 1)
            mp.setattr(TelegramChannel, "restart_initial_s", 0.05)
            mp.setattr(TelegramChannel, "network_retry_max_s", 0.05)
            mp.setattr(TelegramTransport, "max_delay_s", 0.05)
            mp.setattr(DiscordChannel, "guild_ready_timeout", 0.05)
            # The gateway patches these discord.py class attributes from DISCORD_API_URL.
            mp.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
            gw_cls = discord.gateway.DiscordWebSocket
            mp.setattr(gw_cls, "DEFAULT_GATEWAY", gw_cls.DEFAULT_GATEWAY)
            mp.setenv("DISCORD_API_URL", dc.api_base)
            mp.setenv("DISCORD_BOT_TOKEN", dc.token)
            mp.setenv("CLAWGATE_FAILOVER_TIME_SCALE", "0.001")
            try:
                async with live_gateway(tmp, rig_config(llm, tg, dc)) as live:
                    manager = live.gateway.extensions["channels"]
                    await manager.get("telegram").runner.wait_for_status(lambda s: s.connected)
                    await manager.get("discord").runner.wait_for_status(lambda s: s.connected)
                    async with websockets.connect(live.ws, max_size=None) as ws:
                        neighbour = Client(ws)
                        await neighbour.recv()
                        assert (await neighbour.request("connect", connect_params()))["ok"]
                        box["rig"] = ChannelRig(
                            asyncio.get_running_loop(), live, tg, dc, llm, neighbour
                        )
                        started.set()
                        await stop.wait()
            finally:
                started.set()
                for server in (llm, tg, dc):
                    await server.stop()

    def runner() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # surfaced to the test below
            box["error"] = exc

    thread = threading.Thread(target=runner, daemon=True, name="channel-rig")
    thread.start()
    assert started.wait(30), "channel rig did not start"
    if "rig" not in box:
        raise AssertionError(f"channel rig failed: {box.get('error')!r}")
    rig: ChannelRig = box["rig"]
    try:
        yield rig
    finally:
        loop.call_soon_threadsafe(stop_holder["stop"].set)
        thread.join(20)
        if "error" in box:
            raise box["error"]


async def gather_bounded(*aws: Awaitable[Any], timeout: float = 10.0) -> list[Any]:
    return list(await asyncio.wait_for(asyncio.gather(*aws), timeout))

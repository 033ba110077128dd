"""Fakes and helpers for the Telegram end-to-end tests (real PTB ↔ fake Bot API ↔ gateway)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import discord
import pytest

from channels.discord import DiscordChannel
from channels.telegram import TelegramChannel, TelegramTransport
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.harness import LiveGateway, live_gateway


@pytest.fixture
async def fake_discord(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    """The fake Discord, with discord.py pointed at it through DISCORD_API_URL."""
    srv = FakeDiscord()
    await srv.start()
    # The gateway patches these discord.py class attributes from DISCORD_API_URL; restore them.
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket,
        "DEFAULT_GATEWAY",
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
    )
    monkeypatch.setenv("DISCORD_API_URL", srv.api_base)
    monkeypatch.setattr(DiscordChannel, "guild_ready_timeout", 0.05)
    yield srv
    await srv.stop()


@pytest.fixture
def fake_discord_bot(fake_discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> FakeDiscord:
    """`fake_discord` with its bot token in DISCORD_BOT_TOKEN, as a gateway reads it."""
    monkeypatch.setenv("DISCORD_BOT_TOKEN", fake_discord.token)
    return fake_discord


@pytest.fixture(autouse=True)
def _fast_telegram(monkeypatch: pytest.MonkeyPatch) -> None:
    # Short long-polls and back-offs; the behaviour (order, counts) stays the real one.
    monkeypatch.setattr(TelegramChannel, "poll_timeout_s", 1)
    monkeypatch.setattr(TelegramChannel, "restart_initial_s", 0.05)
    monkeypatch.setattr(TelegramChannel, "network_retry_max_s", 0.05)
    monkeypatch.setattr(TelegramTransport, "max_delay_s", 0.05)
    monkeypatch.setenv("CLAWGATE_FAILOVER_TIME_SCALE", "0.001")


def gateway_config(
    tg: FakeTelegram, llm: FakeLLM, telegram: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    # Final-only delivery unless a test asks for previews: a slow turn must not put a
    # progress draft where a test waits for the answer.
    section = {"botToken": TOKEN, "apiRoot": tg.url, "streaming": "off", **(telegram or {})}
    return {
        "gateway": {"mode": "local"},
        "models": {"providers": {"openai": {"baseUrl": llm.url + "/v1", "apiKey": "sk-test"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-test"}}},
        "channels": {"telegram": section},
        **extra,
    }


@contextlib.asynccontextmanager
async def telegram_gateway(
    tmp_path: Path, config: dict[str, Any], *, wait_connected: bool = True
) -> AsyncIterator[LiveGateway]:
    async with live_gateway(tmp_path, config) as live:
        if wait_connected:
            runner = live.gateway.extensions["channels"].get("telegram").runner
            await runner.wait_for_status(lambda s: s.connected)
        yield live

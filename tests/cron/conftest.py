"""Fixtures for the scheduler suite: a real in-process gateway with a hand-driven clock."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from channels.telegram import TelegramChannel, TelegramTransport
from gateway.cron import delivery
from gateway.cron import service as cron_service
from gateway.cron.clock import ManualClock
from gateway.cron.service import CronService
from tests.compat.reference import reference
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.harness import Client, LiveGateway, connected, live_gateway

# 2026-11-27 09:00:00 UTC, a Friday.
T0 = 1_795_770_000_000


@pytest.fixture
def fast_failover(monkeypatch: pytest.MonkeyPatch) -> None:
    """Failover waits scaled down and no catch-up deferral (opted into per module)."""
    monkeypatch.setenv("CLAWGATE_FAILOVER_TIME_SCALE", "0.001")
    monkeypatch.setenv("CLAWGATE_CRON_CATCHUP_DEFER_MS", "0")


@pytest.fixture(scope="module")
def schema_ready() -> None:
    """The reference protocol schema installed, for tests that validate against it."""
    reference()


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeLLM]:
    fake = FakeLLM(default_text="hello from the fake model")
    await fake.start()
    yield fake
    await fake.stop()


def base_config(llm: FakeLLM, **extra: Any) -> dict[str, Any]:
    return {
        "gateway": {"mode": "local"},
        "models": {"providers": {"openai": {"baseUrl": llm.url + "/v1", "apiKey": "sk-test"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-test"}}},
        **extra,
    }


@dataclass
class CronRig:
    live: LiveGateway
    client: Client
    clock: ManualClock

    @property
    def svc(self) -> CronService:
        svc: CronService = self.live.gateway.extensions["cron"]
        return svc

    async def call(self, method: str, params: Any = None) -> Any:
        return await self.client.call(method, params)

    async def error(self, method: str, params: Any = None) -> dict[str, Any]:
        res = await self.client.request(method, params)
        assert not res["ok"], res
        err: dict[str, Any] = res["error"]
        return err

    async def advance(self, ms: int) -> list[str]:
        """Move the clock, fire what is due, and wait for those runs to end."""
        await self.clock.advance(ms)
        fired = await self.svc.tick()
        await self.svc.wait_idle()
        return fired


@contextlib.asynccontextmanager
async def cron_rig(
    tmp_path: Path, config: dict[str, Any], start_ms: int = T0
) -> AsyncIterator[CronRig]:
    """A live gateway whose scheduler runs on a ManualClock from its very start (so restart
    catch-up happens at `start_ms`)."""
    clock = ManualClock(start_ms)
    saved = cron_service.make_clock
    cron_service.make_clock = lambda: clock
    try:
        async with live_gateway(tmp_path, config) as live:
            async with connected(live) as client:
                yield CronRig(live, client, clock)
    finally:
        cron_service.make_clock = saved


@pytest.fixture
async def fake_tg(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeTelegram]:
    # Short long-polls and back-offs; the behaviour (order, counts) stays the real one.
    monkeypatch.setattr(TelegramChannel, "poll_timeout_s", 1)
    monkeypatch.setattr(TelegramChannel, "restart_initial_s", 0.05)
    monkeypatch.setattr(TelegramChannel, "network_retry_max_s", 0.05)
    monkeypatch.setattr(TelegramTransport, "max_delay_s", 0.05)
    monkeypatch.setattr(delivery, "SEND_BACKOFF_S", (0.05, 0.05, 0.05))
    fake = FakeTelegram()
    await fake.start()
    yield fake
    await fake.stop()


def telegram_config(tg: FakeTelegram, llm: FakeLLM, **extra: Any) -> dict[str, Any]:
    section = {"botToken": TOKEN, "apiRoot": tg.url, "dmPolicy": "open", "allowFrom": ["*"]}
    return base_config(llm, channels={"telegram": section}, **extra)


async def wait_telegram(rig: CronRig) -> None:
    runner = rig.live.gateway.extensions["channels"].get("telegram").runner
    await runner.wait_for_status(lambda s: s.connected)

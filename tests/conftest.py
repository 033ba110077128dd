"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram

# Transcript check mode (gateway/agents/transcript.py): every cached transcript read is compared
# with the file, so a reader changing a shared event in place fails the test that runs it. Set
# here, the gateway processes the tests start inherit it.
os.environ["CLAWGATE_TRANSCRIPT_CHECK"] = "1"

_LEAKY_ENV = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_OAUTH_TOKEN",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENCLAW_GATEWAY_TOKEN",
    "OPENCLAW_GATEWAY_PASSWORD",
    "OPENCLAW_GATEWAY_PORT",
    "OPENCLAW_CONFIG_PATH",
    "OPENCLAW_STATE_DIR",
    "DISCORD_BOT_TOKEN",
    "DISCORD_API_URL",
    "TELEGRAM_BOT_TOKEN",
    "FLY_APP_NAME",
    "FLY_MACHINE_ID",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # SDKs and the gateway read these; a developer's shell must never leak into a test.
    for key in _LEAKY_ENV:
        monkeypatch.delenv(key, raising=False)


# The fake Telegram Bot API and fake model most suites use (cron and media keep their own).
@pytest.fixture
async def fake_tg() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeLLM]:
    fake = FakeLLM(default_text="ok")
    await fake.start()
    yield fake
    await fake.stop()

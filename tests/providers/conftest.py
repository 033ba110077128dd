"""Fake model servers for the provider and chat tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.gemini import FakeGemini
from tests.fakes.llm import FakeLLM


@pytest.fixture
async def anthropic_fake() -> AsyncIterator[FakeLLM]:
    fake = await FakeLLM(default_text="from anthropic").start()
    yield fake  # type: ignore[misc]
    await fake.stop()


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeLLM]:
    fake = await FakeLLM(default_text="from openai").start()
    yield fake  # type: ignore[misc]
    await fake.stop()


@pytest.fixture(autouse=True)
def _fast_failover(monkeypatch: pytest.MonkeyPatch) -> None:
    # Real retry timing (seconds to minutes) scaled down a thousandfold; counts stay real.
    monkeypatch.setenv("CLAWGATE_FAILOVER_TIME_SCALE", "0.001")


@pytest.fixture
async def gemini_fake() -> AsyncIterator[FakeGemini]:
    fake = await FakeGemini(default_text="from gemini").start()
    yield fake  # type: ignore[misc]
    await fake.stop()

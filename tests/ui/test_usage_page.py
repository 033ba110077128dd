"""The Control UI usage page in a real browser: totals, per-day chart and per-model table
match what the gateway recorded for real turns (fake Anthropic API with real usage)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import expect

from tests.fakes.context_llm import ContextFakeLLM
from tests.harness import chat, connected, live_gateway
from tests.ui.conftest import Watched, login, shot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module")
async def fake() -> AsyncIterator[ContextFakeLLM]:
    server = ContextFakeLLM(window=100_000)
    await server.start()
    yield server
    await server.stop()


async def test_usage_page_shows_totals_chart_and_models(
    tmp_path: Path, watched: Watched, fake: ContextFakeLLM
) -> None:
    config = {
        "gateway": {"mode": "local"},
        "models": {
            "providers": {
                "anthropic": {
                    "baseUrl": fake.url,
                    "apiKey": "sk-ant-test",
                    "models": [{"id": "claude-ui", "cost": {"input": 3, "output": 15}}],
                }
            }
        },
        "agents": {"defaults": {"model": {"primary": "anthropic/claude-ui"}}},
    }
    page = watched.page
    async with live_gateway(tmp_path, config) as live:
        async with connected(live) as client:
            for i in range(3):
                await chat(client, f"question {i} " + "x" * 400)
            cost = await client.call("usage.cost", {"days": 30, "agentScope": "all"})
        await login(page, live.http)
        await page.click("nav >> text=Usage")
        await page.wait_for_selector("#usage-chart")
        total = cost["totals"]["totalCost"]
        shown = await page.inner_text('[data-stat="Cost"]')
        assert shown == (f"${total:.4f}" if total < 1 else f"${total:.2f}")
        assert await page.locator("#usage-chart rect.bar").count() == 30
        today = cost["daily"][-1]["date"]
        height = await page.get_attribute(f'#usage-chart rect[data-date="{today}"]', "height")
        assert height is not None and float(height) > 0
        row = page.locator("#usage-models tbody tr", has_text="anthropic/claude-ui")
        cells = await row.locator("td").all_inner_texts()
        assert cells[1] == "3"
        assert (
            await page.locator("#usage-sessions tbody tr", has_text="agent:main:main").count() == 1
        )
        assert "null" not in await page.inner_text("#usage-body")
        await page.click("button[data-days='7']")
        # `expect` polls over the protocol: no string is evaluated in the page (its CSP forbids it).
        await expect(page.locator("#usage-chart rect.bar")).to_have_count(7)
        await shot(page, "usage")
        problems = await watched.problems()
        assert problems == {"csp": [], "console": [], "exceptions": []}, problems

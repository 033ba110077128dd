"""A first run in the browser: the login page says where the token is, the Overview flags
models whose provider has no key, the Channels page says "no token" for a tokenless block."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import live_gateway
from tests.ui.conftest import Watched, login, shot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def test_login_overview_and_channels_tell_a_new_user_what_is_missing(
    tmp_path: Path, watched: Watched, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_OAUTH_TOKEN", raising=False)
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    config = {
        "gateway": {"mode": "local"},
        "models": {"providers": {"openai": {"apiKey": "sk-test-key-0123456789"}}},
        "agents": {
            "defaults": {"model": {"primary": "anthropic/claude-x", "fallbacks": ["openai/gpt-y"]}}
        },
        "channels": {"telegram": {"dmPolicy": "pairing"}},  # the block, without a token
    }
    async with live_gateway(tmp_path, config) as live:
        page = watched.page
        await page.goto(live.http + "/")
        await page.wait_for_selector("#login:not([hidden])")
        await page.click("#token-help summary")
        help_text = await page.inner_text("#token-help")
        assert "OPENCLAW_GATEWAY_TOKEN" in help_text and "runtime-token" in help_text
        assert "python -m gateway doctor" in help_text
        await shot(page, "login-token-help")

        await login(page, live.http)
        await page.wait_for_selector("#model-list")
        keyless = page.locator('#model-list li[data-keyless="true"]')
        assert await keyless.count() == 1
        assert await keyless.get_attribute("data-model") == "anthropic/claude-x"
        assert "set ANTHROPIC_API_KEY (or models.providers.anthropic.apiKey)" in (
            await keyless.inner_text()
        )
        keyed = page.locator('#model-list li[data-model="openai/gpt-y"]')
        assert await keyed.get_attribute("data-keyless") == "false"
        assert "no API key" not in await keyed.inner_text()
        await shot(page, "overview-missing-key")

        await page.click("nav >> text=Channels")
        card = page.locator('#channel-status [data-channel="telegram"]')
        await card.locator("text=no token").wait_for()
        assert "not configured" not in await card.inner_text()
        await shot(page, "channels-no-token")
    problems = await watched.problems()
    assert problems == {"csp": [], "console": [], "exceptions": []}, problems

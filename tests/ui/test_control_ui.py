"""The Control UI in a real browser against the real gateway (and a fake model server)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import json5
import pytest
import pytest_asyncio
from playwright.async_api import expect

from gateway import logs
from tests.channels.conftest import _fast_telegram, gateway_config, telegram_gateway
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram
from tests.harness import TOKEN, live_gateway
from tests.ui.conftest import Watched, login, shot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]
__all__ = ["_fast_telegram"]  # the channels suite's short Telegram polls, as a fixture here

HOSTILE = (
    "Here is **bold** and `code`.\n\n"
    '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">\n\n'
    "[click](javascript:window.__pwned=3) and [docs](https://example.org/)"
)


@pytest_asyncio.fixture(loop_scope="module")
async def fake() -> AsyncIterator[FakeLLM]:
    server = await FakeLLM(default_text="hello from the fake model").start()
    yield server  # type: ignore[misc]
    await server.stop()


def model_config(fake: FakeLLM) -> dict[str, Any]:
    return {
        "gateway": {"mode": "local"},
        "models": {"providers": {"openai": {"baseUrl": fake.url + "/v1", "apiKey": "sk-test"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-test"}}},
    }


async def assert_clean(w: Watched) -> None:
    problems = await w.problems()
    assert problems == {"csp": [], "console": [], "exceptions": []}, problems


async def test_login_overview_csp_and_session_storage(tmp_path: Path, watched: Watched) -> None:
    page = watched.page
    async with live_gateway(tmp_path, {"gateway": {"mode": "local"}}) as live:
        resp = await page.goto(live.http + "/")
        assert resp is not None
        csp = (await resp.all_headers())["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'self'" in csp
        assert "unsafe-inline" not in csp
        await page.wait_for_selector("#login:not([hidden])")
        await shot(page, "login")
        await login(page, live.http)
        await page.wait_for_selector("text=Agents and model chain")
        overview = await page.inner_text("#page")
        assert live.gateway.version in overview and "loopback" in overview
        assert "token" in overview and "MB (this process)" in overview
        await shot(page, "overview")
        stored = await page.evaluate(
            "[sessionStorage.getItem('clawgate.auth'), localStorage.getItem('clawgate.auth')]"
        )
        assert TOKEN in stored[0] and stored[1] is None
        # A reload logs straight back in from sessionStorage.
        await page.reload()
        await page.wait_for_selector('#conn[data-state="connected"]')
        await page.wait_for_selector("#nav:not([hidden])")
        await assert_clean(watched)


async def test_wrong_token_shows_the_gateways_reason(tmp_path: Path, watched: Watched) -> None:
    page = watched.page
    async with live_gateway(tmp_path) as live:
        await page.goto(live.http + "/")
        await page.fill("#secret", "wrong-token")
        await page.click("#login-submit")
        error = await page.wait_for_selector("#login-error:not([hidden])")
        assert error is not None
        assert "gateway token mismatch" in await error.inner_text()
        assert await page.get_attribute("#conn", "data-state") == "auth-failed"
        assert await page.evaluate("sessionStorage.getItem('clawgate.auth')") is None
        await shot(page, "login-wrong-token")
        await assert_clean(watched)


async def test_reconnects_after_the_socket_drops(tmp_path: Path, watched: Watched) -> None:
    page = watched.page
    async with live_gateway(tmp_path) as live:
        await login(page, live.http, remember=True)
        assert TOKEN in await page.evaluate("localStorage.getItem('clawgate.auth')")
        for conn in list(live.gateway.connections):
            await conn.close(1012, "test restart")
        await page.wait_for_selector('#conn[data-state="reconnecting"]')
        await page.wait_for_selector('#conn[data-state="connected"]')
        await page.click("#logout")
        await page.wait_for_selector("#login:not([hidden])")
        assert await page.evaluate("localStorage.getItem('clawgate.auth')") is None


async def test_chat_streams_reply_renders_markdown_safely(
    tmp_path: Path, watched: Watched, fake: FakeLLM
) -> None:
    page = watched.page
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda data: frames.append(str(data))))
    fake.script.append({"text": HOSTILE})
    async with live_gateway(tmp_path, model_config(fake)) as live:
        await login(page, live.http)
        await page.click("nav >> text=Chat")
        await page.wait_for_selector("#chat-agent option[value=main]", state="attached")
        await page.fill("#chat-input", "Say something dangerous")
        await page.keyboard.press("Enter")
        reply = await page.wait_for_selector(".msg.assistant:not(.streaming) >> text=bold")
        assert reply is not None
        text = await reply.evaluate("el => el.closest('.msg').innerText")
        assert "<script>window.__pwned = 1</script>" in text
        assert '<img src=x onerror="window.__pwned = 2">' in text
        assert await page.evaluate("window.__pwned") is None
        assert await page.locator(".messages script, .messages img").count() == 0
        assert await page.locator(".msg.assistant strong", has_text="bold").count() == 1
        assert await page.locator(".msg.assistant a[href^='javascript']").count() == 0
        assert await page.locator(".msg.assistant a[href='https://example.org/']").count() == 1
        assert any('"state":"delta"' in f for f in frames), "no streamed delta reached the page"
        request = fake.bodies[-1]
        assert request["messages"][-1]["content"] == "Say something dangerous"
        await shot(page, "chat")

        # History survives a reload.
        await page.reload()
        await page.wait_for_selector('#conn[data-state="connected"]')
        await page.wait_for_selector(".msg.user >> text=Say something dangerous")
        await page.wait_for_selector(".msg.assistant >> text=bold")
        assert await page.evaluate("window.__pwned") is None

        # Sessions: listed with its message count, opens read-only, resets after confirming.
        await page.click("nav >> text=Sessions")
        row = page.locator("#sessions-table tbody tr", has_text="agent:main:main")
        await row.wait_for()
        cells = await row.locator("td").all_inner_texts()
        assert cells[1] == "main" and int(cells[4]) >= 2
        await row.locator("button", has_text="Open").click()
        await page.wait_for_selector("#session-viewer >> text=Say something dangerous")
        await shot(page, "sessions")
        await row.locator("button", has_text="Reset").click()
        await page.wait_for_selector("dialog#confirm[open]")
        await page.click("#confirm-ok")
        await page.wait_for_selector("#toast >> text=Reset done")
        await assert_clean(watched)


async def test_abort_a_running_reply(tmp_path: Path, watched: Watched, fake: FakeLLM) -> None:
    page = watched.page
    fake.script.append({"delay": 5, "text": "too late"})
    async with live_gateway(tmp_path, model_config(fake)) as live:
        await login(page, live.http)
        await page.goto(live.http + "/#/chat")
        await page.wait_for_selector("#chat-agent option[value=main]", state="attached")
        await page.fill("#chat-input", "take your time")
        await page.click("#chat-send")
        await page.wait_for_selector("#chat-abort:not([disabled])")
        await fake.wait_until(lambda reqs: len(reqs) >= 1)
        await page.click("#chat-abort")
        await page.wait_for_selector(".msg.assistant >> text=(aborted)")
        assert await page.is_disabled("#chat-abort")


async def test_config_validation_error_then_valid_save(
    tmp_path: Path, watched: Watched, fake: FakeLLM
) -> None:
    page = watched.page
    async with live_gateway(tmp_path, model_config(fake)) as live:
        path = tmp_path / "openclaw.json"
        await login(page, live.http)
        await page.click("nav >> text=Config")
        await page.wait_for_selector("#config-meta >> text=hash")
        raw = await page.input_value("#config-editor")
        assert "sk-test" not in raw and "__OPENCLAW_REDACTED__" in raw

        # A typo is refused and shown next to its line.
        bad = raw.replace('"mode": "local"', '"mode": "local",\n    "bogusKey": true')
        await page.fill("#config-editor", bad)
        await page.click("#config-save")
        issue = page.locator(".issue", has_text="bogusKey")
        await issue.wait_for()
        line = next(i for i, t in enumerate(bad.splitlines(), 1) if "bogusKey" in t)
        assert f"line {line}" in await issue.inner_text()
        marked = await page.locator(".gutter .ln.err").all_inner_texts()
        assert marked == [str(line)]
        await shot(page, "config-invalid")
        assert "bogusKey" not in path.read_text()

        # Someone else changes the file: the save is refused, not overwritten.
        await page.fill("#config-editor", raw)
        path.write_text(path.read_text().replace("gpt-test", "gpt-other"))
        await page.click("#config-save")
        await page.wait_for_selector("#config-result >> text=changed on the gateway")
        assert "gpt-other" in path.read_text()
        await page.click("#config-reload")
        # `expect` polls over the protocol: no string is evaluated in the page (its CSP forbids it).
        await expect(page.locator("#model-primary")).to_have_value("openai/gpt-other")

        # The model chain form saves a valid change, applied live.
        await page.fill("#model-primary", "openai/gpt-test")
        await page.fill("#model-fallbacks", "anthropic/claude-test, openai/gpt-mini")
        await page.click("#model-save")
        await page.wait_for_selector("#config-result >> text=Applied live")
        saved = json5.loads(path.read_text())
        assert saved["agents"]["defaults"]["model"] == {
            "primary": "openai/gpt-test",
            "fallbacks": ["anthropic/claude-test", "openai/gpt-mini"],
        }
        assert saved["models"]["providers"]["openai"]["apiKey"] == "sk-test"
        assert (tmp_path / "openclaw.json.bak").exists()
        model = live.gateway.loaded.config.agents.defaults.model
        assert model is not None and not isinstance(model, str)
        assert model.fallbacks == ["anthropic/claude-test", "openai/gpt-mini"]
        await shot(page, "config")
        await page.click("nav >> text=Overview")
        await page.wait_for_selector(
            "text=openai/gpt-test → anthropic/claude-test → openai/gpt-mini"
        )
        await assert_clean(watched)


async def test_approve_a_telegram_pairing_request(
    tmp_path: Path, watched: Watched, fake: FakeLLM, _fast_telegram: None
) -> None:
    # The whole flow with the real Telegram channel against the fake Bot API: an unknown DM
    # gets a code, the operator approves it in the browser, the next DM reaches the agent.
    tg = FakeTelegram()
    await tg.start()
    try:
        cfg = gateway_config(tg, fake)
        async with telegram_gateway(tmp_path, cfg) as live:
            tg.text_update("hello?", user_id=4242, chat_id=4242, first_name="Alice")
            await tg.wait_for("sendMessage", lambda p: str(p["chat_id"]) == "4242")
            tg.text_update("me too", user_id=5151, chat_id=5151, first_name="Mallory")
            await tg.wait_for("sendMessage", lambda p: str(p["chat_id"]) == "5151")
            page = watched.page
            await login(page, live.http)
            await page.click("nav >> text=Channels")
            await page.wait_for_selector("#page >> text=connected")
            alice = page.locator(".request", has_text="4242")
            await alice.wait_for()
            await shot(page, "channels")
            mallory = page.locator(".request", has_text="5151")
            await mallory.locator("button", has_text="Dismiss").click()
            await page.click("#confirm-ok")
            await page.wait_for_selector("#toast >> text=Request dismissed")
            await alice.locator("button", has_text="Approve").click()
            await page.wait_for_selector("#toast >> text=Approved")
            await page.wait_for_selector("#pairing >> text=No pending requests")
            fake.script.append({"text": "welcome, Alice"})
            tg.text_update("now?", user_id=4242, chat_id=4242, first_name="Alice")
            reply = await tg.wait_for(
                "sendMessage", lambda p: str(p["chat_id"]) == "4242" and "welcome" in p["text"]
            )
            assert reply["text"] == "welcome, Alice"
            await assert_clean(watched)
    finally:
        await tg.stop()


async def test_logs_tail_with_level_filter(tmp_path: Path, watched: Watched) -> None:
    page = watched.page
    logger = logging.getLogger("gateway.uitest")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(logs.tail)
    try:
        async with live_gateway(tmp_path) as live:
            await login(page, live.http)
            logger.info("ui test info line")
            logger.error("ui test error line")
            await page.click("nav >> text=Logs")
            await page.wait_for_selector("#logs >> text=ui test error line")
            await page.wait_for_selector("#logs >> text=ui test info line")
            logger.warning("a live warning arrives")
            await page.wait_for_selector("#logs >> text=a live warning arrives")
            await shot(page, "logs")
            await page.select_option("#logs-level", "error")
            await page.wait_for_selector("#logs >> text=ui test error line")
            assert "ui test info line" not in await page.inner_text("#logs")
            await assert_clean(watched)
    finally:
        logger.removeHandler(logs.tail)
        logger.propagate = True


async def test_phone_width_base_path_and_keyboard(tmp_path: Path, watched: Watched) -> None:
    page = watched.page
    await page.set_viewport_size({"width": 390, "height": 800})
    config = {"gateway": {"mode": "local", "controlUi": {"basePath": "/openclaw"}}}
    async with live_gateway(tmp_path, config) as live:
        await page.goto(live.http + "/openclaw/")
        await page.wait_for_selector("#secret")
        # Keyboard only: focus the secret, type, press Enter.
        await page.focus("#secret")
        await page.keyboard.type(TOKEN)
        await page.keyboard.press("Enter")
        await page.wait_for_selector('#conn[data-state="connected"]')
        await page.wait_for_selector("text=Agents and model chain")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"page is {width}px wide at phone width"
        await shot(page, "overview-phone")
        await page.keyboard.press("Tab")
        await page.keyboard.press("Tab")
        focused = await page.evaluate("document.activeElement.textContent")
        assert focused in {"Overview", "Chat", "Skip to content"}
        await assert_clean(watched)

"""The Control UI chat shows each tool call as a collapsed card, live and from history."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

import tests.agents.loop_tools as lt
from tests.agents.loop_tools import write_then_read
from tests.fakes.llm import FakeLLM
from tests.harness import live_gateway
from tests.ui.conftest import Watched, login, shot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(autouse=True)
def _test_tools() -> Iterator[None]:
    with lt.registered():
        yield


@pytest_asyncio.fixture(loop_scope="module")
async def fake() -> AsyncIterator[FakeLLM]:
    server = FakeLLM(default_text="done")
    await server.start()
    yield server
    await server.stop()


async def test_tool_calls_show_as_collapsed_cards(
    tmp_path: Path, watched: Watched, fake: FakeLLM
) -> None:
    page = watched.page
    fake.responder = write_then_read
    config = {
        "gateway": {"mode": "local"},
        "models": {"providers": {"openai": {"baseUrl": fake.url + "/v1", "apiKey": "sk-test"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-test"}}},
    }
    async with live_gateway(tmp_path, config) as live:
        await login(page, live.http)
        await page.goto(live.http + "/#/chat")
        await page.wait_for_selector("#chat-agent option[value=main]", state="attached")
        await page.fill("#chat-input", "write a note, then read it back")
        await page.keyboard.press("Enter")
        await page.wait_for_selector(".msg.assistant:not(.streaming) >> text=The note says")
        write = page.locator('details.tool[data-tool="test_write"]')
        await write.wait_for()
        assert await write.get_attribute("data-status") == "ok"
        assert await write.get_attribute("open") is None  # collapsed
        assert not await write.locator(".tool-args").is_visible()
        await write.locator("summary").click()
        assert '"content": "buy milk"' in await write.locator(".tool-args").inner_text()
        assert await write.locator(".tool-result").inner_text() == "wrote 8 bytes to notes/todo.md"
        assert "ms" in await write.locator(".tool-state").inner_text()
        read = page.locator('details.tool[data-tool="test_read"]')
        assert await read.locator(".tool-result").text_content() == "buy milk"
        await shot(page, "chat-tools")

        # The same cards come back from chat.history after a reload, results matched by id.
        await page.reload()
        await page.wait_for_selector('#conn[data-state="connected"]')
        cards = page.locator("details.tool")
        await page.wait_for_selector('details.tool[data-tool="test_read"][data-status="ok"]')
        assert await cards.count() == 2
        assert await cards.nth(1).locator(".tool-result").text_content() == "buy milk"

        # A failed call is marked as an error.
        fake.responder = None
        fake.script += [
            {"tool_calls": [{"name": "test_read", "arguments": {"path": "nope.md"}}]},
            {"text": "it is missing"},
        ]
        await page.fill("#chat-input", "read nope.md")
        await page.keyboard.press("Enter")
        await page.wait_for_selector(".msg.assistant:not(.streaming) >> text=it is missing")
        failed = page.locator('details.tool[data-status="error"]')
        await failed.wait_for()
        assert "error" in (await failed.locator(".tool-state").text_content() or "")
        problems = await watched.problems()
        assert problems == {"csp": [], "console": [], "exceptions": []}, problems

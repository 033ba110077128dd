"""Control UI: attach pictures and files in chat (picker, paste, drop); history shows them."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.fakes.llm import FakeLLM
from tests.harness import live_gateway
from tests.media.samples import png
from tests.ui.conftest import Watched, login, shot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module")
async def fake() -> AsyncIterator[FakeLLM]:
    server = FakeLLM(default_text="I see it")
    await server.start()
    yield server
    await server.stop()


async def test_attach_send_and_see_in_history(
    tmp_path: Path, watched: Watched, fake: FakeLLM
) -> None:
    page = watched.page
    picture = png(48, 32, (20, 160, 40))
    files = tmp_path / "files"
    files.mkdir()
    (files / "leaf.png").write_bytes(picture)
    config = {
        "gateway": {"mode": "local"},
        "models": {"providers": {"openai": {"baseUrl": fake.url + "/v1", "apiKey": "sk-test"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-test"}}},
    }
    async with live_gateway(tmp_path, config) as live:
        await login(page, live.http)
        await page.goto(live.http + "/#/chat")
        await page.wait_for_selector("#chat-agent option[value=main]", state="attached")
        # The picker…
        await page.set_input_files("#chat-file", str(files / "leaf.png"))
        await page.wait_for_selector('#chat-attachments .chip[data-name="leaf.png"]')
        # …and a paste of a text file (the clipboard route the composer listens to).
        await page.evaluate(
            """() => {
              const data = new DataTransfer();
              data.items.add(new File(["alpha beta"], "notes.txt", { type: "text/plain" }));
              const ev = new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true });
              document.querySelector("#chat-input").dispatchEvent(ev);
            }"""
        )
        await page.wait_for_selector('#chat-attachments .chip[data-name="notes.txt"]')
        await page.fill("#chat-input", "what is in these?")
        await page.keyboard.press("Enter")
        await page.wait_for_selector(".msg.assistant:not(.streaming) >> text=I see it")
        assert await page.locator("#chat-attachments .chip").count() == 0
        body = fake.bodies[-1]
        [image] = fake.images(body)
        assert (
            image["image_url"]["url"]
            == "data:image/png;base64," + base64.b64encode(picture).decode()
        )
        assert "alpha beta" in str(body["messages"])

        # A drop onto the composer attaches too (removed again before sending).
        await page.evaluate(
            """() => {
              const data = new DataTransfer();
              data.items.add(new File(["x"], "dropped.txt", { type: "text/plain" }));
              const form = document.querySelector("form.composer");
              form.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
            }"""
        )
        chip = page.locator('#chat-attachments .chip[data-name="dropped.txt"]')
        await chip.wait_for()
        await chip.locator("button").click()
        assert await page.locator("#chat-attachments .chip").count() == 0

        # After a reload the picture comes from history through its signed same-origin URL.
        await page.reload()
        await page.wait_for_selector('#conn[data-state="connected"]')
        img = page.locator(".msg.user .media-strip img")
        await img.wait_for()
        await page.wait_for_function(
            "() => { const i = document.querySelector('.msg.user .media-strip img'); "
            "return i && i.complete && i.naturalWidth === 48; }"
        )
        src = await img.get_attribute("src") or ""
        assert src.startswith("/__clawgate/media/sessions/") and "sig=" in src
        link = page.locator(".msg.user .media-strip a.media-file")
        assert await link.inner_text() == "notes.txt"
        await shot(page, "chat-attachments")
        problems = await watched.problems()
        assert problems == {"csp": [], "console": [], "exceptions": []}, problems

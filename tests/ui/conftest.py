"""Control UI browser tests: Debian chromium driven by Playwright (testing.md §5).

One browser per test module (module-scoped loop); each test gets a fresh page and its own live
gateway. Every page's CSP violations, console errors and uncaught exceptions are collected and
must be empty. Screenshots go to `test-output/ui/`.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from tests.harness import ROOT, TOKEN

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
CHROMIUM_PRESENT = Path(CHROMIUM).exists()
SHOTS = ROOT / "test-output" / "ui"
TIMEOUT_MS = 10_000

_WATCH = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM_PRESENT:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/test does this)")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        await b.close()


class Watched:
    """A page plus everything the browser complained about while it was open."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        page.on(
            "console",
            lambda msg: self.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))

    async def problems(self) -> dict[str, Any]:
        csp = await self.page.evaluate("window.__cspViolations || []")
        # A refused WebSocket login logs a console error by design; everything else counts.
        console = [e for e in self.console_errors if "WebSocket" not in e]
        return {"csp": csp, "console": console, "exceptions": self.page_errors}


@pytest_asyncio.fixture(loop_scope="module")
async def watched(browser: Browser) -> AsyncIterator[Watched]:
    context = await browser.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    await context.add_init_script(_WATCH)
    page = await context.new_page()
    w = Watched(page)
    yield w
    await context.close()


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    # The header is sticky: from the top, a full-page shot shows it where it belongs.
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def login(page: Page, base: str, secret: str = TOKEN, remember: bool = False) -> None:
    await page.goto(base + "/")
    await page.fill("#secret", secret)
    if remember:
        await page.check("#remember")
    await page.click("#login-submit")
    await page.wait_for_selector('#conn[data-state="connected"]')

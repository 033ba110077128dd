"""The Automations page in a real browser: create a job, disable/enable it, run it now and read
its history; bad input shows the gateway's reason."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.fakes.llm import FakeLLM
from tests.harness import live_gateway
from tests.ui.conftest import Watched, login, shot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module")
async def fake() -> AsyncIterator[FakeLLM]:
    server = await FakeLLM(default_text="the agenda is ready").start()
    yield server  # type: ignore[misc]
    await server.stop()


def model_config(fake: FakeLLM) -> dict[str, Any]:
    return {
        "gateway": {"mode": "local"},
        "models": {"providers": {"openai": {"baseUrl": fake.url + "/v1", "apiKey": "sk-test"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-test"}}},
    }


async def test_create_toggle_run_and_history(
    tmp_path: Path, watched: Watched, fake: FakeLLM
) -> None:
    page = watched.page
    async with live_gateway(tmp_path, model_config(fake)) as live:
        await login(page, live.http)
        await page.click('#nav a[data-page="automations"]')
        await page.wait_for_selector("#cron-jobs >> text=No jobs yet")

        # Bad input: the gateway's reason is shown, nothing is created.
        await page.fill('#cron-form input[name="name"]', "standup")
        await page.select_option('#cron-form select[name="kind"]', "cron")
        await page.fill('#cron-form input[name="when"]', "61 9 * * 1-5")
        await page.fill('#cron-form textarea[name="message"]', "Post the standup agenda")
        await page.click('#cron-form button[type="submit"]')
        assert "invalid cron expression" in await page.inner_text("#cron-form-error:not([hidden])")

        await page.fill('#cron-form input[name="when"]', "0 9 * * 1-5")
        await page.fill('#cron-form input[name="tz"]', "Europe/Berlin")
        await page.click('#cron-form button[type="submit"]')
        row = '#cron-jobs tr[data-name="standup"]'
        assert "cron 0 9 * * 1-5 (Europe/Berlin)" in await page.inner_text(row)
        svc = live.gateway.extensions["cron"]
        (job,) = svc.jobs.values()
        assert job.spec.enabled and job.state.next_run_at_ms is not None

        await page.click('#cron-jobs tr[data-name="standup"] button.toggle')
        await page.wait_for_selector('#cron-jobs tr[data-name="standup"][data-enabled="false"]')
        assert not svc.jobs[job.id].spec.enabled
        await page.click('#cron-jobs tr[data-name="standup"] button.toggle')
        await page.wait_for_selector('#cron-jobs tr[data-name="standup"][data-enabled="true"]')

        await page.click('#cron-jobs tr[data-name="standup"] button.run')
        await page.wait_for_selector('#cron-jobs tr[data-name="standup"] td.last >> text=ok')
        await page.click('#cron-jobs tr[data-name="standup"] button.history')
        run = '#cron-history tr.run[data-status="ok"]'
        assert "the agenda is ready" in await page.inner_text(run)
        await shot(page, "automations")
        problems = await watched.problems()
        assert problems == {"csp": [], "console": [], "exceptions": []}, problems

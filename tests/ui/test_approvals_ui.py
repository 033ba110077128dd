"""The Control UI's exec approval card against a real gateway: an exec waiting for approval
shows its command; Approve runs it, Deny refuses it (tools.md §3.4)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.agents.tools.registry import ToolOutput
from tests.agents.tools.helpers import call, config, context, error_of
from tests.harness import live_gateway
from tests.ui.conftest import Watched, login, shot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def test_approve_and_deny_from_the_control_ui(tmp_path: Path, watched: Watched) -> None:
    page = watched.page
    async with live_gateway(tmp_path, {"gateway": {"mode": "local"}}) as live:
        await login(page, live.http)
        ctx = context(tmp_path / "workspace", config({"tools": {"exec": {"mode": "ask"}}}))
        ctx.gateway = live.gateway

        task: asyncio.Task[ToolOutput] = asyncio.create_task(
            call(ctx, "exec", command="echo from-the-ui > approved.txt; cat approved.txt")
        )
        card = page.locator("#exec-approvals .approval")
        await card.wait_for()
        assert "echo from-the-ui > approved.txt" in await card.locator("pre").inner_text()
        await shot(page, "exec-approval")
        await card.locator("button.approval-allow").click()
        out = await asyncio.wait_for(task, 10)
        assert out.text == "from-the-ui\n"
        await page.wait_for_selector("#exec-approvals", state="hidden")

        task = asyncio.create_task(call(ctx, "exec", command="touch denied.txt"))
        await card.wait_for()
        await card.locator("button.approval-deny").click()
        assert "user-denied" in error_of(await asyncio.wait_for(task, 10))
        assert not (ctx.workspace / "denied.txt").exists()
        await page.wait_for_selector("#exec-approvals", state="hidden")
        problems = await watched.problems()
        assert problems == {"csp": [], "console": [], "exceptions": []}, problems

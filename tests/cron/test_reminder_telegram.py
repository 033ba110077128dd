"""'Remind me in 2 minutes' from Telegram: the automations tool creates a one-shot whose result
is delivered to that chat at the right time (real PTB ↔ fake Bot API, fake model, hand clock)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.agents.tools import load
from gateway.agents.tools.policy import allowed_tools
from gateway.agents.tools.registry import Requester, ToolContext, ToolOutput, invoke
from providers.types import ToolCall
from tests.cron.conftest import T0, CronRig, cron_rig, telegram_config, wait_telegram
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram

CHAT = "42"
DM_KEY = "agent:main:main"


def tool_context(rig: CronRig, tmp_path: Path, *, owner: bool = True) -> ToolContext:
    requester = Requester(
        owner=owner,
        channel="telegram",
        chat_type="direct",
        chat_id=CHAT,
        account_id="default",
        sender_id=CHAT,
    )
    return ToolContext(
        agent_id="main",
        session_key=DM_KEY,
        run_id="run-1",
        workspace=tmp_path,
        config=rig.live.gateway.loaded.config,
        requester=requester,
        gateway=rig.live.gateway,
    )


async def automations(ctx: ToolContext, **arguments: Any) -> ToolOutput:
    allowed = allowed_tools(ctx.config, ctx.agent_id, ctx.requester, load())
    return await invoke(ToolCall("call-1", "automations", arguments), allowed, ctx)


def to_chat(params: dict[str, Any]) -> bool:
    return bool(params.get("chat_id") == CHAT)


async def test_reminder_in_two_minutes_arrives_in_the_chat(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    async with cron_rig(tmp_path, telegram_config(fake_tg, fake_llm)) as rig:
        await wait_telegram(rig)
        ctx = tool_context(rig, tmp_path)
        out = await automations(
            ctx,
            action="add",
            job={
                "name": "stretch",
                "schedule": {"kind": "at", "at": "2m"},
                "payload": {"kind": "agentTurn", "message": "Remind the user to stretch."},
            },
        )
        assert not out.is_error, out.text
        job = dict(out.details["result"])
        assert job["state"]["nextRunAtMs"] == T0 + 120_000
        assert job["delivery"] == {
            "mode": "announce",
            "channel": "telegram",
            "to": CHAT,
            "accountId": "default",
        }
        assert job["owner"] == {"agentId": "main", "sessionKey": DM_KEY, "accountId": "default"}
        assert job["scheduledToolPolicy"]["mode"] == "account"
        assert "automations" in job["payload"]["toolsAllow"]

        fake_llm.script.append({"text": "Time to stretch! 🧘"})
        assert await rig.advance(119_000) == []
        assert [c for c in fake_tg.calls("sendMessage") if to_chat(c)] == []
        fired = await rig.advance(1_000)
        assert len(fired) == 1
        sent = await fake_tg.wait_for("sendMessage", to_chat, timeout=10)
        assert "Time to stretch!" in sent["text"]
        # The model was asked in the creator's conversation, at the slot.
        assert "Remind the user to stretch." in str(fake_llm.bodies[-1]["messages"][-1])

        runs = await rig.call("cron.runs", {"id": job["id"]})
        (entry,) = runs["entries"]
        assert entry["status"] == "ok" and entry["deliveryStatus"] == "delivered"
        assert entry["delivery"]["resolved"]["to"] == CHAT
        # A delivered one-shot is deleted; nothing fires again.
        assert (await rig.call("cron.list", {"includeDisabled": True}))["total"] == 0
        assert await rig.advance(3_600_000) == []
        assert len([c for c in fake_tg.calls("sendMessage") if to_chat(c)]) == 1


async def test_strangers_do_not_get_the_tool(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    async with cron_rig(tmp_path, telegram_config(fake_tg, fake_llm)) as rig:
        ctx = tool_context(rig, tmp_path, owner=False)
        assert "automations" not in allowed_tools(ctx.config, "main", ctx.requester, load())
        out = await automations(ctx, action="list")
        assert out.is_error and "not found or not allowed" in out.text
        assert rig.svc.jobs == {}


async def test_channel_failures_are_retried_then_recorded(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    async with cron_rig(tmp_path, telegram_config(fake_tg, fake_llm)) as rig:
        await wait_telegram(rig)
        ctx = tool_context(rig, tmp_path)
        # First fire: one failed send, then the retry succeeds — delivered exactly once.
        fake_tg.fail_next("sendMessage", 400, "Bad Request: chat not found")
        fake_llm.script.append({"text": "first reminder"})
        out = await automations(
            ctx,
            action="add",
            job={"schedule": "1m", "payload": {"kind": "agentTurn", "message": "one"}},
        )
        assert not out.is_error, out.text
        await rig.advance(60_000)
        sent = [c for c in fake_tg.calls("sendMessage") if c.get("text") == "first reminder"]
        assert len(sent) == 2  # the failed attempt and the retry
        statuses = [r.get("status") for r in fake_tg.requests if r["method"] == "sendMessage"]
        assert statuses.count(200) == 1

        # Second: the chat keeps failing → recorded not-delivered, job kept disabled.
        for _ in range(4):
            fake_tg.fail_next("sendMessage", 400, "Bad Request: chat not found")
        fake_llm.script.append({"text": "second reminder"})
        out = await automations(
            ctx,
            action="add",
            job={"schedule": "1m", "payload": {"kind": "agentTurn", "message": "two"}},
        )
        job_id = out.details["result"]["id"]
        await rig.advance(60_000)
        (entry,) = (await rig.call("cron.runs", {"id": job_id}))["entries"]
        assert entry["status"] == "ok" and entry["deliveryStatus"] == "not-delivered"
        assert entry["completionStatus"] == "failed"
        assert "chat not found" in entry["deliveryError"].lower()
        kept = await rig.call("cron.get", {"id": job_id})
        assert kept["enabled"] is False and kept["state"]["lastDeliveryStatus"] == "not-delivered"

"""Issue 16, done means: from Telegram, "remind me in 2 minutes to stretch" — the model calls
the real `automations` tool, the user gets a confirmation, the gateway process is restarted,
and two minutes after the request the reminder arrives in that chat, exactly once.

The first gateway is a real `python -m gateway` process on the system clock; after it stops,
the second one (in this process) runs the scheduler on a hand-driven clock that starts where
real time is, so nobody waits two minutes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from gateway.cron import service as cron_service
from gateway.cron.clock import ManualClock
from gateway.cron.service import CronService
from tests.e2e.conftest import OWNER, config, to_chat
from tests.e2e.script import Turn, call, responder
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram
from tests.harness import (
    TOKEN,
    free_port,
    gateway_env,
    live_gateway,
    start_process,
    stop_process,
    wait_healthy,
)

REMINDER = "⏰ Time to stretch!"


def reminders(turn: Turn) -> dict[str, Any]:
    if "remind me in 2 minutes" in turn.user:
        if not turn.steps:
            job = {
                "name": "stretch",
                "schedule": {"kind": "at", "at": "2m"},
                "payload": {"kind": "agentTurn", "message": "Remind the user to stretch."},
            }
            return call("automations", action="add", job=job)
        made = json.loads(turn.steps[-1][2])
        return {"text": f"Okay! I'll remind you to stretch (job {made['id']})."}
    if "Remind the user to stretch." in turn.user:
        return {"text": REMINDER}
    return {"text": "ok"}


@contextlib.asynccontextmanager
async def manual_clock(start_ms: int) -> AsyncIterator[ManualClock]:
    clock = ManualClock(start_ms)
    saved = cron_service.make_clock
    cron_service.make_clock = lambda: clock
    try:
        yield clock
    finally:
        cron_service.make_clock = saved


def sent(tg: FakeTelegram, text: str) -> list[dict[str, Any]]:
    return [c for c in tg.calls("sendMessage") if to_chat(OWNER)(c) and text in c["text"]]


async def test_reminder_survives_a_restart_and_arrives_once(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_llm.responder = responder(reminders)
    cfg = config(fake_llm, fake_tg)
    (tmp_path / "openclaw.json").write_text(json.dumps(cfg))
    port = free_port()
    env = gateway_env(tmp_path, OPENCLAW_GATEWAY_TOKEN=TOKEN)
    proc = start_process(["--port", str(port), "--bind", "loopback"], env)
    try:
        await asyncio.to_thread(wait_healthy, port, proc, 15)
        asked_ms = int(time.time() * 1000)
        fake_tg.text_update("remind me in 2 minutes to stretch")
        confirmation = await fake_tg.wait_for(
            "sendMessage", lambda p: to_chat(OWNER)(p) and "remind you" in p["text"], timeout=15
        )
    finally:
        log = await asyncio.to_thread(stop_process, proc)
    assert proc.returncode == 0, log
    assert "Okay! I'll remind you to stretch" in confirmation["text"]
    jobs = json.loads((tmp_path / "cron" / "jobs.json").read_text())["jobs"]
    (job,) = jobs
    assert job["delivery"]["channel"] == "telegram" and job["delivery"]["to"] == str(OWNER)
    state = json.loads((tmp_path / "cron" / "jobs-state.json").read_text())["jobs"][job["id"]]
    due_ms = state["state"]["nextRunAtMs"]
    assert 120_000 <= due_ms - asked_ms < 125_000, (due_ms - asked_ms, state)

    # The restart: a minute has passed.
    async with manual_clock(asked_ms + 60_000) as clock, live_gateway(tmp_path, cfg) as live:
        runner = live.gateway.extensions["channels"].get("telegram").runner
        await runner.wait_for_status(lambda s: s.connected)
        svc: CronService = live.gateway.extensions["cron"]
        await clock.set(due_ms - 1_000)
        assert await svc.tick() == []
        await svc.wait_idle()
        assert sent(fake_tg, REMINDER) == []
        await clock.set(due_ms)  # two minutes after the request
        (fired,) = await svc.tick()
        assert job["id"] in fired
        await svc.wait_idle()
        await fake_tg.wait_for("sendMessage", lambda p: REMINDER in p.get("text", ""))
        await clock.advance(3_600_000)
        assert await svc.tick() == []
        await svc.wait_idle()
    assert len(sent(fake_tg, REMINDER)) == 1

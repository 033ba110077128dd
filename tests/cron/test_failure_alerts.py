"""Failure alerts in a real gateway (hand clock, real scheduler, python-telegram-bot against the
fake Bot API, a real webhook receiver): the threshold, one alert per incident, the cooldown,
the reset on success with its recovery notice, skipped runs, webhooks behind the SSRF guard,
the auto-disable notice, and routes refused at creation."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.logs import scrubber
from tests.compat.reference import validate
from tests.cron.conftest import CronRig, cron_rig, telegram_config, wait_telegram
from tests.cron.test_heartbeat import heartbeat_config, heartbeat_file
from tests.fakes.base import LoopbackServer
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram

MIN = 60_000
CHAT = "42"
SECRET = "sk-alert-secret-0123456789"


pytestmark = pytest.mark.usefixtures("fast_failover")


class HookReceiver(LoopbackServer):
    """Records every POST (headers and JSON body) and answers `status`."""

    def __init__(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        super().__init__(app)
        self.status = 200

    async def _hook(self, request: web.Request) -> web.Response:
        await self.record({"headers": dict(request.headers), "body": await request.json()})
        return web.json_response({"ok": True}, status=self.status)


@pytest.fixture
async def hooks() -> AsyncIterator[HookReceiver]:
    server = HookReceiver()
    await server.start()
    yield server
    await server.stop()


def report_job(**extra: Any) -> dict[str, Any]:
    return {
        "name": "nightly report",
        "schedule": {"kind": "every", "everyMs": 10 * MIN},
        "sessionTarget": "isolated",
        "wakeMode": "now",
        "payload": {"kind": "agentTurn", "message": "write the report"},
        "delivery": {"mode": "announce", "channel": "telegram", "to": CHAT},
        **extra,
    }


def alerts_sent(tg: FakeTelegram, chat: str = CHAT) -> list[str]:
    return [
        str(c["text"])
        for c in tg.calls("sendMessage")
        if c.get("chat_id") == chat and str(c.get("text", "")).startswith("Automation ")
    ]


async def fire_next(rig: CronRig, job_id: str) -> dict[str, Any]:
    """Advance the clock to the job's next slot, run it, wait for its alerts; the job view."""
    job = await rig.call("cron.get", {"id": job_id})
    due = job["state"]["nextRunAtMs"]
    fired = await rig.advance(max(0, due - rig.clock.now_ms()))
    assert len(fired) == 1, fired
    got: dict[str, Any] = await rig.call("cron.get", {"id": job_id})
    return got


async def test_alert_after_the_threshold_once_per_incident_and_reset_by_success(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM, schema_ready: None
) -> None:
    async with cron_rig(tmp_path, telegram_config(fake_tg, fake_llm)) as rig:
        await wait_telegram(rig)
        job = await rig.call("cron.add", report_job())
        failing = {"status": 400}

        fake_llm.script.append(failing)
        got = await fire_next(rig, job["id"])
        assert got["state"]["consecutiveErrors"] == 1
        assert alerts_sent(fake_tg) == []  # one failure is not yet a pattern
        assert "lastFailureAlertAtMs" not in got["state"]

        fake_llm.script.append(failing)
        got = await fire_next(rig, job["id"])
        (alert,) = alerts_sent(fake_tg)
        lines = alert.splitlines()
        assert lines[0] == 'Automation "nightly report" failed 2 times in a row.'
        assert lines[1] == f"Cause: {got['state']['lastErrorReason']}"
        assert lines[2] == f"Last error: {got['state']['lastError']}"
        assert lines[3].startswith("Run started: 2026-11-27 09:")
        state = got["state"]
        assert state["lastFailureAlertAtMs"] == rig.clock.now_ms()
        assert state["lastFailureNotificationDeliveryStatus"] == "delivered"
        assert state["lastFailureNotificationDelivered"] is True
        validate("CronJob", got)

        # The same failure again is the same incident: no second alert.
        fake_llm.script.append(failing)
        got = await fire_next(rig, job["id"])
        assert got["state"]["consecutiveErrors"] == 3
        assert len(alerts_sent(fake_tg)) == 1

        # Success: the result is delivered, one recovery notice follows, the streak resets.
        fake_llm.script.append({"text": "report ready"})
        got = await fire_next(rig, job["id"])
        assert got["state"]["consecutiveErrors"] == 0
        assert "lastFailureAlertAtMs" not in got["state"]
        texts = [str(c["text"]) for c in fake_tg.calls("sendMessage") if c["chat_id"] == CHAT]
        assert "report ready" in texts
        assert alerts_sent(fake_tg)[-1] == (
            'Automation "nightly report" is working again: its latest run succeeded.'
        )
        first_alert_at = state["lastFailureAlertAtMs"]

        # A new streak alerts again after the threshold, well within the old cooldown.
        fake_llm.script.append(failing)
        await fire_next(rig, job["id"])
        assert len(alerts_sent(fake_tg)) == 2
        fake_llm.script.append(failing)
        got = await fire_next(rig, job["id"])
        assert len(alerts_sent(fake_tg)) == 3
        assert alerts_sent(fake_tg)[-1].startswith('Automation "nightly report" failed 2 times')
        assert got["state"]["lastFailureAlertAtMs"] - first_alert_at < 60 * MIN
        stopped_at = got["state"]["lastFailureAlertAtMs"]

    # The incident survives a restart: two hours later (the cooldown is long over) the missed
    # slot runs once, fails the same way, and still does not alert again.
    fake_llm.script.append(failing)
    later = stopped_at + 120 * MIN
    async with cron_rig(tmp_path, telegram_config(fake_tg, fake_llm), start_ms=later) as rig:
        await rig.advance(0)
        await rig.svc.wait_idle()
        got = await rig.call("cron.get", {"id": job["id"]})
        assert got["state"]["consecutiveErrors"] == 3
        assert got["state"]["lastFailureAlertAtMs"] == stopped_at
        assert "lastFailureNotificationDeliveryStatus" not in got["state"]
        assert len(alerts_sent(fake_tg)) == 3


async def test_cooldown_holds_back_a_changed_failure(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    async with cron_rig(tmp_path, telegram_config(fake_tg, fake_llm)) as rig:
        await wait_telegram(rig)
        job = await rig.call(
            "cron.add", report_job(failureAlert={"after": 1, "cooldownMs": 30 * MIN})
        )
        fake_llm.script.append({"status": 400})
        first = await fire_next(rig, job["id"])
        assert alerts_sent(fake_tg)[-1].startswith('Automation "nightly report" failed 1 time.')
        assert len(alerts_sent(fake_tg)) == 1

        # A different cause (rate limited through every retry) within 30 minutes: held back.
        fake_llm.script.extend([{"status": 429}] * 10)
        got = await fire_next(rig, job["id"])
        assert got["state"]["lastErrorReason"] == "rate_limit"
        assert got["state"]["lastErrorReason"] != first["state"]["lastErrorReason"]
        assert rig.clock.now_ms() - first["state"]["lastFailureAlertAtMs"] < 30 * MIN
        assert len(alerts_sent(fake_tg)) == 1
        assert got["state"]["lastFailureAlertAtMs"] == first["state"]["lastFailureAlertAtMs"]

        # Once the cooldown has passed, the changed failure is reported.
        while rig.clock.now_ms() - first["state"]["lastFailureAlertAtMs"] < 30 * MIN:
            fake_llm.script.clear()
            fake_llm.script.extend([{"status": 429}] * 10)
            got = await fire_next(rig, job["id"])
        assert len(alerts_sent(fake_tg)) == 2
        assert "Cause: rate_limit" in alerts_sent(fake_tg)[-1]


async def test_failed_delivery_alerts_at_once_elsewhere_with_secrets_masked(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    async with cron_rig(tmp_path, telegram_config(fake_tg, fake_llm)) as rig:
        await wait_telegram(rig)
        scrubber.add(SECRET)
        job = await rig.call(
            "cron.add", report_job(failureAlert={"channel": "telegram", "to": "43"})
        )
        # The result's chat refuses every attempt; the API's answer echoes a secret.
        for _ in range(4):
            fake_tg.fail_next("sendMessage", 400, f"Bad Request: chat not found ({SECRET})")
        fake_llm.script.append({"text": "report ready"})
        got = await fire_next(rig, job["id"])
        assert got["state"]["lastRunStatus"] == "ok"
        assert got["state"]["lastDeliveryStatus"] == "not-delivered"
        assert got["state"]["consecutiveErrors"] == 0
        (alert,) = alerts_sent(fake_tg, "43")  # no threshold for delivery failures
        lines = alert.splitlines()
        assert lines[0] == (
            'Automation "nightly report" ran, but its result could not be delivered.'
        )
        assert "chat not found" in lines[1].lower() and "***" in lines[1]
        assert SECRET not in alert
        assert alerts_sent(fake_tg, CHAT) == []  # never through the chat that failed
        # Nor in what the RPCs show of the job and its runs.
        assert "chat not found" in got["state"]["lastDeliveryError"].lower()
        runs = await rig.call("cron.runs", {"id": job["id"]})
        assert SECRET not in json.dumps(got) and SECRET not in json.dumps(runs)

        # A route that is the job's own chat is not an alternate: no delivery alert.
        await rig.call("cron.update", {"id": job["id"], "patch": {"failureAlert": {}}})
        for _ in range(4):
            fake_tg.fail_next("sendMessage", 400, "Bad Request: chat not found")
        fake_llm.script.append({"text": "report ready"})
        got = await fire_next(rig, job["id"])
        assert got["state"]["lastDeliveryStatus"] == "not-delivered"
        assert len(alerts_sent(fake_tg, "43")) == 1
        assert alerts_sent(fake_tg, CHAT) == []


async def test_skipped_runs_alert_only_with_include_skipped(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    # The heartbeat row skips without a model call while HEARTBEAT.md is empty.
    for include, expected in ((False, 0), (True, 1)):
        cfg = heartbeat_config(fake_tg, fake_llm)
        cfg["cron"] = {"failureAlert": {"includeSkipped": include, "channel": "telegram"}}
        cfg["cron"]["failureAlert"]["to"] = CHAT
        state_dir = tmp_path / f"include-{include}"
        state_dir.mkdir()
        before = len(alerts_sent(fake_tg))
        async with cron_rig(state_dir, cfg) as rig:
            await wait_telegram(rig)
            heartbeat_file(rig).write_text("# Heartbeat\n")
            (row,) = (await rig.call("cron.list", {}))["jobs"]
            for _ in range(3):
                got = await fire_next(rig, row["id"])
            assert got["state"]["consecutiveSkipped"] == 3
            assert fake_llm.requests == []
        sent = alerts_sent(fake_tg)[before:]
        assert len(sent) == expected, sent
        if include:
            assert sent[0].splitlines()[:2] == [
                'Automation "heartbeat-main" was skipped 2 times in a row.',
                "Skip reason: empty-heartbeat-file",
            ]


async def test_webhook_alerts_post_json_through_the_ssrf_guard(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM, hooks: HookReceiver
) -> None:
    cron = {
        "webhookToken": "hook-token-abcdef",
        "webhookSsrfPolicy": {"allowedHostnames": ["127.0.0.1"]},
    }
    alert = {"mode": "webhook", "to": hooks.url + "/hook", "after": 1}
    for name in ("allowed", "strict"):
        (tmp_path / name).mkdir()
    async with cron_rig(tmp_path / "allowed", telegram_config(fake_tg, fake_llm, cron=cron)) as rig:
        job = await rig.call("cron.add", report_job(failureAlert=alert))
        fake_llm.script.append({"status": 400})
        got = await fire_next(rig, job["id"])
        (post,) = hooks.requests
        assert post["headers"]["Authorization"] == "Bearer hook-token-abcdef"
        body = post["body"]
        assert body["jobId"] == job["id"] and body["jobName"] == "nightly report"
        assert body["runAtMs"] == got["state"]["lastRunAtMs"]
        assert body["message"].startswith('Automation "nightly report" failed 1 time.')
        assert got["state"]["lastFailureNotificationDeliveryStatus"] == "delivered"
        assert alerts_sent(fake_tg) == []  # the webhook replaced the chat

    # Without an exemption a loopback receiver is refused, and the refusal is recorded.
    async with cron_rig(tmp_path / "strict", telegram_config(fake_tg, fake_llm)) as rig:
        job = await rig.call("cron.add", report_job(failureAlert=alert))
        fake_llm.script.append({"status": 400})
        got = await fire_next(rig, job["id"])
        assert len(hooks.requests) == 1
        state = got["state"]
        assert state["lastFailureNotificationDeliveryStatus"] == "not-delivered"
        assert state["lastFailureNotificationDelivered"] is False
        assert (
            "cron.webhookSsrfPolicy.allowedHostnames"
            in state["lastFailureNotificationDeliveryError"]
        )


async def test_auto_disable_notice_replaces_the_alert_even_when_alerts_are_off(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    async with cron_rig(tmp_path, telegram_config(fake_tg, fake_llm)) as rig:
        await wait_telegram(rig)
        job = await rig.call("cron.add", report_job(failureAlert=False))
        for _ in range(10):
            fake_llm.script.append({"status": 400})
            got = await fire_next(rig, job["id"])
        assert got["enabled"] is False
        assert got["state"]["autoDisabled"]["reason"] == "consecutive-failures"
        (notice,) = alerts_sent(fake_tg)
        assert notice.startswith('Automation "nightly report" was turned off after 10 failed runs')
        assert f"openclaw cron enable {job['id']}" in notice


@pytest.mark.parametrize(
    ("failure_alert", "message"),
    [
        ({"channel": "discord", "to": "1"}, "failureAlert: channel 'discord' is not configured"),
        ({"channel": "slack", "to": "1"}, "failureAlert: unknown channel 'slack'"),
        ({"mode": "webhook"}, "failureAlert: webhook mode needs the URL in `to`"),
        ({"mode": "webhook", "to": "ftp://x/y"}, "must be an http(s) URL"),
        ({"after": 0}, "greater than or equal to 1"),
    ],
)
async def test_unusable_alert_routes_are_refused_at_creation(
    tmp_path: Path,
    fake_tg: FakeTelegram,
    fake_llm: FakeLLM,
    failure_alert: dict[str, Any],
    message: str,
) -> None:
    async with cron_rig(tmp_path, telegram_config(fake_tg, fake_llm)) as rig:
        err = await rig.error("cron.add", report_job(failureAlert=failure_alert))
        assert err["code"] == "INVALID_REQUEST"
        assert message in err["message"], err
        assert rig.svc.jobs == {}

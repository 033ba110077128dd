"""Heartbeats (§C.19): a config-owned cron row; ack-only replies are silent, anything else goes
to the target chat; an empty HEARTBEAT.md skips without a model call unless events wait."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.agents import roster as rv
from tests.cron.conftest import CronRig, cron_rig, telegram_config, wait_telegram
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram

MIN = 60_000


def heartbeat_config(tg: FakeTelegram, llm: FakeLLM, **beat: Any) -> dict[str, Any]:
    cfg = telegram_config(tg, llm)
    cfg["agents"]["defaults"]["heartbeat"] = {
        "every": "30m",
        "target": "telegram",
        "to": "42",
        **beat,
    }
    return cfg


def heartbeat_file(rig: CronRig) -> Path:
    gw = rig.live.gateway
    workspace = rv.workspace_dir(gw.loaded.config, "main", gw.settings.state_dir)
    workspace.mkdir(parents=True, exist_ok=True)
    return workspace / "HEARTBEAT.md"


def sent_texts(tg: FakeTelegram) -> list[str]:
    return [str(c["text"]) for c in tg.calls("sendMessage") if c.get("chat_id") == "42"]


async def test_beats_ack_is_silent_alerts_are_delivered(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    async with cron_rig(tmp_path, heartbeat_config(fake_tg, fake_llm)) as rig:
        await wait_telegram(rig)
        heartbeat_file(rig).write_text("# Checks\n- look at the backups\n")
        listed = await rig.call("cron.list", {})
        (row,) = listed["jobs"]
        assert row["declarationKey"] == "heartbeat:main"
        assert row["payload"] == {"kind": "heartbeat"}
        assert row["schedule"]["everyMs"] == 30 * MIN
        err = await rig.error("cron.remove", {"id": row["id"]})
        assert "owned by the config" in err["message"]

        fake_llm.script.append({"text": "HEARTBEAT_OK"})
        assert len(await rig.advance(30 * MIN)) == 1
        prompt = str(fake_llm.bodies[-1]["messages"][-1])
        assert "[OpenClaw heartbeat poll]" in prompt and "look at the backups" in prompt
        last = await rig.call("last-heartbeat", {})
        assert last["status"] == "ok-token" and last["reason"] == "heartbeat"

        fake_llm.script.append({"text": "The backup job failed last night."})
        assert len(await rig.advance(30 * MIN)) == 1
        sent = await fake_tg.wait_for("sendMessage", lambda p: p.get("chat_id") == "42")
        assert sent["text"] == "The backup job failed last night."
        assert sent_texts(fake_tg) == ["The backup job failed last night."]
        entries = (await rig.call("cron.runs", {"id": row["id"], "sortDir": "asc"}))["entries"]
        assert [e.get("deliverySuppressionReason") for e in entries] == ["heartbeat", None]
        assert [e["deliveryStatus"] for e in entries] == ["not-delivered", "delivered"]


async def test_empty_file_skips_without_a_model_call_unless_events_wait(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    async with cron_rig(tmp_path, heartbeat_config(fake_tg, fake_llm)) as rig:
        await wait_telegram(rig)
        heartbeat_file(rig).write_text("# Heartbeat\n\n- [ ]\n")
        await rig.advance(30 * MIN)
        assert fake_llm.requests == []
        last = await rig.call("last-heartbeat", {})
        assert last["status"] == "skipped" and last["reason"] == "empty-heartbeat-file"

        assert await rig.call("wake", {"mode": "next-heartbeat", "text": "check the mail"}) == {
            "ok": True
        }
        fake_llm.script.append({"text": "NO_REPLY"})
        await rig.advance(30 * MIN)
        assert len(fake_llm.requests) == 1
        assert "System: [" in str(fake_llm.bodies[-1]["messages"][-1])
        assert "check the mail" in str(fake_llm.bodies[-1]["messages"][-1])
        assert sent_texts(fake_tg) == []


async def test_quiet_hours_and_zero_cadence(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    quiet = {"start": "22:00", "end": "06:00", "timezone": "UTC"}  # T0 is 09:00 UTC
    async with cron_rig(tmp_path, heartbeat_config(fake_tg, fake_llm, activeHours=quiet)) as rig:
        heartbeat_file(rig).write_text("- check\n")
        await rig.advance(30 * MIN)
        assert fake_llm.requests == []
        assert (await rig.call("last-heartbeat", {}))["reason"] == "quiet-hours"
    async with cron_rig(tmp_path, heartbeat_config(fake_tg, fake_llm, every="0m")) as rig:
        assert (await rig.call("cron.list", {"includeDisabled": True}))["jobs"] == []

"""`cron.sessionRetention`: isolated run sessions older than the retention are pruned (row and
transcript) by the real scheduler on its own clock; other sessions are never touched; `false`
or a zero duration keeps everything; a bad duration is refused at config load."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.agents.service import AgentService
from gateway.config.models import CronConfig
from tests.cron.conftest import CronRig, base_config, cron_rig
from tests.fakes.llm import FakeLLM

HOUR = 3_600_000
WEEK = 7 * 24 * HOUR
CHAT_KEY = "agent:main:telegram:direct:42"


@pytest.fixture(autouse=True)
def _no_catchup_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWGATE_CRON_CATCHUP_DEFER_MS", "0")


def job(name: str, target: str) -> dict[str, Any]:
    return {
        "name": name,
        "schedule": {"kind": "every", "everyMs": WEEK},  # never fires on its own here
        "sessionTarget": target,
        "wakeMode": "now",
        "payload": {"kind": "agentTurn", "message": f"run {name}"},
        "delivery": {"mode": "none"},
    }


def agents(rig: CronRig) -> AgentService:
    svc: AgentService = rig.live.gateway.extensions["agents"]
    return svc


def session_files(rig: CronRig) -> list[str]:
    folder = rig.live.gateway.settings.state_dir / "agents" / "main" / "sessions"
    return sorted(p.name for p in folder.iterdir() if ".jsonl" in p.name)


async def run_sessions(rig: CronRig) -> tuple[str, str]:
    """Run an isolated and a named-session job once; their session keys."""
    isolated = await rig.call("cron.add", job("isolated", "isolated"))
    named = await rig.call("cron.add", job("named", "session:weekly"))
    keys = []
    for added in (isolated, named):
        await rig.call("cron.run", {"id": added["id"]})
        await rig.svc.wait_idle()
        (entry,) = (await rig.call("cron.runs", {"id": added["id"]}))["entries"]
        assert entry["status"] == "ok", entry
        keys.append(entry["sessionKey"])
    return keys[0], keys[1]


def now_ms() -> int:
    return int(time.time() * 1000)


async def test_old_run_sessions_are_pruned_and_nothing_else(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    # The scheduler's clock starts at the real time, as the session rows' timestamps do.
    async with cron_rig(tmp_path, base_config(fake_llm), start_ms=now_ms()) as rig:
        store = agents(rig).store
        store.ensure(CHAT_KEY)
        run_key, named_key = await run_sessions(rig)
        assert run_key.startswith("agent:main:cron:") and ":run:" in run_key
        assert named_key == "agent:main:weekly"
        run_row = store.get(run_key)
        assert run_row is not None
        transcript = f"{run_row.session_id}.jsonl"
        assert transcript in session_files(rig)

        # 23 hours on: younger than the default 24 h, kept.
        await rig.advance(23 * HOUR)
        assert store.get(run_key) is not None

        # 25 hours on (and past the sweep interval): the run session and its transcript go.
        await rig.advance(2 * HOUR)
        assert store.get(run_key) is None
        assert not [name for name in session_files(rig) if run_row.session_id in name]
        for key in (named_key, CHAT_KEY):
            assert store.get(key) is not None, key
        listed = await rig.call("sessions.list", {})
        assert run_key not in [s["key"] for s in listed["sessions"]]

    # The deletion is durable: a restart does not bring the row back.
    async with cron_rig(tmp_path, base_config(fake_llm), start_ms=now_ms() + 26 * HOUR) as rig:
        assert agents(rig).store.get(run_key) is None
        assert agents(rig).store.get(named_key) is not None


@pytest.mark.parametrize("setting", [False, "0h"])
async def test_retention_off_keeps_run_sessions(
    tmp_path: Path, fake_llm: FakeLLM, setting: bool | str
) -> None:
    cfg = base_config(fake_llm, cron={"sessionRetention": setting})
    async with cron_rig(tmp_path, cfg, start_ms=now_ms()) as rig:
        run_key, _ = await run_sessions(rig)
        await rig.advance(30 * 24 * HOUR)
        assert agents(rig).store.get(run_key) is not None


async def test_a_shorter_retention_is_honoured(tmp_path: Path, fake_llm: FakeLLM) -> None:
    cfg = base_config(fake_llm, cron={"sessionRetention": "2"})  # bare number = hours
    async with cron_rig(tmp_path, cfg, start_ms=now_ms()) as rig:
        run_key, _ = await run_sessions(rig)
        await rig.advance(HOUR)
        assert agents(rig).store.get(run_key) is not None
        await rig.advance(2 * HOUR)
        assert agents(rig).store.get(run_key) is None


@pytest.mark.parametrize("value", ["soon", "-1h", True])
def test_bad_retention_is_refused_at_load(value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        CronConfig.model_validate({"sessionRetention": value})
    assert "sessionRetention" in str(info.value)

"""The scheduler in a real gateway with a hand-driven clock: exactly-once firing per schedule
kind, back-off, retries, catch-up after restart, run markers, bad input and a garbage store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.cron.store import CronStore
from tests.compat.reference import validate
from tests.cron.conftest import T0, CronRig, base_config, cron_rig
from tests.fakes.llm import FakeLLM

MIN = 60_000


pytestmark = pytest.mark.usefixtures("fast_failover")


def job(schedule: dict[str, Any], message: str = "ping", **extra: Any) -> dict[str, Any]:
    return {
        "name": extra.pop("name", "job"),
        "schedule": schedule,
        "sessionTarget": "isolated",
        "wakeMode": "now",
        "payload": {"kind": "agentTurn", "message": message},
        "delivery": {"mode": "none"},
        **extra,
    }


async def runs(rig: CronRig, job_id: str) -> list[dict[str, Any]]:
    page = await rig.call("cron.runs", {"id": job_id, "sortDir": "asc", "limit": 200})
    entries: list[dict[str, Any]] = page["entries"]
    return entries


async def test_every_fires_once_per_slot_and_once_after_a_gap(
    tmp_path: Path, fake_llm: FakeLLM, schema_ready: None
) -> None:
    async with cron_rig(tmp_path, base_config(fake_llm)) as rig:
        added = await rig.call("cron.add", job({"kind": "every", "everyMs": 10 * MIN}))
        validate("CronAddResult", added)
        assert added["state"]["nextRunAtMs"] == T0 + 10 * MIN
        assert await rig.advance(10 * MIN - 1) == []
        assert len(await rig.advance(1)) == 1
        assert len(await rig.advance(10 * MIN)) == 1
        # Five slots pass at once: one run, then the grid continues.
        assert len(await rig.advance(50 * MIN)) == 1
        entries = await runs(rig, added["id"])
        assert len(entries) == 3 and all(e["status"] == "ok" for e in entries)
        for e in entries:
            validate("CronRunLogEntry", e)
        got = await rig.call("cron.get", {"id": added["id"]})
        validate("CronJob", got)
        assert got["state"]["nextRunAtMs"] == T0 + 80 * MIN
        assert len(fake_llm.requests) == 3


async def test_cron_with_zone_fires_at_wall_time(tmp_path: Path, fake_llm: FakeLLM) -> None:
    async with cron_rig(tmp_path, base_config(fake_llm)) as rig:
        added = await rig.call(
            "cron.add", job({"kind": "cron", "expr": "30 10 * * *", "tz": "Europe/Berlin"})
        )
        # 10:30 Berlin = 09:30 UTC, 30 minutes after T0.
        assert added["state"]["nextRunAtMs"] == T0 + 30 * MIN
        assert await rig.advance(29 * MIN) == []
        assert len(await rig.advance(MIN)) == 1
        assert (await rig.call("cron.get", {"id": added["id"]}))["nextRunAtMs"] == T0 + (
            24 * 60 + 30
        ) * MIN


async def test_errors_back_off_and_one_shots_retry_transient_failures(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    async with cron_rig(tmp_path, base_config(fake_llm)) as rig:
        rec = await rig.call("cron.add", job({"kind": "every", "everyMs": 1000}, name="fast"))
        fake_llm.script.append({"status": 400})
        await rig.advance(1000)
        got = await rig.call("cron.get", {"id": rec["id"]})
        assert got["state"]["lastRunStatus"] == "error"
        assert got["state"]["consecutiveErrors"] == 1
        # Next run not before end + 30 s although the schedule says every second.
        assert got["state"]["nextRunAtMs"] >= rig.clock.now_ms() + 30_000
        await rig.call("cron.update", {"id": rec["id"], "patch": {"enabled": False}})

        one = await rig.call("cron.add", job({"kind": "at", "at": "2026-11-27T09:10:00Z"}))
        fake_llm.script.extend([{"status": 429}] * 10)  # rate limited through every retry
        await rig.advance(10 * MIN)
        got = await rig.call("cron.get", {"id": one["id"]})
        assert got["enabled"] is True and got["state"]["lastErrorReason"] == "rate_limit"
        retry_at = got["state"]["nextRunAtMs"]
        assert retry_at == rig.clock.now_ms() + 30_000
        fake_llm.script.clear()
        await rig.advance(30_000)
        entries = await runs(rig, one["id"])
        assert [e["status"] for e in entries] == ["error", "ok"]
        assert (await rig.call("cron.list", {}))["total"] == 0  # deleted after success


async def test_manual_run_and_not_found_errors(tmp_path: Path, fake_llm: FakeLLM) -> None:
    async with cron_rig(tmp_path, base_config(fake_llm)) as rig:
        rec = await rig.call("cron.add", job({"kind": "every", "everyMs": 60 * MIN}))
        res = await rig.call("cron.run", {"id": rec["id"], "mode": "due"})
        assert res["ran"] is False and res["reason"] == "not-due"
        res = await rig.call("cron.run", {"id": rec["id"]})
        assert res["enqueued"] is True and res["runId"].startswith(f"manual:{rec['id']}:")
        await rig.svc.wait_idle()
        got = await rig.call("cron.get", {"id": rec["id"]})
        assert got["state"]["nextRunAtMs"] == T0 + 60 * MIN  # cadence kept
        err = await rig.error("cron.get", {"id": "nope"})
        assert err["message"].startswith("cron job not found: nope")
        assert err["details"] == {"code": "CRON_JOB_NOT_FOUND", "jobId": "nope"}
        err = await rig.error("cron.remove", {"id": "nope"})
        assert err["message"].startswith("Automation not found: nope")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (job({"kind": "cron", "expr": "61 * * * *"}), "invalid cron expression"),
        (job({"kind": "cron", "expr": "0 9 * * *", "tz": "Mars/Base"}), "unknown time zone"),
        (job({"kind": "cron", "expr": "0 0 30 2 *"}), "would never fire"),
        (job({"kind": "at", "at": "whenever"}), "invalid at time"),
        ({**job({"kind": "every", "everyMs": 1000}), "sessionTarget": "main"}, "agentTurn"),
        (
            {
                **job({"kind": "every", "everyMs": 1000}),
                "payload": {"kind": "command", "argv": ["ls"]},
            },
            "command payloads are not supported",
        ),
        ({**job({"kind": "every", "everyMs": 0})}, "everyMs"),
        (
            {
                **job({"kind": "every", "everyMs": 1000}),
                "delivery": {"mode": "announce", "channel": "discord", "to": "1"},
            },
            "not configured",
        ),
        ({"name": "x"}, "schedule"),
    ],
)
async def test_bad_input_is_refused_with_a_reason(
    tmp_path: Path, fake_llm: FakeLLM, params: dict[str, Any], message: str
) -> None:
    async with cron_rig(tmp_path, base_config(fake_llm)) as rig:
        err = await rig.error("cron.add", params)
        assert err["code"] == "INVALID_REQUEST"
        assert err["message"].startswith("invalid cron.add params:")
        assert message in err["message"], err
        assert rig.svc.jobs == {}


async def test_past_time_is_due_immediately(tmp_path: Path, fake_llm: FakeLLM) -> None:
    async with cron_rig(tmp_path, base_config(fake_llm)) as rig:
        rec = await rig.call("cron.add", job({"kind": "at", "at": "2026-11-27T08:00:00Z"}))
        assert rec["state"]["nextRunAtMs"] < T0
        await rig.advance(0)  # the timer may already have fired it when the job was added
        assert [e["status"] for e in await runs(rig, rec["id"])] == ["ok"]


async def test_restart_catch_up_runs_a_missed_job_exactly_once(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    async with cron_rig(tmp_path, base_config(fake_llm)) as rig:
        every = await rig.call("cron.add", job({"kind": "every", "everyMs": 10 * MIN}, name="e"))
        one = await rig.call(
            "cron.add", job({"kind": "at", "at": "2026-11-27T09:30:00Z"}, name="o")
        )
    # Down for two hours: 12 slots of `every` and the one-shot were missed.
    async with cron_rig(tmp_path, base_config(fake_llm), start_ms=T0 + 120 * MIN) as rig:
        await rig.advance(0)
        await rig.advance(1000)
        assert len(await runs(rig, every["id"])) == 1
        assert len(await runs(rig, one["id"])) == 1
        nxt = (await rig.call("cron.get", {"id": every["id"]}))["state"]["nextRunAtMs"]
        assert nxt == T0 + 130 * MIN  # back on the grid
    # Another restart: nothing runs again.
    async with cron_rig(tmp_path, base_config(fake_llm), start_ms=T0 + 121 * MIN) as rig:
        assert await rig.advance(1000) == []
        assert len(await runs(rig, every["id"])) == 1
    assert len(fake_llm.requests) == 2


async def test_a_run_marker_left_by_a_crash_is_recorded_and_the_one_shot_reruns_once(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    async with cron_rig(tmp_path, base_config(fake_llm)) as rig:
        one = await rig.call("cron.add", job({"kind": "at", "at": "2026-11-27T09:05:00Z"}))
    # Simulate a process killed mid-run: the marker is on disk, no log entry.
    store = CronStore(tmp_path)
    data = json.loads(store.state_path.read_text())
    st = data["jobs"][one["id"]]["state"]
    st.update(
        {"runningAtMs": T0 + 5 * MIN, "runningRunId": "cron:x:1", "runningSlotMs": T0 + 5 * MIN}
    )
    store.state_path.write_text(json.dumps(data))
    async with cron_rig(tmp_path, base_config(fake_llm), start_ms=T0 + 6 * MIN) as rig:
        await rig.advance(0)
        entries = await runs(rig, one["id"])
        assert [e["status"] for e in entries] == ["error", "ok"]
        assert entries[0]["error"] == "cron: job interrupted by gateway restart"
    assert len(fake_llm.requests) == 1


async def test_a_finished_run_whose_state_was_lost_is_not_rerun(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    async with cron_rig(tmp_path, base_config(fake_llm)) as rig:
        rec = await rig.call("cron.add", job({"kind": "every", "everyMs": 10 * MIN}))
        before = CronStore(tmp_path).state_path.read_text()
        await rig.advance(10 * MIN)
        (entry,) = await runs(rig, rec["id"])
    # The state write after the run "was lost": put back the marker of that very run.
    data = json.loads(before)
    data["jobs"][rec["id"]]["state"].update(
        {
            "runningAtMs": entry["runAtMs"],
            "runningRunId": entry["runId"],
            "runningSlotMs": T0 + 10 * MIN,
        }
    )
    CronStore(tmp_path).state_path.write_text(json.dumps(data))
    async with cron_rig(tmp_path, base_config(fake_llm), start_ms=T0 + 11 * MIN) as rig:
        assert await rig.advance(0) == []
        assert len(await runs(rig, rec["id"])) == 1
        got = await rig.call("cron.get", {"id": rec["id"]})
        assert got["state"]["nextRunAtMs"] == T0 + 20 * MIN


async def test_garbage_job_file_keeps_the_previous_jobs(
    tmp_path: Path, fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    async with cron_rig(tmp_path, base_config(fake_llm)) as rig:
        rec = await rig.call("cron.add", job({"kind": "every", "everyMs": 10 * MIN}, name="keep"))
    jobs_path = tmp_path / "cron" / "jobs.json"
    jobs_path.write_text('{"version": 1,\n "jobs": [\n  {"id": oops}\n ]}\n')
    async with cron_rig(tmp_path, base_config(fake_llm)) as rig:
        listed = await rig.call("cron.list", {})
        assert [j["id"] for j in listed["jobs"]] == [rec["id"]]
    assert any(p.name.startswith("jobs.json.corrupt-") for p in jobs_path.parent.iterdir())
    assert f"{jobs_path}:3:10" in caplog.text  # file, line and column of the damage

    # One invalid job among good ones is quarantined, the rest load.
    good = json.loads((tmp_path / "cron" / "jobs.json.bak").read_text())
    good["jobs"].append({"id": "bad", "name": "broken", "schedule": {"kind": "at"}})
    jobs_path.write_text(json.dumps(good))
    async with cron_rig(tmp_path, base_config(fake_llm)) as rig:
        assert list(rig.svc.jobs) == [rec["id"]]
        assert any("job #1 (bad) quarantined" in p for p in rig.svc.problems)
    quarantined = json.loads((tmp_path / "cron" / "jobs-quarantine.json").read_text())
    assert quarantined[0]["job"]["id"] == "bad"

"""The official `openclaw cron …` commands (openclaw@2026.9.6) against our scheduler."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import GatewayProcess, ThreadedFakeLLM, _stop, start_gateway
from tests.compat.reference import Reference, run_openclaw, validate

pytestmark = pytest.mark.compat


def cron(gw: GatewayProcess, *args: str) -> Any:
    return run_openclaw(["cron", *args, "--url", gw.url, "--token", gw.token], timeout=90)


def auth(gw: GatewayProcess) -> list[str]:
    return ["--url", gw.url, "--token", gw.token]


def describe(result: Any) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def call(gw: GatewayProcess, method: str, params: dict[str, Any]) -> Any:
    result = run_openclaw(
        ["gateway", "call", method, "--params", json.dumps(params), "--json", "--url", gw.url,
         "--token", gw.token]
    )  # fmt: skip
    assert result.returncode == 0, describe(result)
    return json.loads(result.stdout)


def test_cron_add_list_run_runs_rm(
    reference: Reference, chat_gateway: tuple[GatewayProcess, Any]
) -> None:
    gw, _llm = chat_gateway
    added = cron(
        gw, "add", "--name", "standup", "--cron", "0 9 * * 1-5", "--tz", "Europe/Berlin",
        "--message", "Post the standup agenda", "--session", "isolated", "--no-deliver", "--json",
    )  # fmt: skip
    assert added.returncode == 0, describe(added)
    job = json.loads(added.stdout[added.stdout.index("{") :])
    job_id = job.get("id") or job.get("job", {}).get("id")
    assert job_id, describe(added)

    listed = cron(gw, "list")
    assert listed.returncode == 0, describe(listed)
    assert "standup" in listed.stdout, describe(listed)

    listed_json = cron(gw, "list", "--json")
    assert listed_json.returncode == 0, describe(listed_json)
    page = json.loads(listed_json.stdout[listed_json.stdout.index("{") :])
    names = [j["name"] for j in page["jobs"]]
    assert names == ["standup"], page
    stored = call(gw, "cron.get", {"id": job_id})
    validate("CronJob", stored)
    assert stored["schedule"] == {
        "kind": "cron", "expr": "0 9 * * 1-5", "tz": "Europe/Berlin", "staggerMs": 300000
    } or stored["schedule"]["expr"] == "0 9 * * 1-5", stored  # fmt: skip

    ran = cron(gw, "run", job_id, "--wait")
    assert ran.returncode == 0, describe(ran)
    runs = cron(gw, "runs", "--id", job_id, "--json")
    assert runs.returncode == 0, describe(runs)
    entries = json.loads(runs.stdout[runs.stdout.index("{") :])["entries"]
    assert len(entries) == 1 and entries[0]["status"] == "ok", entries
    for entry in entries:
        validate("CronRunLogEntry", {k: v for k, v in entry.items() if not k.endswith("Iso")})

    removed = cron(gw, "rm", job_id)
    assert removed.returncode == 0, describe(removed)
    after = call(gw, "cron.list", {"includeDisabled": True})
    assert after["jobs"] == [] and after["total"] == 0, after


def test_cron_add_at_relative_and_bad_expression(
    reference: Reference, chat_gateway: tuple[GatewayProcess, Any]
) -> None:
    gw, _llm = chat_gateway
    added = cron(
        gw, "add", "--name", "tea", "--at", "20m", "--message", "tea time", "--session",
        "isolated", "--no-deliver",
    )  # fmt: skip
    assert added.returncode == 0, describe(added)
    page = call(gw, "cron.list", {})
    assert [j["name"] for j in page["jobs"]] == ["tea"], page
    job = page["jobs"][0]
    assert job["schedule"]["kind"] == "at" and job["deleteAfterRun"] is True, job
    validate("CronJob", {k: v for k, v in job.items() if k != "effectiveAgentId"})

    bad = cron(gw, "add", "--name", "bad", "--cron", "61 * * * *", "--message", "x",
               "--session", "isolated")  # fmt: skip
    assert bad.returncode != 0, describe(bad)
    assert "invalid cron expression" in (bad.stdout + bad.stderr), describe(bad)


def test_system_event_now_wakes_the_heartbeat_and_heartbeat_last_reports_it(
    reference: Reference, tmp_path: Path
) -> None:
    llm = ThreadedFakeLLM()
    config = {
        "models": {"providers": {"openai": {"baseUrl": llm.fake.url + "/v1", "apiKey": "sk-test"}}},
        "agents": {
            "defaults": {
                "model": {"primary": "openai/gpt-test"},
                "heartbeat": {"every": "6h", "target": "none"},
            }
        },
    }
    workspace = tmp_path / "gateway-state" / "workspace"
    workspace.mkdir(parents=True)
    (workspace / "HEARTBEAT.md").write_text("# Checks\n- look at the backups\n")
    gw = start_gateway(tmp_path, config)
    try:
        before = run_openclaw(["system", "heartbeat", "last", "--json", *auth(gw)])
        assert before.returncode == 0 and before.stdout.strip().endswith("null"), describe(before)
        llm.fake.script.append({"text": "HEARTBEAT_OK"})
        woke = run_openclaw(
            ["system", "event", "--text", "disk is 91% full", "--mode", "now", *auth(gw)]
        )
        assert woke.returncode == 0, describe(woke)
        deadline = time.monotonic() + 30
        while True:  # the wake runs the heartbeat turn in the background
            after = run_openclaw(["system", "heartbeat", "last", "--json", *auth(gw)])
            if not after.stdout.strip().endswith("null") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        _stop(gw.proc)
        llm.close()
    assert after.returncode == 0, describe(after)
    beat = json.loads(after.stdout[after.stdout.index("{") :])
    assert beat["status"] == "ok-token" and beat["ts"] > 0, beat
    # The queued system event went into the heartbeat turn the wake started.
    prompt = str(llm.fake.bodies[-1]["messages"])
    assert "disk is 91% full" in prompt and "look at the backups" in prompt, prompt

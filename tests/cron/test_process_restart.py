"""A real gateway process: a job due while it is down runs exactly once after the restart, and
a SIGKILL in the middle of a run is recorded and the one-shot runs again once."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from gateway.cron.schedule import iso
from tests.compat.conftest import GatewayProcess, ThreadedFakeLLM, _stop, start_gateway
from tests.harness import connect_params

DEFER_ENV = {"CLAWGATE_CRON_CATCHUP_DEFER_MS": "0"}


class Rpc:
    def __init__(self, gw: GatewayProcess) -> None:
        self.ws = connect(gw.url + "/", max_size=None).__enter__()
        json.loads(self.ws.recv(5))  # connect.challenge
        self.n = 0
        assert self.request("connect", connect_params(token=gw.token))["ok"]

    def request(self, method: str, params: Any) -> dict[str, Any]:
        self.n += 1
        rid = f"{self.n}:t"
        self.ws.send(json.dumps({"type": "req", "id": rid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(10))
            if msg.get("type") == "res" and msg.get("id") == rid:
                return dict(msg)

    def call(self, method: str, params: Any) -> Any:
        res = self.request(method, params)
        assert res["ok"], res
        return res["payload"]

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def llm() -> Iterator[ThreadedFakeLLM]:
    fake = ThreadedFakeLLM()
    yield fake
    fake.close()


def config(llm: ThreadedFakeLLM) -> dict[str, Any]:
    return {
        "models": {"providers": {"openai": {"baseUrl": llm.fake.url + "/v1", "apiKey": "sk-test"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-test"}}},
    }


def one_shot(at_ms: int) -> dict[str, Any]:
    return {
        "name": "reminder",
        "schedule": {"kind": "at", "at": iso(at_ms)},
        "sessionTarget": "isolated",
        "wakeMode": "now",
        "payload": {"kind": "agentTurn", "message": "ping"},
        "delivery": {"mode": "none"},
    }


def wait_runs(rpc: Rpc, job_id: str, count: int, timeout: float = 15) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        entries: list[dict[str, Any]] = rpc.call("cron.runs", {"id": job_id, "sortDir": "asc"})[
            "entries"
        ]
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        time.sleep(0.1)


def test_job_due_during_downtime_runs_exactly_once(tmp_path: Path, llm: ThreadedFakeLLM) -> None:
    gw = start_gateway(tmp_path, config(llm), DEFER_ENV)
    try:
        rpc = Rpc(gw)
        job = rpc.call("cron.add", one_shot(int(time.time() * 1000) + 2500))
        rpc.close()
    finally:
        _stop(gw.proc)
    assert llm.fake.requests == []
    time.sleep(3)  # the slot passes while the gateway is down
    gw = start_gateway(tmp_path, config(llm), DEFER_ENV)
    try:
        rpc = Rpc(gw)
        entries = wait_runs(rpc, job["id"], 1)
        assert [e["status"] for e in entries] == ["ok"], entries
        time.sleep(1.5)  # nothing else fires
        assert len(wait_runs(rpc, job["id"], 2, timeout=0)) == 1
        assert rpc.call("cron.list", {"includeDisabled": True})["total"] == 0
        rpc.close()
    finally:
        _stop(gw.proc)
    assert len(llm.fake.requests) == 1
    assert "cron: running missed jobs after restart" in gw.log()


def test_sigkill_during_a_run_is_recorded_and_the_one_shot_reruns(
    tmp_path: Path, llm: ThreadedFakeLLM
) -> None:
    llm.fake.script.append({"delay": 30, "text": "too late"})
    gw = start_gateway(tmp_path, config(llm), DEFER_ENV)
    try:
        rpc = Rpc(gw)
        job = rpc.call("cron.add", one_shot(int(time.time() * 1000) + 300))
        deadline = time.monotonic() + 10
        while not llm.fake.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert llm.fake.requests, "the run never reached the model"
        state = json.loads((gw.state_dir / "cron" / "jobs-state.json").read_text())
        assert state["jobs"][job["id"]]["state"]["runningAtMs"] > 0  # marker on disk
        rpc.close()
    finally:
        gw.proc.send_signal(signal.SIGKILL)
        gw.proc.wait(5)
    gw = start_gateway(tmp_path, config(llm), DEFER_ENV)
    try:
        rpc = Rpc(gw)
        entries = wait_runs(rpc, job["id"], 2)
        assert [e["status"] for e in entries] == ["error", "ok"], entries
        assert entries[0]["error"] == "cron: job interrupted by gateway restart"
        rpc.close()
    finally:
        _stop(gw.proc)
    assert len(llm.fake.requests) == 2

"""Real processes: sessions survive a restart; SIGTERM drains in-flight runs, bounded."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.llm import FakeLLM
from tests.harness import (
    TOKEN,
    chat,
    chat_events,
    connected,
    free_port,
    gateway_env,
    start_process,
    stop_process,
    wait_healthy,
)


@dataclass
class Proc:
    proc: subprocess.Popen[str]
    port: int

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"


def write_config(state: Path, fake: FakeLLM) -> None:
    config = {
        "models": {"providers": {"openai": {"baseUrl": fake.url + "/v1", "apiKey": "sk-test"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-test"}}},
    }
    (state / "openclaw.json").write_text(json.dumps(config))


async def launch(state: Path, **env: str) -> Proc:
    port = free_port()
    proc = start_process(
        ["--allow-unconfigured", "--port", str(port), "--bind", "loopback"],
        gateway_env(state, OPENCLAW_GATEWAY_TOKEN=TOKEN, **env),
    )
    await asyncio.to_thread(wait_healthy, port, proc)
    return Proc(proc, port)


def startupz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/startupz", timeout=1) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def wait_restarted(gw: Proc, since: float, timeout: float = 15) -> None:
    """Until a fresh process (uptime shorter than the time since `since`) answers /startupz."""
    while True:
        assert gw.proc.poll() is None, "gateway exited instead of restarting"
        assert time.monotonic() < since + timeout, "gateway did not come back"
        try:
            status, body = await asyncio.to_thread(startupz, gw.port)
        except OSError:
            status, body = 0, {}
        if status == 200 and body["uptimeMs"] < (time.monotonic() - since) * 1000:
            return
        await asyncio.sleep(0.1)


def http_status(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


async def test_sessions_and_history_survive_a_process_restart(
    tmp_path: Path, openai_fake: FakeLLM
) -> None:
    write_config(tmp_path, openai_fake)
    openai_fake.script += [{"text": "first reply"}, {"text": "second reply"}]
    gw = await launch(tmp_path)
    try:
        async with connected(gw) as client:  # type: ignore[arg-type]
            await chat(client, "before restart")
    finally:
        out = await asyncio.to_thread(stop_process, gw.proc)
    assert gw.proc.returncode == 0, out

    gw = await launch(tmp_path)
    try:
        async with connected(gw) as client:  # type: ignore[arg-type]
            history = await client.call("chat.history", {"sessionKey": "main"})
            sessions = await client.call("sessions.list", {})
            await chat(client, "after restart")
    finally:
        await asyncio.to_thread(stop_process, gw.proc)
    texts = [
        m["content"][0]["text"] if isinstance(m["content"], list) else m["content"]
        for m in history["messages"]
    ]
    assert texts == ["before restart", "first reply"]
    assert sessions["sessions"][0]["messageCount"] == 2
    # The model saw the pre-restart conversation as context.
    assert [m["content"] for m in openai_fake.requests[1]["body"]["messages"][1:]] == [
        "before restart",
        "first reply",
        "after restart",
    ]


async def test_sigterm_lets_the_running_turn_finish(tmp_path: Path, openai_fake: FakeLLM) -> None:
    write_config(tmp_path, openai_fake)
    openai_fake.script.append({"delay": 1.5, "text": "finished while draining"})
    gw = await launch(tmp_path)
    try:
        async with connected(gw) as client:  # type: ignore[arg-type]
            ack = await client.call(
                "chat.send", {"sessionKey": "main", "message": "long one", "idempotencyKey": "d1"}
            )
            await openai_fake.wait_until(lambda reqs: len(reqs) == 1)
            started = time.monotonic()
            gw.proc.terminate()
            await asyncio.sleep(0.3)
            status, body = await asyncio.to_thread(startupz, gw.port)
            assert (status, body["status"]) == (503, "draining")
            events = await chat_events(client, ack["runId"], timeout=10)
        assert events[-1]["state"] == "final"
        await asyncio.to_thread(gw.proc.wait, 10)
        elapsed = time.monotonic() - started
    finally:
        out = await asyncio.to_thread(stop_process, gw.proc)
    assert gw.proc.returncode == 0, out
    assert elapsed < 8
    assert "completed cleanly" in out

    gw = await launch(tmp_path)  # the lock was released: an immediate restart works
    try:
        async with connected(gw) as client:  # type: ignore[arg-type]
            history = await client.call("chat.history", {"sessionKey": "main"})
    finally:
        await asyncio.to_thread(stop_process, gw.proc)
    assert history["messages"][-1]["content"][0]["text"] == "finished while draining"


async def test_drain_is_bounded_by_the_configured_timeout(
    tmp_path: Path, openai_fake: FakeLLM
) -> None:
    write_config(tmp_path, openai_fake)
    openai_fake.script.append({"delay": 30, "text": "never"})
    gw = await launch(tmp_path, CLAWGATE_DRAIN_TIMEOUT_SECONDS="1")
    try:
        async with connected(gw) as client:  # type: ignore[arg-type]
            await client.call(
                "chat.send", {"sessionKey": "main", "message": "stuck", "idempotencyKey": "d2"}
            )
            await openai_fake.wait_until(lambda reqs: len(reqs) == 1)
            started = time.monotonic()
            gw.proc.terminate()
            await asyncio.to_thread(gw.proc.wait, 10)
            elapsed = time.monotonic() - started
    finally:
        out = await asyncio.to_thread(stop_process, gw.proc)
    assert gw.proc.returncode == 0, out
    assert elapsed < 4, out

    gw = await launch(tmp_path)
    try:
        async with connected(gw) as client:  # type: ignore[arg-type]
            history = await client.call("chat.history", {"sessionKey": "main"})
    finally:
        await asyncio.to_thread(stop_process, gw.proc)
    assert history["messages"][0]["content"] in ("stuck", [{"type": "text", "text": "stuck"}])


async def test_config_apply_of_a_restart_only_key_re_executes_the_gateway(
    tmp_path: Path, openai_fake: FakeLLM
) -> None:
    write_config(tmp_path, openai_fake)
    openai_fake.script.append({"text": "kept across the restart"})
    gw = await launch(tmp_path)
    pid = gw.proc.pid
    try:
        async with connected(gw) as client:  # type: ignore[arg-type]
            await chat(client, "hello")
            current = await client.call("config.get", {})
            raw = json.loads((tmp_path / "openclaw.json").read_text())
            raw["gateway"] = {"controlUi": {"basePath": "/ui"}}
            result = await client.call(
                "config.apply", {"raw": json.dumps(raw), "baseHash": current["hash"]}
            )
            assert result["restartRequired"] is True and result["restartScheduled"] is True
        # Same process (re-exec keeps the PID), back up with the new setting.
        await wait_restarted(gw, since=time.monotonic())
        ui_status, _ = await asyncio.to_thread(http_status, f"http://127.0.0.1:{gw.port}/ui/")
        assert ui_status == 200
        assert gw.proc.pid == pid
        async with connected(gw) as client:  # type: ignore[arg-type]
            history = await client.call("chat.history", {"sessionKey": "main"})
        assert history["messages"][-1]["content"][0]["text"] == "kept across the restart"
    finally:
        out = await asyncio.to_thread(stop_process, gw.proc)
    assert "restarting to apply configuration changes" in out
    assert "restart the gateway to apply" not in out  # it is restarting on its own
    assert gw.proc.returncode == 0


async def test_editing_a_restart_only_key_in_the_file_restarts_the_gateway(
    tmp_path: Path, openai_fake: FakeLLM
) -> None:
    # gateway.reload.mode defaults to hybrid: hot keys apply live, the rest restart the process.
    write_config(tmp_path, openai_fake)
    gw = await launch(tmp_path, CLAWGATE_CONFIG_POLL_MS="100")
    try:
        raw = json.loads((tmp_path / "openclaw.json").read_text())
        raw["gateway"] = {"controlUi": {"basePath": "/panel"}}
        edited = time.monotonic()
        (tmp_path / "openclaw.json").write_text(json.dumps(raw))
        await wait_restarted(gw, since=edited)
        ui_status, _ = await asyncio.to_thread(http_status, f"http://127.0.0.1:{gw.port}/panel/")
        assert ui_status == 200
    finally:
        out = await asyncio.to_thread(stop_process, gw.proc)
    assert "restarting to apply gateway" in out, out
    assert "restart the gateway to apply" not in out  # it is restarting on its own


async def test_a_doubled_sigterm_is_one_clean_stop(tmp_path: Path, openai_fake: FakeLLM) -> None:
    # `timeout` and process-group kills deliver SIGTERM twice at once: still a clean drain.
    write_config(tmp_path, openai_fake)
    gw = await launch(tmp_path)
    gw.proc.terminate()
    gw.proc.terminate()
    out = await asyncio.to_thread(stop_process, gw.proc)
    assert gw.proc.returncode == 0, out
    assert "completed cleanly" in out and "Traceback" not in out, out


async def test_a_second_sigterm_later_cuts_the_drain_short(
    tmp_path: Path, openai_fake: FakeLLM
) -> None:
    write_config(tmp_path, openai_fake)
    openai_fake.script.append({"delay": 30, "text": "never"})
    gw = await launch(tmp_path, CLAWGATE_DRAIN_TIMEOUT_SECONDS="25")
    try:
        async with connected(gw) as client:  # type: ignore[arg-type]
            await client.call(
                "chat.send", {"sessionKey": "main", "message": "slow", "idempotencyKey": "x1"}
            )
            await openai_fake.wait_until(lambda reqs: len(reqs) == 1)
            gw.proc.terminate()
            await asyncio.sleep(1.3)
            assert gw.proc.poll() is None  # still draining
            again = time.monotonic()
            gw.proc.terminate()
            await asyncio.to_thread(gw.proc.wait, 10)
            elapsed = time.monotonic() - again
    finally:
        out = await asyncio.to_thread(stop_process, gw.proc)
    assert elapsed < 5, out
    assert "exiting without waiting for the drain" in out

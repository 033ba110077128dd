"""Faults, measured, against the real `python -m gateway` process and fake model servers.

  sigkill   SIGKILL with a chat turn in flight, then restart, N times: lock failures, restart
            time, then every transcript under the state dir read back (torn last line allowed)
  provider  model API failing mid-stream, hanging before answering, stalling mid-stream:
            what the user sees and how long it takes; a second client's `health` meanwhile
  disk      state dir on a tiny tmpfs (root only), filled up: what a chat turn does, whether
            the process survives, and whether any file is left unreadable
  discord   fake Discord closes the bot's gateway socket 20 times: reconnect time, a DM after each
  telegram  getUpdates answers 409 / 429 / 502 / 500x3: recovery time, getUpdates calls meanwhile
  firstturn a neighbour's `health` latency while a fresh process runs its first chat turn

    .venv/bin/python bench/faults.py [cycles, default 50] [sigkill|provider|disk|discord|telegram|firstturn ...]

tests/hardening/test_faults.py runs the same functions with a handful of cycles.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import websockets
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gateway.agents.transcript import Transcript  # noqa: E402
from tests.fakes import discord as fd  # noqa: E402
from tests.fakes.base import LoopbackServer  # noqa: E402
from tests.fakes.discord import FakeDiscord  # noqa: E402
from tests.fakes.llm import FakeLLM  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402
from tests.harness import Client, connect_params, free_port  # noqa: E402

TOKEN = "faults-token-0123456789abcdef"
PROVIDER_KEY = "sk-faults-provider-key-0123456789"
GATEWAY_CMD = [sys.executable, "-m", "gateway", "--allow-unconfigured", "--bind", "loopback"]
FRIENDLY_FORBIDDEN = ("boom", "Traceback", PROVIDER_KEY)


# --- the gateway process --------------------------------------------------------------------


@dataclass
class Proc:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def launch(state: Path, logs: Path, **env: str) -> Proc:
    port = free_port()
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"gateway-{port}-{time.monotonic_ns()}.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCLAW_", "FLY_"))}
    full_env.update(
        OPENCLAW_STATE_DIR=str(state),
        OPENCLAW_GATEWAY_TOKEN=TOKEN,
        OPENCLAW_SKIP_CHANNELS="1",
        PYTHONUNBUFFERED="1",
        CLAWGATE_FAILOVER_TIME_SCALE="0.001",
        **env,
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*GATEWAY_CMD, "--port", str(port)],
            env=full_env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Proc(proc, port, log)


async def healthy(gw: Proc, within: float = 20.0) -> float:
    """Seconds until /healthz answers 200, then waits for /startupz 200 too (the subsystems are
    attached after the socket listens); RuntimeError (with the log) if the process exits."""
    start = time.perf_counter()
    live: float | None = None
    while time.perf_counter() - start < within:
        if gw.proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {gw.proc.returncode}:\n{gw.output()[-3000:]}")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            path = b"/healthz" if live is None else b"/startupz"
            writer.write(b"GET " + path + b" HTTP/1.0\r\n\r\n")
            status = await reader.readline()
            writer.close()
            if b" 200 " in status:
                if live is not None:
                    return live
                live = time.perf_counter() - start
                continue
        except OSError:
            pass
        await asyncio.sleep(0.01)
    raise RuntimeError(f"gateway not started after {within}s:\n{gw.output()[-3000:]}")


async def terminate(gw: Proc, sig: int = 15) -> int:
    if gw.proc.poll() is None:
        gw.proc.send_signal(sig)
    try:
        return await asyncio.to_thread(gw.proc.wait, 15)
    except subprocess.TimeoutExpired:
        gw.proc.kill()
        return await asyncio.to_thread(gw.proc.wait, 5)


@contextlib.asynccontextmanager
async def client(gw: Proc) -> AsyncIterator[Client]:
    async with websockets.connect(gw.ws, max_size=None, open_timeout=10) as ws:
        c = Client(ws)
        await c.recv()
        hello = await c.request("connect", connect_params(token=TOKEN))
        assert hello["ok"], hello
        yield c


async def turn_events(c: Client, run_id: str, within: float) -> list[dict[str, Any]]:
    from tests.harness import chat_events

    return await chat_events(c, run_id, within)


def provider_config(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "models": {
            "providers": {"openai": {"baseUrl": url + "/v1", "apiKey": PROVIDER_KEY, **extra}}
        },
        "agents": {"defaults": {"model": {"primary": "openai/gpt-faults"}}},
    }


# --- state on disk --------------------------------------------------------------------------


@dataclass
class StateReport:
    transcripts: int = 0
    unreadable: list[str] = field(default_factory=list)
    headerless: list[str] = field(default_factory=list)
    torn_tails: int = 0
    events: int = 0
    index_files: int = 0
    index_unreadable: list[str] = field(default_factory=list)
    corrupt_copies: int = 0
    temp_leftovers: int = 0


def check_state(state: Path) -> StateReport:
    """Read back everything the gateway keeps: every transcript and session index."""
    report = StateReport()
    for path in sorted(state.rglob("*.jsonl")):
        report.transcripts += 1
        result = Transcript(path).read()
        mid_file_garbage = result.skipped_lines - (1 if result.torn_tail else 0)
        size = path.stat().st_size
        if mid_file_garbage:
            report.unreadable.append(f"{path.name}: {size} bytes, {mid_file_garbage} bad lines")
        elif result.header is None:
            # Parses (nothing to skip) but lacks its session header: a create cut short.
            report.headerless.append(f"{path.name}: {size} bytes")
        report.torn_tails += int(result.torn_tail)
        report.events += len(result.events)
    for path in sorted(state.rglob("sessions.journal")):
        # Whole-row lines: only a torn last line (a kill mid-append) may fail to parse.
        lines = path.read_bytes().split(b"\n")[:-1]
        for line in lines[:-1]:
            try:
                json.loads(line)
            except ValueError:
                report.index_unreadable.append(f"{path}: damaged journal line")
                break
    for path in sorted(state.rglob("sessions.json")):
        report.index_files += 1
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            assert isinstance(data, dict)
        except (ValueError, AssertionError, OSError) as exc:
            report.index_unreadable.append(f"{path}: {exc}")
    report.corrupt_copies = len(list(state.rglob("*.corrupt-*")))
    report.temp_leftovers = len([p for p in state.rglob("*.tmp") if p.is_file()])
    return report


# --- 1. SIGKILL with a turn in flight -------------------------------------------------------


async def sigkill_cycles(cycles: int, workdir: Path, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    state, logs = workdir / "state", workdir / "logs"
    state.mkdir(parents=True, exist_ok=True)
    fake = FakeLLM(default_text="an answer of several words " * 8)
    await fake.start()
    (state / "openclaw.json").write_text(json.dumps(provider_config(fake.url)))
    starts: list[float] = []
    lock_failures: list[str] = []
    killed_at: dict[str, int] = {}
    completed = 0
    try:
        for i in range(cycles):
            fake.script.append({"delay": rng.uniform(0, 0.25)})
            gw = launch(state, logs)
            try:
                starts.append(await healthy(gw))
            except RuntimeError as exc:
                lock_failures.append(str(exc)[:400])
                await terminate(gw, 9)
                continue
            phase = rng.choice(["after-ack", "in-model", "in-model", "after-final"])
            try:
                async with client(gw) as c:
                    session = f"s{i % 5}"
                    ack = await c.call(
                        "chat.send",
                        {"sessionKey": session, "message": f"cycle {i}", "idempotencyKey": f"k{i}"},
                    )
                    if phase == "in-model":
                        seen = len(fake.requests)
                        await fake.wait_until(lambda reqs: len(reqs) > seen)  # noqa: B023
                        await asyncio.sleep(rng.uniform(0, 0.2))
                    elif phase == "after-final":
                        events = await turn_events(c, ack["runId"], 20)
                        completed += int(events[-1]["state"] == "final")
                    gw.proc.kill()  # SIGKILL: no drain, no flush, no lock release
            finally:
                await terminate(gw, 9)
            killed_at[phase] = killed_at.get(phase, 0) + 1
        # One more start: the state must be usable as is.
        gw = launch(state, logs)
        try:
            starts.append(await healthy(gw))
            async with client(gw) as c:
                history = await c.call("chat.history", {"sessionKey": "s0"})
                sessions = await c.call("sessions.list", {})
                ack = await c.call(
                    "chat.send", {"sessionKey": "s0", "message": "after", "idempotencyKey": "z"}
                )
                final = (await turn_events(c, ack["runId"], 20))[-1]["state"]
        finally:
            code = await terminate(gw)
    finally:
        await fake.stop()
    report = check_state(state)
    return {
        "cycles": cycles,
        "kill phases": killed_at,
        "lock failures": len(lock_failures),
        "lock failure samples": lock_failures[:2],
        "start -> healthy p50 ms": round(statistics.median(starts) * 1000),
        "start -> healthy max ms": round(max(starts) * 1000),
        "turns completed before kill": completed,
        "sessions after": len(sessions["sessions"]),
        "s0 history messages": len(history["messages"]),
        "turn after restarts": final,
        "clean exit code": code,
        "transcripts": report.transcripts,
        "unreadable transcripts": len(report.unreadable),
        "unreadable samples": report.unreadable[:3],
        "headerless transcripts": len(report.headerless),
        "torn last lines (tolerated)": report.torn_tails,
        "session index files": report.index_files,
        "unreadable index files": len(report.index_unreadable),
        "index set aside as corrupt": report.corrupt_copies,
        "temp files left by kills": report.temp_leftovers,
    }


# --- 2. provider outage and hangs -----------------------------------------------------------


class StallingLLM(LoopbackServer):
    """OpenAI chat completions that send one delta, then go silent (a hung upstream)."""

    def __init__(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        super().__init__(app)
        self.release = asyncio.Event()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        await self.record({"at": time.monotonic()})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        chunk = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": "gpt-faults",
            "choices": [{"index": 0, "delta": {"content": "partial "}, "finish_reason": None}],
        }
        await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.release.wait(), 60)
        return resp


async def _probe_health(c: Client, stop: asyncio.Event, latencies: list[float]) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        await c.call("health")
        latencies.append(time.perf_counter() - t0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


async def _scenario(
    gw: Proc, session: str, within: float
) -> tuple[list[dict[str, Any]], float, list[float]]:
    async with client(gw) as c, client(gw) as neighbour:
        stop = asyncio.Event()
        latencies: list[float] = []
        probe = asyncio.create_task(_probe_health(neighbour, stop, latencies))
        t0 = time.perf_counter()
        ack = await c.call(
            "chat.send", {"sessionKey": session, "message": "hi", "idempotencyKey": session}
        )
        events = await turn_events(c, ack["runId"], within)
        took = time.perf_counter() - t0
        stop.set()
        await probe
        return events, took, latencies


def _outcome(events: list[dict[str, Any]], took: float, latencies: list[float]) -> dict[str, Any]:
    last = events[-1]
    message = str(last.get("errorMessage", ""))
    return {
        "final state": last["state"],
        "deltas before": sum(1 for e in events if e["state"] == "delta"),
        "user sees": message[:120],
        "friendly (no raw error/key)": bool(message)
        and not any(s in message for s in FRIENDLY_FORBIDDEN),
        "seconds to answer": round(took, 2),
        "neighbour health p50/max ms": (
            round(statistics.median(latencies) * 1000, 1) if latencies else None,
            round(max(latencies) * 1000, 1) if latencies else None,
        ),
    }


async def provider_faults(workdir: Path, request_timeout_s: float = 1.0) -> dict[str, Any]:
    state, logs = workdir / "state", workdir / "logs"
    state.mkdir(parents=True, exist_ok=True)
    fake, stall = FakeLLM(), StallingLLM()
    await fake.start()
    await stall.start()
    cfg = provider_config(fake.url, timeoutSeconds=request_timeout_s)
    (state / "openclaw.json").write_text(json.dumps(cfg))
    out: dict[str, Any] = {"request timeout s": request_timeout_s}
    gw = launch(state, logs)
    try:
        await healthy(gw)
        fake.script.append({"text": "partial answer here", "stream_error": "server_error"})
        out["outage mid-stream"] = _outcome(*await _scenario(gw, "outage", 30))
        fake.script += [{"delay": 30}] * 20
        out["hang before answering"] = _outcome(*await _scenario(gw, "hang", 60))
        out["hang: model requests"] = len(fake.requests) - 1
        fake.script.clear()
        async with client(gw) as c:
            snap = await c.call("config.get", {})
            patch = {"models": {"providers": {"openai": {"baseUrl": stall.url + "/v1"}}}}
            await c.call("config.patch", {"raw": json.dumps(patch), "baseHash": snap["hash"]})
        out["stall mid-stream"] = _outcome(*await _scenario(gw, "stall", 60))
        out["stall: model requests"] = len(stall.requests)
        stall.release.set()
    finally:
        code = await terminate(gw)
        await fake.stop()
        await stall.stop()
    out["exit code"] = code
    out["key in log"] = PROVIDER_KEY in gw.output()
    return out


# --- 3. disk full ---------------------------------------------------------------------------


def _mount_tmpfs(target: Path, size: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(target)],
        check=True,
        capture_output=True,
    )


def _fill(target: Path) -> int:
    """Write until ENOSPC; the bytes written."""
    written = 0
    block = b"\0" * 65536
    with (target / "filler").open("wb") as fh:
        try:
            while True:
                written += fh.write(block)
                fh.flush()
        except OSError:
            pass
    # Small writes too: fill the last partial block.
    with contextlib.suppress(OSError), (target / "filler2").open("wb", buffering=0) as fh:
        while fh.write(b"\0" * 512):
            written += 512
    return written


async def disk_full(workdir: Path, size: str = "4m") -> dict[str, Any]:
    state, logs = workdir / "tmpfs-state", workdir / "logs"
    _mount_tmpfs(state, size)
    fake = FakeLLM(default_text="disk answer")
    await fake.start()
    out: dict[str, Any] = {"state volume": f"tmpfs {size}"}
    try:
        (state / "openclaw.json").write_text(json.dumps(provider_config(fake.url)))
        gw = launch(state, logs)
        try:
            await healthy(gw)
            async with client(gw) as c:
                ack = await c.call(
                    "chat.send", {"sessionKey": "main", "message": "one", "idempotencyKey": "d1"}
                )
                out["turn before full"] = (await turn_events(c, ack["runId"], 20))[-1]["state"]
                filler = state / "fill"
                filler.mkdir()
                out["bytes to fill"] = _fill(filler)
                for name, session in (("existing session", "main"), ("new session", "fresh")):
                    res = await c.request(
                        "chat.send",
                        {"sessionKey": session, "message": "two", "idempotencyKey": f"d-{name}"},
                        timeout=20,
                    )
                    if res["ok"] and res["payload"].get("status") == "started":
                        last = (await turn_events(c, res["payload"]["runId"], 20))[-1]
                        out[f"turn when full ({name})"] = {
                            "state": last["state"],
                            "user sees": str(
                                last.get("errorMessage") or _text(last.get("message"))
                            )[:160],
                        }
                    else:
                        out[f"turn when full ({name})"] = {
                            "rpc": res.get("error") or res.get("payload")
                        }
                out["health when full"] = (await c.call("health"))["ok"]
                snap = await c.request("config.get", {})
                out["config.get when full"] = snap["ok"]
                for p in filler.iterdir():
                    p.unlink()
                ack = await c.call(
                    "chat.send", {"sessionKey": "main", "message": "three", "idempotencyKey": "d3"}
                )
                out["turn after space freed"] = (await turn_events(c, ack["runId"], 20))[-1][
                    "state"
                ]
                history = await c.call("chat.history", {"sessionKey": "main"})
                out["history after"] = [m.get("role") for m in history["messages"]]
        finally:
            out["exit code"] = await terminate(gw)
        log = gw.output()
        out["log lines about space"] = [
            line[:200] for line in log.splitlines() if "space" in line.lower()
        ][:4]
        out["tracebacks in log"] = log.count("Traceback")
        report = check_state(state)
        out["transcripts"] = report.transcripts
        out["unreadable transcripts"] = len(report.unreadable)
        out["unreadable samples"] = report.unreadable[:3]
        out["headerless transcripts"] = report.headerless[:3]
        out["torn last lines (tolerated)"] = report.torn_tails
        out["unreadable index files"] = len(report.index_unreadable)
        out["index set aside as corrupt"] = report.corrupt_copies
        out["temp files left"] = report.temp_leftovers
    finally:
        await fake.stop()
        await asyncio.to_thread(
            subprocess.run, ["umount", "-l", str(state)], check=False, capture_output=True
        )
    return out


def _text(message: Any) -> str:
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return str(content or "")


# --- 4. channel faults (in-process gateway, both channels against the fakes) ----------------

DC_DM_USER = 880_042
TG_DM_CHAT = 880_043


@contextlib.asynccontextmanager
async def channel_gateway(
    workdir: Path, fast: bool
) -> AsyncIterator[tuple[Any, FakeTelegram, FakeDiscord, FakeLLM]]:
    """A live gateway with Telegram and Discord on the fakes; `fast` shortens the long poll
    and the back-offs (the bounded test), otherwise the shipped values are measured."""
    import discord
    import pytest

    from channels.discord import DiscordChannel
    from channels.telegram import TelegramChannel
    from tests.harness import live_gateway

    workdir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, before anything runs)
    llm, tg, dc = FakeLLM(default_text="ok"), FakeTelegram(), FakeDiscord()
    for server in (llm, tg, dc):
        await server.start()
    open_dms = {"dmPolicy": "open", "allowFrom": ["*"]}
    config = {
        "gateway": {"mode": "local"},
        **provider_config(llm.url),
        "session": {"dmScope": "per-channel-peer"},
        "channels": {
            "telegram": {"botToken": tg.token, "apiRoot": tg.url, **open_dms},
            "discord": {"token": dc.token, **open_dms},
        },
    }
    try:
        with pytest.MonkeyPatch.context() as mp:
            # discord.py keeps the API host in class attributes: restore them afterwards.
            mp.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
            ws_cls = discord.gateway.DiscordWebSocket
            mp.setattr(ws_cls, "DEFAULT_GATEWAY", ws_cls.DEFAULT_GATEWAY)
            mp.setenv("DISCORD_API_URL", dc.api_base)
            mp.setenv("CLAWGATE_FAILOVER_TIME_SCALE", "0.001")
            mp.setattr(DiscordChannel, "guild_ready_timeout", 0.05)
            if fast:
                mp.setattr(TelegramChannel, "poll_timeout_s", 1)
                mp.setattr(TelegramChannel, "restart_initial_s", 0.05)
                mp.setattr(TelegramChannel, "network_retry_max_s", 0.05)
            async with live_gateway(workdir, config) as live:
                manager = live.gateway.extensions["channels"]
                # `connected` waits for the first long poll to return (30 s unless fast): the
                # first getUpdates arriving at the fake is enough to start.
                await tg.wait_until(lambda _: bool(tg.polls), 30)
                await manager.get("discord").runner.wait_for_status(lambda s: s.connected, 30)
                yield live, tg, dc, llm
    finally:
        for server in (llm, tg, dc):
            await server.stop()


async def _discord_dm_answered(dc: FakeDiscord, text: str, within: float) -> float:
    path = f"/channels/{DC_DM_USER}/messages"
    before = len(dc.rest_calls("POST", path))
    t0 = time.perf_counter()
    author = fd.user(DC_DM_USER, "faults")
    await dc.message_create(fd.message(text, DC_DM_USER, author))
    await dc.wait_until(lambda _: len(dc.rest_calls("POST", path)) > before, within)
    return time.perf_counter() - t0


async def _telegram_dm_answered(tg: FakeTelegram, text: str, within: float) -> float:
    def replies() -> int:
        return sum(
            1
            for r in tg.requests
            if r["method"] == "sendMessage" and r["params"].get("chat_id") == str(TG_DM_CHAT)
        )

    before = replies()
    t0 = time.perf_counter()
    tg.text_update(text, chat_id=TG_DM_CHAT, user_id=TG_DM_CHAT)
    await tg.wait_until(lambda _: replies() > before, within)
    return time.perf_counter() - t0


async def discord_drops(workdir: Path, drops: int, fast: bool = False) -> dict[str, Any]:
    """Close the bot's gateway socket `drops` times (close 4000, as Discord does on its side):
    time until discord.py has RESUMEd (or re-IDENTIFYed), then a DM must still be answered."""
    reconnect: list[float] = []
    answer: list[float] = []
    failures: list[str] = []
    async with channel_gateway(workdir, fast) as (live, _tg, dc, _llm):
        runner = live.gateway.extensions["channels"].get("discord").runner
        await _discord_dm_answered(dc, "warm-up", 15)
        for i in range(drops):
            seen = len(dc.ops(6)) + len(dc.ops(2))
            t0 = time.perf_counter()
            await dc.drop_sockets(4000)
            try:
                await dc.wait_until(partial(_reconnected, dc, seen), 60)
                reconnect.append(time.perf_counter() - t0)
                answer.append(await _discord_dm_answered(dc, f"after drop {i}", 15))
            except TimeoutError:
                failures.append(f"drop {i}: no reconnect or no answer")
        status = runner.status()
        return {
            "drops": drops,
            "reconnect s median / max": _median_max(reconnect),
            "DM after each drop answered": f"{len(answer)}/{drops}",
            "answer s median / max": _median_max(answer),
            "RESUME / IDENTIFY": (len(dc.ops(6)), len(dc.ops(2))),
            "connected at the end": status.connected,
            "reconnects counted": status.reconnects,
            "failures": failures,
        }


def _reconnected(dc: FakeDiscord, seen: int, _reqs: list[dict[str, Any]]) -> bool:
    return len(dc.ops(6)) + len(dc.ops(2)) > seen


def _polls(reqs: list[dict[str, Any]], start: int) -> list[dict[str, Any]]:
    return [r for r in reqs[start:] if r["method"] == "getUpdates"]


def _failed_once(start: int, code: int, reqs: list[dict[str, Any]]) -> bool:
    return any(r["status"] == code for r in _polls(reqs, start))


def _recovered(start: int, code: int, times: int, reqs: list[dict[str, Any]]) -> bool:
    polls = _polls(reqs, start)
    return sum(r["status"] == code for r in polls) == times and bool(polls[-1]["status"] == 200)


TELEGRAM_FAULTS: list[tuple[str, int, str, dict[str, Any], int]] = [
    # name, status, description, parameters, how many in a row
    ("409 Conflict", 409, "Conflict: terminated by other getUpdates request", {}, 1),
    ("429 retry_after=2", 429, "Too Many Requests: retry after 2", {"retry_after": 2}, 1),
    ("502 Bad Gateway", 502, "Bad Gateway", {}, 1),
    ("500 x3 in a row", 500, "Internal Server Error", {}, 3),
]


async def telegram_poll_faults(workdir: Path, fast: bool = False) -> dict[str, Any]:
    """getUpdates answers an error (once or a few times in a row): seconds until polling works
    again, how many getUpdates calls the back-off made (a crash loop would make many), and
    whether a DM right after is answered."""
    out: dict[str, Any] = {}
    async with channel_gateway(workdir, fast) as (live, tg, _dc, _llm):
        runner = live.gateway.extensions["channels"].get("telegram").runner
        await _telegram_dm_answered(tg, "warm-up", 15)
        for name, code, description, params, times in TELEGRAM_FAULTS:
            start = len(tg.requests)
            for _ in range(times):
                tg.fail_next("getUpdates", code, description, **params)

            # An update releases the held long poll, so the next getUpdates gets the error now.
            tg.text_update("release the poll", chat_id=TG_DM_CHAT + 1, user_id=TG_DM_CHAT + 1)
            await tg.wait_until(partial(_failed_once, start, code), 60)
            t_fail = time.perf_counter()
            await tg.wait_until(partial(_recovered, start, code, times), 120)
            recovered = time.perf_counter() - t_fail
            calls = len(_polls(tg.requests, start))
            answered = await _telegram_dm_answered(tg, f"after {name}", 15)
            out[name] = {
                "recovery s": round(recovered, 2),
                "getUpdates calls (errors + the one that worked)": calls,
                "DM after answered in s": round(answered, 3),
                "connected": runner.status().connected,
            }
    return out


async def first_turn_stall(workdir: Path, runs: int) -> dict[str, Any]:
    """A fresh gateway process; a neighbour polls `health` every ~5 ms while another client
    runs the first chat turn (the provider SDK is imported then) and the second one."""
    fake = FakeLLM(default_text="hello")
    await fake.start()
    per_run: dict[str, list[float]] = {k: [] for k in ("idle", "first turn", "second turn")}
    maxima: dict[str, list[float]] = {k: [] for k in per_run}
    turn_s: dict[str, list[float]] = {"first turn": [], "second turn": []}
    try:
        for run in range(runs):
            state = workdir / f"run{run}"
            state.mkdir(parents=True, exist_ok=True)
            (state / "openclaw.json").write_text(json.dumps(provider_config(fake.url)))
            gw = launch(state, workdir / "logs")
            try:
                await healthy(gw)
                async with client(gw) as c, client(gw) as neighbour:
                    idle: list[float] = []
                    for _ in range(40):
                        t0 = time.perf_counter()
                        await neighbour.call("health")
                        idle.append(time.perf_counter() - t0)
                    per_run["idle"] += idle
                    maxima["idle"].append(max(idle))
                    for turn in ("first turn", "second turn"):
                        stop = asyncio.Event()
                        lat: list[float] = []
                        probe = asyncio.create_task(_probe_health_fast(neighbour, stop, lat))
                        t0 = time.perf_counter()
                        ack = await c.call(
                            "chat.send",
                            {"sessionKey": "s", "message": "hi", "idempotencyKey": f"{turn}{run}"},
                        )
                        events = await turn_events(c, ack["runId"], 30)
                        turn_s[turn].append(time.perf_counter() - t0)
                        stop.set()
                        await probe
                        if events[-1]["state"] != "final":
                            raise RuntimeError(f"{turn}: {events[-1]}")
                        per_run[turn] += lat
                        maxima[turn].append(max(lat))
            finally:
                await terminate(gw)
    finally:
        await fake.stop()
    out: dict[str, Any] = {"runs (fresh process each)": runs}
    for key, values in per_run.items():
        out[f"health during {key}: ms p50 / max"] = (
            round(statistics.median(values) * 1000, 2),
            round(max(values) * 1000, 1),
        )
        out[f"health during {key}: median of per-run max ms"] = round(
            statistics.median(maxima[key]) * 1000, 1
        )
    for key, values in turn_s.items():
        out[f"{key} took s (median)"] = round(statistics.median(values), 3)
    return out


async def _probe_health_fast(c: Client, stop: asyncio.Event, latencies: list[float]) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        await c.call("health")
        latencies.append(time.perf_counter() - t0)
        await asyncio.sleep(0.005)


def _median_max(values: list[float]) -> tuple[float, float] | None:
    if not values:
        return None
    return (round(statistics.median(values), 3), round(max(values), 3))


# --- main -----------------------------------------------------------------------------------


def show(title: str, figures: dict[str, Any]) -> None:
    print(f"\n== {title}")
    for key, value in figures.items():
        if isinstance(value, dict):
            print(f"  {key}:")
            for k, v in value.items():
                print(f"      {k:<32} {v}")
        else:
            print(f"  {key:<36} {value}")


async def main(argv: list[str]) -> None:
    cycles = int(argv[0]) if argv and argv[0].isdigit() else 50
    everything = ["sigkill", "provider", "disk", "discord", "telegram", "firstturn"]
    which = [a for a in argv if not a.isdigit()] or everything
    print(f"faults bench {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="clawgate-faults-") as tmp:
        work = Path(tmp)
        if "sigkill" in which:
            show(f"SIGKILL + restart x{cycles}", await sigkill_cycles(cycles, work / "kill"))
        if "provider" in which:
            show("provider faults", await provider_faults(work / "provider"))
        if "disk" in which:
            if os.geteuid() != 0:
                print("\n== disk full: needs root to mount a tmpfs; not run")
            else:
                show("disk full", await disk_full(work / "disk"))
        if "discord" in which:
            show("Discord gateway socket dropped x20", await discord_drops(work / "dc", 20))
        if "telegram" in which:
            show("Telegram getUpdates errors", await telegram_poll_faults(work / "tg"))
        if "firstturn" in which:
            show("first chat turn after start (x5)", await first_turn_stall(work / "ft", 5))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))

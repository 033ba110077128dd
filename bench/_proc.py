"""Helpers shared by the benches: the gateway process, a protocol client, percentiles."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import websockets

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    state_dir: str | None = None,
    extra_env: dict[str, str] | None = None,
    module: str = "gateway",  # another `python -m` entry point that runs the gateway
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_")}
    env.update(
        OPENCLAW_STATE_DIR=state_dir or tempfile.mkdtemp(prefix="clawgate-bench-"),
        OPENCLAW_GATEWAY_TOKEN=TOKEN,
        OPENCLAW_SKIP_CHANNELS="1",
    )
    env.update(extra_env or {})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            module,
            "--allow-unconfigured",
            "--bind",
            "loopback",
            "--port",
            str(port),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, port


def wait_healthy(port: int, timeout: float = 30) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            time.sleep(0.005)
    raise RuntimeError("gateway did not become healthy")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (from /proc): unlike wall time, not
    inflated by waiting for a core on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def connect_params(
    scopes: list[str], client_id: str = "bench", mode: str = "bench"
) -> dict[str, Any]:
    """`connect` params for an operator client with the bench token."""
    return {
        "minProtocol": 4,
        "maxProtocol": 4,
        "client": {"id": client_id, "version": "1", "platform": "linux", "mode": mode},
        "role": "operator",
        "scopes": scopes,
        "auth": {"token": TOKEN},
    }


async def open_client(
    url: str, params: dict[str, Any], open_timeout: float = 30
) -> websockets.ClientConnection:
    """A connected, authenticated WebSocket client (raises if `connect` is refused)."""
    ws = await websockets.connect(url, max_size=None, open_timeout=open_timeout, ping_interval=None)
    await ws.recv()  # connect.challenge
    await ws.send(json.dumps({"type": "req", "id": "c", "method": "connect", "params": params}))
    while True:
        msg = json.loads(await ws.recv())
        if msg.get("id") == "c":
            if not msg.get("ok"):
                raise RuntimeError(f"connect refused: {msg}")
            return ws


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile, `q` in 0..1 (NaN for no values)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the newest user turn of a model request (every user message after the last
    assistant one: the reference sends its own context as a separate user message), any API."""
    items = body.get("input") if "input" in body else body.get("messages")
    texts: list[str] = []
    for item in reversed(items or []):
        if item.get("role") == "assistant":
            break
        if item.get("role") != "user":
            continue
        content = item.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        texts += [
            str(b.get("text", "")) for b in content or [] if b.get("type") in ("text", "input_text")
        ]
    return "\n".join(reversed(texts))


def prefill_sessions(state_dir: str, count: int, agent_id: str = "main") -> None:
    """`count` idle Telegram DM sessions in an agent's index, each with a transcript, as a
    gateway that has served that many people would have them: written in one go (creating
    them through the store would fsync each one, 20 s for 5,000), in the store's own format
    (rows through `SessionRow`, transcripts through `Transcript.create`'s header)."""
    from gateway.agents.store import SessionRow
    from gateway.agents.transcript import TRANSCRIPT_VERSION, iso_timestamp

    sessions = Path(state_dir) / "agents" / agent_id / "sessions"
    sessions.mkdir(parents=True, exist_ok=True)
    now = int(time.time() * 1000)
    rows: dict[str, Any] = {}
    for n in range(count):
        key = f"agent:{agent_id}:telegram:direct:{100000 + n}"
        session_id = f"00000000-0000-4000-8000-{n:012d}"
        row = SessionRow(
            key=key,
            session_id=session_id,
            session_started_at=now - 86_400_000 - n,
            updated_at=now - 3_600_000 - n,
            last_interaction_at=now - 3_600_000 - n,
            chat_type="direct",
            channel="telegram",
            account_id="default",
            display_name=f"User {n}",
            last_route={"channel": "telegram", "to": str(100000 + n), "accountId": "default"},
            input_tokens=1200,
            output_tokens=80,
            total_tokens=1280,
            context_tokens=200_000,
            model="gpt-bench",
            model_provider="openai",
            message_count=12,
            extra={"cacheRead": 0, "cacheWrite": 0, "totalTokensFresh": True},
        )
        rows[key] = row.to_json()
        header = {
            "type": "session",
            "version": TRANSCRIPT_VERSION,
            "id": session_id,
            "timestamp": iso_timestamp(),
            "cwd": state_dir,
        }
        (sessions / f"{session_id}.jsonl").write_text(json.dumps(header) + "\n")
    if rows:
        (sessions / "sessions.json").write_text(json.dumps(rows, separators=(",", ":")))

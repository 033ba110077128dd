"""Run the real gateway app in-process on a real loopback socket, and talk to it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import websockets

from gateway.assembly import build_gateway
from gateway.config.loader import LoadedConfig, validate_text
from gateway.config.models import OpenClawConfig
from gateway.runtime import Gateway
from gateway.server import bind_socket, make_server, resolve_settings
from gateway.settings import Flags

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "test-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loaded_from(config: dict[str, Any] | None, state_dir: Path) -> LoadedConfig:
    path = state_dir / "openclaw.json"
    if config is None:
        return LoadedConfig(path=path, exists=False, config=OpenClawConfig())
    raw = json.dumps(config, indent=2)
    path.write_text(raw)
    return validate_text(path, raw, {})


@dataclass
class LiveGateway:
    gateway: Gateway
    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"


@contextlib.asynccontextmanager
async def live_gateway(
    tmp_path: Path,
    config: dict[str, Any] | None = None,
    flags: Flags | None = None,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[LiveGateway]:
    """The real ASGI app under real uvicorn on 127.0.0.1, in the test's event loop."""
    env = {"OPENCLAW_STATE_DIR": str(tmp_path), "OPENCLAW_GATEWAY_TOKEN": TOKEN, **(env or {})}
    loaded = loaded_from(config, tmp_path)
    flags = flags or Flags(port=free_port(), bind="loopback")
    settings = resolve_settings(flags, loaded, env)
    gateway = build_gateway(settings, loaded)
    sock = bind_socket(settings.host, settings.port, attempts=1)
    server = make_server(gateway, drain_timeout_s=2)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.005)
    try:
        yield LiveGateway(gateway, settings.port)
    finally:
        if gateway.phase != "draining":
            await gateway.drain()
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def connect_params(
    token: str | None = TOKEN, scopes: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "minProtocol": 4,
        "maxProtocol": 4,
        "client": {"id": "test", "version": "1.0", "platform": "linux", "mode": "test"},
        "role": "operator",
        "scopes": scopes if scopes is not None else ["operator.admin"],
    }
    if token is not None:
        params["auth"] = {"token": token}
    params.update(extra)
    return params


class Client:
    """A minimal protocol client over the `websockets` library."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self._n = 0

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        data = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        assert isinstance(data, dict)
        return data

    async def request(
        self, method: str, params: Any = None, timeout: float = 5.0
    ) -> dict[str, Any]:
        self._n += 1
        req_id = f"{self._n}:test"
        frame: dict[str, Any] = {"type": "req", "id": req_id, "method": method}
        if params is not None:
            frame["params"] = params
        await self.ws.send(json.dumps(frame))
        deadline = time.monotonic() + timeout
        while True:
            msg = await self.recv(max(0.01, deadline - time.monotonic()))
            if msg.get("type") == "res" and msg.get("id") == req_id:
                return msg
            self.events.append(msg)

    async def call(self, method: str, params: Any = None) -> Any:
        res = await self.request(method, params)
        assert res["ok"], res
        return res["payload"]


@contextlib.asynccontextmanager
async def connected(live: LiveGateway, **params: Any) -> AsyncIterator[Client]:
    async with websockets.connect(live.ws, max_size=None) as ws:
        client = Client(ws)
        challenge = await client.recv()
        assert challenge["event"] == "connect.challenge"
        hello = await client.request("connect", connect_params(**params))
        assert hello["ok"], hello
        client.hello = hello["payload"]  # type: ignore[attr-defined]
        yield client


# --- subprocess gateways ------------------------------------------------------------------


def gateway_env(state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCLAW_", "FLY_"))}
    env.update({"OPENCLAW_STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def start_process(
    args: list[str], env: Mapping[str, str], cwd: Path | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", *args],
        env=dict(env),
        cwd=cwd or ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_process(
    args: list[str], env: Mapping[str, str], timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=dict(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_healthy(port: int, proc: subprocess.Popen[str] | None = None, timeout: float = 10) -> None:
    """Wait until the gateway has started: /healthz answers as soon as the socket listens, the
    subsystems (and their start-up log lines) follow; /startupz says when they are up."""
    import urllib.request

    deadline = time.monotonic() + timeout
    path = "/healthz"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"gateway exited with {proc.returncode}:\n{out}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as r:
                if r.status == 200:
                    if path == "/startupz":
                        return
                    path = "/startupz"
                    continue
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"gateway on port {port} not started after {timeout}s ({path})")


def stop_process(proc: subprocess.Popen[str], sig: int = 15, timeout: float = 10) -> str:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.stdout.read() if proc.stdout else ""


# --- chat helpers -------------------------------------------------------------------------


async def chat_events(client: Client, run_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """`chat` event payloads of one run, up to and including its terminal state."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    pending = [e for e in client.events if e.get("event") == "chat"]
    client.events = [e for e in client.events if e.get("event") != "chat"]
    while True:
        msg = (
            pending.pop(0) if pending else await client.recv(max(0.01, deadline - time.monotonic()))
        )
        if msg.get("type") != "event" or msg.get("event") != "chat":
            if msg.get("type") == "event":
                client.events.append(msg)
            continue
        payload = msg["payload"]
        if payload.get("runId") != run_id:
            client.events.append(msg)
            continue
        out.append(payload)
        if payload["state"] in ("final", "error", "aborted"):
            return out


async def chat(
    client: Client,
    message: str,
    session: str = "main",
    key: str | None = None,
    timeout: float = 10.0,
    **extra: Any,
) -> list[dict[str, Any]]:
    """chat.send, then the run's events to the end."""
    idem = key or f"run-{time.monotonic_ns()}"
    ack = await client.call(
        "chat.send", {"sessionKey": session, "message": message, "idempotencyKey": idem, **extra}
    )
    assert ack["status"] == "started", ack
    return await chat_events(client, ack["runId"], timeout)


def final_text(events: list[dict[str, Any]]) -> str:
    last = events[-1]
    assert last["state"] == "final", last
    return "".join(b["text"] for b in last["message"]["content"] if b.get("type") == "text")

"""Fixtures for the compatibility suite: the reference install and our gateway as a process."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.compat import reference as ref_mod
from tests.fakes.llm import FakeLLM

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


@pytest.fixture(scope="session")
def reference() -> ref_mod.Reference:
    """The cached reference packages, installed with npm on first use. Never skips: a failed
    install fails the tests with npm's output."""
    try:
        ref = ref_mod.reference()
    except ref_mod.ReferenceInstallError as exc:
        pytest.fail(f"reference OpenClaw install failed:\n{exc}", pytrace=False)
    ref_mod.schema()  # load and meta-check once (~2 s) here, not inside an async test
    return ref


class GatewayProcess(tuple[str, str]):
    """`(url, token)` of a running `python -m gateway`, plus a few handles for diagnostics."""

    url: str
    token: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    state_dir: Path

    def __new__(
        cls, url: str, token: str, port: int, proc: subprocess.Popen[bytes], log_path: Path,
        state_dir: Path,
    ) -> GatewayProcess:  # fmt: skip
        self = super().__new__(cls, (url, token))
        self.url, self.token, self.port = url, token, port
        self.proc, self.log_path, self.state_dir = proc, log_path, state_dir
        return self

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthz(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
            return bool(r.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def start_gateway(
    tmp_path: Path, config: dict[str, Any] | None = None, extra_env: dict[str, str] | None = None
) -> GatewayProcess:
    """Start `python -m gateway` on 127.0.0.1 with a random token (and `config`, if given)."""
    state_dir = tmp_path / "gateway-state"
    state_dir.mkdir(exist_ok=True)
    if config is not None:
        (state_dir / "openclaw.json").write_text(json.dumps(config, indent=2))
    log_path = tmp_path / "gateway.log"
    token = secrets.token_hex(16)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCLAW_", "FLY_"))}
    env.update(
        {
            "OPENCLAW_STATE_DIR": str(state_dir),
            "OPENCLAW_GATEWAY_TOKEN": token,
            "OPENCLAW_SKIP_CHANNELS": "1",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
    )
    cmd = [
        sys.executable, "-m", "gateway", "--allow-unconfigured", "--port", str(port),
        "--bind", "loopback",
    ]  # fmt: skip
    # Output goes to a file, not a pipe: nobody reads a pipe while the tests run, and a full pipe
    # would block the gateway.
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    gw = GatewayProcess(f"ws://127.0.0.1:{port}", token, port, proc, log_path, state_dir)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not _healthz(port):
        if proc.poll() is not None:
            pytest.fail(
                f"`{' '.join(cmd[1:])}` exited with {proc.returncode} before /healthz "
                f"answered:\n{gw.log()}",
                pytrace=False,
            )
        if time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(
                f"gateway on port {port}: GET /healthz not 200 within {STARTUP_TIMEOUT_S}s:\n"
                f"{gw.log()}",
                pytrace=False,
            )
        time.sleep(0.05)
    return gw


@pytest.fixture
def gateway_process(tmp_path: Path) -> Iterator[GatewayProcess]:
    """Our gateway as a subprocess on 127.0.0.1 with a random token; yields `(url, token)`."""
    gw = start_gateway(tmp_path)
    try:
        yield gw
    finally:
        _stop(gw.proc)


class ThreadedFakeLLM:
    """The fake model server on its own event loop thread, for synchronous CLI tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.fake = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> FakeLLM:
        return await FakeLLM(default_text="hello from the fake model").start()  # type: ignore[return-value]

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def chat_gateway(tmp_path: Path) -> Iterator[tuple[GatewayProcess, FakeLLM]]:
    """Our gateway whose default model is served by a fake OpenAI-compatible server."""
    llm = ThreadedFakeLLM()
    config = {
        "models": {"providers": {"openai": {"baseUrl": llm.fake.url + "/v1", "apiKey": "sk-test"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-test"}}},
    }
    gw = start_gateway(tmp_path, config)
    try:
        yield gw, llm.fake
    finally:
        _stop(gw.proc)
        llm.close()

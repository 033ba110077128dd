"""`python -m tests.agents.gateway_main …`: the real gateway with the loop-test tools loaded,
and `spawn()` to start it as a subprocess."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import websockets

from gateway.cli import main
from tests.agents.loop_tools import install
from tests.harness import ROOT, TOKEN, Client, connect_params, gateway_env


def spawn(state: Path, port: int, token: str = TOKEN) -> subprocess.Popen[str]:
    """This module as `python -m …` on 127.0.0.1:`port` (output piped to the caller)."""
    env = gateway_env(state, OPENCLAW_GATEWAY_TOKEN=token, OPENCLAW_SKIP_CHANNELS="1")
    args = ["--allow-unconfigured", "--port", str(port), "--bind", "loopback"]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.agents.gateway_main", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@contextlib.asynccontextmanager
async def client_for(port: int, **params: Any) -> AsyncIterator[Client]:
    async with websockets.connect(f"ws://127.0.0.1:{port}/", max_size=None) as ws:
        client = Client(ws)
        await client.recv()  # connect.challenge
        hello = await client.request("connect", connect_params(**params))
        assert hello["ok"], hello
        yield client


if __name__ == "__main__":
    install()
    raise SystemExit(main())

"""The official `openclaw tui`, driven in tmux, chats through our gateway (issue 17)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import GatewayProcess
from tests.compat.reference import Reference, cli_env

pytestmark = pytest.mark.compat

WAIT_S = 60.0


class Tmux:
    """One private tmux server (own socket name) running one pane."""

    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, *args: str) -> str:
        tmux = shutil.which("tmux")
        assert tmux is not None, "tmux is not installed (scripts/test installs it with apt)"
        done = subprocess.run(
            [tmux, "-L", self.name, *args], capture_output=True, text=True, timeout=10
        )
        assert done.returncode == 0, f"tmux {' '.join(args)}: {done.stderr}"
        return done.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "tui", "-S", "-200")

    def wait_for(self, text: str, timeout: float = WAIT_S) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.3)
        raise AssertionError(f"{text!r} never appeared in the TUI; last screen:\n{screen}")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    server = Tmux(f"clawgate-tui-{uuid.uuid4().hex[:8]}")
    try:
        yield server
    finally:
        subprocess.run(["tmux", "-L", server.name, "kill-server"], capture_output=True, timeout=10)


def test_tui_sends_a_message_and_shows_the_reply(
    reference: Reference,
    chat_gateway: tuple[GatewayProcess, Any],
    tmux: Tmux,
    tmp_path: Path,
) -> None:
    gw, llm = chat_gateway
    # A tool call first (the real `read`), then the answer the TUI must show.
    (gw.state_dir / "workspace").mkdir(exist_ok=True)
    (gw.state_dir / "workspace" / "plan.txt").write_text("ship on tuesday\n")
    llm.script.extend(
        [
            {"tool_calls": [{"name": "read", "arguments": {"path": "plan.txt"}}]},
            {"text": "hello from the fake model to the tui"},
        ]
    )
    home, state = tmp_path / "tui-home", tmp_path / "tui-state"
    home.mkdir()
    state.mkdir()
    env = cli_env(home, state, {"TERM": "xterm-256color"})
    cmd = [
        str(reference.node),
        str(reference.openclaw),
        "tui",
        "--url",
        gw.url,
        "--token",
        gw.token,
    ]
    shell = " ".join(
        ["env", "-i", *(f"{k}={shlex.quote(v)}" for k, v in env.items()), *map(shlex.quote, cmd)]
    )
    tmux.run("new-session", "-d", "-s", "tui", "-x", "160", "-y", "48", shell)
    tmux.wait_for("gateway connected")
    tmux.run("send-keys", "-t", "tui", "-l", "hi from the tui")
    tmux.run("send-keys", "-t", "tui", "Enter")
    screen = tmux.wait_for("hello from the fake model to the tui")
    assert "session event subscribe failed" not in screen, screen
    request = llm.bodies[-1]
    assert "hi from the tui" in str(request) and "ship on tuesday" in str(request), request


def test_tui_usage_command_sets_the_footer_through_sessions_patch(
    reference: Reference,
    chat_gateway: tuple[GatewayProcess, Any],
    tmux: Tmux,
    tmp_path: Path,
) -> None:
    """The TUI's own `/usage` sends `sessions.patch {key, responseUsage}`; the next answer
    then carries the tokens line (the fake reports 3 in / 2 out)."""
    gw, llm = chat_gateway
    llm.script.append({"text": "footer check answer"})
    home, state = tmp_path / "tui-home", tmp_path / "tui-state"
    home.mkdir()
    state.mkdir()
    env = cli_env(home, state, {"TERM": "xterm-256color"})
    cmd = [str(reference.node), str(reference.openclaw), "tui", "--url", gw.url]
    cmd += ["--token", gw.token]
    shell = " ".join(
        ["env", "-i", *(f"{k}={shlex.quote(v)}" for k, v in env.items()), *map(shlex.quote, cmd)]
    )
    tmux.run("new-session", "-d", "-s", "tui", "-x", "160", "-y", "48", shell)
    tmux.wait_for("gateway connected")
    tmux.run("send-keys", "-t", "tui", "-l", "/usage tokens")
    tmux.run("send-keys", "-t", "tui", "Enter")
    screen = tmux.wait_for("usage footer: tokens")
    assert "usage failed" not in screen, screen
    tmux.run("send-keys", "-t", "tui", "-l", "hello footer")
    tmux.run("send-keys", "-t", "tui", "Enter")
    screen = tmux.wait_for("Usage: 3 in / 2 out")
    assert "footer check answer" in screen, screen

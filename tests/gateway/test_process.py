"""The real `python -m gateway` process: startup guards, exit codes, lock, signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness import (
    ROOT,
    TOKEN,
    free_port,
    gateway_env,
    run_process,
    start_process,
    stop_process,
    wait_healthy,
)

FLY_CMD = ["--allow-unconfigured", "--bind", "lan"]
FLY_ENV = {"FLY_APP_NAME": "clawgate-test", "FLY_MACHINE_ID": "148e123a"}


def lock_file(state: Path) -> Path:
    return state / "tmp" / f"openclaw-{os.getuid()}" / "gateway.state.lock"


@pytest.mark.parametrize(
    ("config", "args", "needle"),
    [
        (None, ["--bind", "loopback"], "Missing config"),
        ({"gateway": {"port": 1}}, [], "no gateway.mode"),
        ("{ broken", [], "openclaw.json:1:9 — JSON5 parse failed"),
        ({"gateway": {"mode": "remote"}}, [], "current: remote"),
        ("{ broken", ["--allow-unconfigured"], "openclaw.json:1:9 — JSON5 parse failed"),
        ({"gateway": {"mode": "local", "bogus": 1}}, [], 'gateway: Unrecognized key: "bogus"'),
        # Sections past `gateway` are validated after the socket listens: same exit, same text.
        (
            {"gateway": {"mode": "local"}, "agents": {"defaults": {"bogus": 1}}},
            [],
            'agents.defaults: Unrecognized key: "bogus"',
        ),
        ({"gateway": {"mode": "local"}, "nope": 1}, [], 'Unrecognized key: "nope"'),
        # Syntax errors come first, with or without the flag, and never as "clobbered".
        (
            '{\n  "gateway": {"mode": "local"}\n  "agents": {}\n}',
            [],
            "openclaw.json:3:3 — JSON5 parse failed: unexpected",
        ),
        (
            '{\n  "gateway": {"mode": \u201clocal\u201d}\n}',
            ["--allow-unconfigured"],
            "openclaw.json:2:23 — JSON5 parse failed: curly quote",
        ),
        ("", [], "openclaw.json:1:1 — JSON5 parse failed: the file is empty"),
    ],
)
def test_config_guards_exit_78(
    tmp_path: Path, config: object, args: list[str], needle: str
) -> None:
    if config is not None:
        text = config if isinstance(config, str) else json.dumps(config)
        (tmp_path / "openclaw.json").write_text(text)
    before = (tmp_path / "openclaw.json").read_text() if config is not None else None
    result = run_process(
        [*args, "--port", str(free_port())], gateway_env(tmp_path, OPENCLAW_GATEWAY_TOKEN=TOKEN)
    )
    assert result.returncode == 78, result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    if "Unrecognized" in needle:
        assert "Fix the lines above" in result.stderr
    if "JSON5" in needle:
        assert "clobbered" not in result.stderr and "<string>" not in result.stderr
    # Never writes or repairs the config.
    after = (tmp_path / "openclaw.json").read_text() if config is not None else None
    assert before == after and (config is not None or not (tmp_path / "openclaw.json").exists())


def test_lan_without_token_exits_78_naming_the_env_var(tmp_path: Path) -> None:
    result = run_process([*FLY_CMD, "--port", str(free_port())], gateway_env(tmp_path, **FLY_ENV))
    assert result.returncode == 78
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "Refusing to bind gateway to lan without auth."
    assert "OPENCLAW_GATEWAY_TOKEN" in lines[-1] and "container" in result.stderr.lower()
    # Fly without --bind still means all interfaces (auto in a container), so also refused.
    result = run_process(
        ["--allow-unconfigured", "--port", str(free_port())], gateway_env(tmp_path, **FLY_ENV)
    )
    assert (
        result.returncode == 78
        and "Refusing to bind gateway to auto without auth." in result.stderr
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--port", "70000"], "Invalid --port. Use a port number from 1 to 65535"),
        (["--port", "abc"], "Invalid --port"),
        (
            ["--bind", "everywhere"],
            'Invalid --bind. Use "loopback", "lan", "auto", or "custom".',
        ),
        (["--auth", "magic"], "Invalid --auth."),
        (["--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_bad_flags_exit_1_with_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    result = run_process(args, gateway_env(tmp_path))
    assert result.returncode == 1 and needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_fly_command_lifecycle_lock_and_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = gateway_env(
        tmp_path,
        OPENCLAW_GATEWAY_TOKEN=TOKEN,
        ANTHROPIC_API_KEY="sk-ant-secret-value-xyz",
        **FLY_ENV,
    )
    started = time.monotonic()
    proc = start_process([*FLY_CMD, "--port", str(port)], env)
    wait_healthy(port, proc)
    startup_s = time.monotonic() - started
    payload = json.loads(lock_file(tmp_path).read_text())
    assert payload["pid"] == proc.pid and payload["port"] == port
    assert payload["configPath"] == str(tmp_path / "openclaw.json") and payload["startedAt"]
    assert stat.S_IMODE(lock_file(tmp_path).stat().st_mode) == 0o600

    # A second gateway on the same state dir (other port) is refused, naming the owner.
    t0 = time.monotonic()
    second = run_process([*FLY_CMD, "--port", str(free_port())], env)
    assert second.returncode == 78 and f"pid {proc.pid}" in second.stderr
    assert time.monotonic() - t0 < 9

    out = stop_process(proc, signal.SIGTERM)
    assert proc.returncode == 0, out
    assert f"[gateway] listening on ws://0.0.0.0:{port} (PID {proc.pid})" in out
    assert "[gateway] ready" in out and "non-loopback" in out
    assert "received SIGTERM" in out and "[shutdown] completed cleanly" in out
    assert TOKEN not in out and "sk-ant-secret-value-xyz" not in out
    assert not lock_file(tmp_path).exists()
    assert startup_s < 10


def test_restart_after_sigkill_is_immediate(tmp_path: Path) -> None:
    port = free_port()
    env = gateway_env(tmp_path, OPENCLAW_GATEWAY_TOKEN=TOKEN)
    for _ in range(3):
        proc = start_process(["--allow-unconfigured", "--port", str(port)], env)
        wait_healthy(port, proc)
        proc.kill()
        proc.wait(5)
        assert lock_file(tmp_path).exists()  # stale payload left behind, as after a crash
    t0 = time.monotonic()
    proc = start_process(["--allow-unconfigured", "--port", str(port)], env)
    wait_healthy(port, proc)
    assert time.monotonic() - t0 < 5
    stop_process(proc)


def test_stale_lock_naming_our_own_pid_does_not_block(tmp_path: Path) -> None:
    """The container case: the stale payload names the PID the new process gets."""
    port = free_port()
    lock = lock_file(tmp_path)
    lock.parent.mkdir(parents=True)
    env = gateway_env(tmp_path, OPENCLAW_GATEWAY_TOKEN=TOKEN)
    # `exec` keeps the shell's PID, so the payload names the gateway's own PID.
    script = (
        f'printf \'{{"pid": %d, "port": {port}}}\' $$ > "{lock}"; '
        f'exec "{sys.executable}" -m gateway --allow-unconfigured --port {port}'
    )
    proc = subprocess.Popen(
        ["sh", "-c", script],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_healthy(port, proc)
    assert json.loads(lock.read_text())["pid"] == proc.pid
    assert stop_process(proc) and proc.returncode == 0


def test_port_in_use_exits_1_after_retrying(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        t0 = time.monotonic()
        result = run_process(
            ["--allow-unconfigured", "--port", str(port)],
            gateway_env(tmp_path, OPENCLAW_GATEWAY_TOKEN=TOKEN),
            timeout=30,
        )
        elapsed = time.monotonic() - t0
    assert result.returncode == 1 and f"Port {port} is already in use" in result.stderr
    assert 8 < elapsed < 20
    assert not lock_file(tmp_path).exists()  # the lock is released on the way out


def test_force_stops_a_foreign_listener_but_not_a_gateway(tmp_path: Path) -> None:
    port = free_port()
    squatter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import socket,time; s=socket.socket(); s.bind(('127.0.0.1',{port})); s.listen(); time.sleep(60)",
        ]
    )
    try:
        time.sleep(0.5)
        env = gateway_env(tmp_path, OPENCLAW_GATEWAY_TOKEN=TOKEN)
        proc = start_process(["--allow-unconfigured", "--port", str(port), "--force"], env)
        wait_healthy(port, proc)
        assert squatter.wait(5) is not None
        other = run_process(
            ["--allow-unconfigured", "--port", str(port), "--force"],
            gateway_env(tmp_path / "other", OPENCLAW_GATEWAY_TOKEN=TOKEN),
        )
        assert other.returncode == 1 and f"pid: {proc.pid}" in other.stderr
        out = stop_process(proc)
        assert f"force: killed pid {squatter.pid}" in out
    finally:
        squatter.kill()


def test_loopback_without_token_generates_one(tmp_path: Path) -> None:
    port = free_port()
    proc = start_process(
        ["--allow-unconfigured", "--bind", "loopback", "--port", str(port)], gateway_env(tmp_path)
    )
    wait_healthy(port, proc)
    token_file = lock_file(tmp_path).parent / "runtime-token"
    token = token_file.read_text()
    assert len(token) >= 32 and stat.S_IMODE(token_file.stat().st_mode) == 0o600
    out = stop_process(proc)
    assert "runtime token" in out and token not in out

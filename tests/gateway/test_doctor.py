"""`python -m gateway doctor`: every problem of a misconfigured state dir, one line each with its
fix; read-only unless --fix; --probe against the fake providers and channels."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from gateway.doctor import Check, Doctor, main
from tests.fakes.discord import TOKEN as DISCORD_TOKEN
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import TOKEN as TELEGRAM_TOKEN
from tests.fakes.telegram import FakeTelegram
from tests.harness import (
    TOKEN,
    free_port,
    gateway_env,
    run_process,
    start_process,
    stop_process,
    wait_healthy,
)

FLY = {"FLY_APP_NAME": "my-claw", "FLY_MACHINE_ID": "148e123a"}
CURLY_CONFIG = "{\n  gateway: { mode: \u201clocal\u201d },\n}\n"


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def env_for(state: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(state.parent), "OPENCLAW_STATE_DIR": str(state), **extra}


def write_config(state: Path, config: dict[str, Any] | str, mode: int = 0o600) -> Path:
    state.mkdir(parents=True, exist_ok=True)
    path = state / "openclaw.json"
    path.write_text(config if isinstance(config, str) else json.dumps(config, indent=2))
    path.chmod(mode)
    return path


def test_a_misconfigured_fly_state_dir_lists_every_problem_with_its_fix(tmp_path: Path) -> None:
    state = tmp_path / "data"
    path = write_config(state, CURLY_CONFIG, mode=0o644)
    before = path.read_bytes()
    # root=tmp_path: the state dir is on the same filesystem as "/" — no volume mounted.
    doctor = Doctor(env=env_for(state, **FLY), root=tmp_path)
    checks = by_name(doctor.run())

    assert checks["state dir"].status == "fail"
    assert "container's own filesystem" in checks["state dir"].detail
    assert "[mounts]" in checks["state dir"].fix
    assert checks["config"].status == "fail"
    assert checks["config"].detail.startswith(
        "openclaw.json:2:20 — JSON5 parse failed: curly quote"
    )
    assert checks["config access"].status == "warn" and "chmod 600" in checks["config access"].fix
    assert checks["lock"].status == "ok"
    assert checks["gateway token"].status == "fail"
    assert "OPENCLAW_GATEWAY_TOKEN" in checks["gateway token"].fix
    assert checks["provider openai"].status == "fail"
    assert "OPENAI_API_KEY" in checks["provider openai"].fix
    assert checks["allowed origins"].status == "ok"
    assert "https://my-claw.fly.dev" in checks["allowed origins"].detail
    # Read-only: nothing written, nothing chmodded, no .bak.
    assert path.read_bytes() == before and stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in state.iterdir()) == ["openclaw.json"]


def test_missing_tokens_and_keys_short_token_and_a_volume(tmp_path: Path) -> None:
    state = tmp_path / "data"
    port = free_port()
    write_config(
        state,
        {
            "gateway": {"mode": "local", "port": port, "bind": "lan"},
            "agents": {"defaults": {"model": {"primary": "anthropic/claude-x"}}},
            "channels": {"discord": {}, "telegram": {}},
        },
    )
    env = env_for(state, OPENCLAW_GATEWAY_TOKEN="short-token")
    # root=/proc: a different device, as a mounted volume is.
    checks = by_name(Doctor(env=env, root=Path("/proc")).run())
    assert checks["state dir"].status == "ok" and "own volume" in checks["state dir"].detail
    assert checks["config"].status == "ok"
    assert checks["gateway token"].status == "warn"
    assert checks["gateway token"].detail == (
        "the token from OPENCLAW_GATEWAY_TOKEN is only 11 characters"
    )
    assert "short-token" not in " ".join(c.render() for c in checks.values())
    assert checks["provider anthropic"].status == "fail"
    assert checks["discord"].status == "fail" and "DISCORD_BOT_TOKEN" in checks["discord"].fix
    assert checks["telegram"].status == "fail" and "TELEGRAM_BOT_TOKEN" in checks["telegram"].fix
    assert checks["allowed origins"].status == "warn"
    assert checks["port"].status == "ok" and f":{port} is free" in checks["port"].detail


def test_exit_code_and_one_line_per_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "data"
    good = {
        "gateway": {"mode": "local", "port": free_port(), "bind": "loopback"},
        "models": {"providers": {"openai": {"apiKey": "sk-" + "x" * 20}}},
    }
    write_config(state, good)
    env = env_for(state, OPENCLAW_GATEWAY_TOKEN=TOKEN)
    assert main([], env, root=Path("/proc")) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("clawgate doctor — state dir")
    assert all(line[:2] in ("✓ ", "! ") for line in out[1:-1]), out
    assert out[-1] == "all checks passed"

    write_config(state, "{ broken")
    assert main([], env, root=Path("/proc")) == 1
    text = capsys.readouterr().out
    assert "✗ config: openclaw.json:1:9 — JSON5 parse failed" in text and " — fix: edit " in text


def test_fix_makes_only_safe_repairs_with_a_backup(tmp_path: Path) -> None:
    state = tmp_path / "data"
    path = write_config(state, CURLY_CONFIG, mode=0o644)
    checks = by_name(Doctor(env=env_for(state), fix=True, root=Path("/proc")).run())
    assert checks["config"].status == "ok" and "straightened" in checks["config"].detail
    assert path.read_text() == '{\n  gateway: { mode: "local" },\n}\n'
    backup = state / "openclaw.json.bak"
    assert backup.read_text() == CURLY_CONFIG
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600

    # A missing state dir is created; a config that curly quotes do not explain is left alone.
    fresh = tmp_path / "fresh"
    checks = by_name(Doctor(env=env_for(fresh), fix=True, root=Path("/proc")).run())
    assert fresh.is_dir() and checks["state dir"].status == "ok"
    broken = write_config(fresh, '{ gateway: { mode: "local" }\n agents: {} }')
    text = broken.read_text()
    checks = by_name(Doctor(env=env_for(fresh), fix=True, root=Path("/proc")).run())
    assert checks["config"].status == "fail" and broken.read_text() == text
    assert not (fresh / "openclaw.json.bak").exists()


async def test_probe_tries_each_key_and_token_against_the_fakes(tmp_path: Path) -> None:
    llm, telegram, discord = FakeLLM(), FakeTelegram(), FakeDiscord()
    for fake in (llm, telegram, discord):
        await fake.start()
    try:
        llm.valid_keys = {"sk-good-key-123"}
        state = tmp_path / "data"
        write_config(
            state,
            {
                "gateway": {"mode": "local", "port": free_port(), "bind": "loopback"},
                "agents": {
                    "defaults": {
                        "model": {"primary": "openai/gpt-x", "fallbacks": ["anthropic/claude-x"]}
                    }
                },
                "models": {
                    "providers": {
                        "openai": {"baseUrl": llm.url + "/v1", "apiKey": "sk-good-key-123"},
                        "anthropic": {"baseUrl": llm.url, "apiKey": "sk-bad-key-456"},
                    }
                },
                "channels": {
                    "telegram": {"botToken": TELEGRAM_TOKEN, "apiRoot": telegram.url},
                    "discord": {"token": DISCORD_TOKEN + "-wrong"},
                },
            },
        )
        env = env_for(
            state,
            OPENCLAW_GATEWAY_TOKEN=TOKEN,
            DISCORD_API_URL=discord.url + "/api/v10",
        )
        doctor = Doctor(env=env, probe=True)
        checks = by_name(await asyncio.to_thread(doctor.run))
    finally:
        await discord.stop()
        await telegram.stop()
        await llm.stop()
    assert checks["provider openai"].status == "ok"
    assert checks["provider openai"].detail == "key accepted (1 model(s) listed)"
    assert checks["provider anthropic"].status == "fail"
    assert checks["provider anthropic"].detail == "key refused (HTTP 401)"
    assert checks["telegram"].status == "ok"
    assert checks["telegram"].detail == "token accepted (@claw_test_bot)"
    assert checks["discord"].status == "fail" and "refused" in checks["discord"].detail
    rendered = "\n".join(c.render() for c in checks.values())
    for secret in ("sk-good-key-123", "sk-bad-key-456", TELEGRAM_TOKEN, DISCORD_TOKEN):
        assert secret not in rendered


def test_a_running_gateway_holds_the_lock_and_answers(tmp_path: Path) -> None:
    port = free_port()
    write_config(tmp_path, {"gateway": {"mode": "local", "port": port, "bind": "loopback"}})
    env = gateway_env(tmp_path, OPENCLAW_GATEWAY_TOKEN=TOKEN, OPENCLAW_SKIP_CHANNELS="1")
    proc = start_process([], env)
    try:
        wait_healthy(port, proc)
        result = run_process(["doctor"], env)
    finally:
        stop_process(proc)
    lines = result.stdout.splitlines()
    lock = next(line for line in lines if line.startswith("✓ lock:"))
    assert f"held by the running gateway (pid {proc.pid}, port {port})" in lock
    assert f"✓ port: the gateway answers on 127.0.0.1:{port} (/healthz 200)" in lines
    assert TOKEN not in result.stdout
    assert os.path.exists(tmp_path / "openclaw.json")

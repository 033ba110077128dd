"""The command line says what it does: help lists every command, --bind takes only what works,
a bad OPENCLAW_GATEWAY_PORT is named once, and a ready gateway says where its UI and token are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.config.models import OpenClawConfig
from gateway.settings import (
    BIND_MODES,
    AuthSettings,
    Flags,
    RuntimeSettings,
    StartupError,
    control_ui_hint,
    resolve_auth,
    resolve_bind,
)
from tests.harness import (
    TOKEN,
    free_port,
    gateway_env,
    run_process,
    start_process,
    stop_process,
    wait_healthy,
)


def cfg(**gateway: object) -> OpenClawConfig:
    return OpenClawConfig.model_validate({"gateway": gateway})


def test_help_lists_every_command_and_bind_mode(tmp_path: Path) -> None:
    result = run_process(["--help"], gateway_env(tmp_path))
    assert result.returncode == 0
    out = result.stdout
    for command in ("run ", "pairing list", "pairing approve", "doctor [--probe] [--fix]"):
        assert command in out, command
    for mode in BIND_MODES:
        assert f"  {mode} " in out, mode
    assert "tailnet" not in out


def test_doctor_help_is_its_own(tmp_path: Path) -> None:
    result = run_process(["doctor", "--help"], gateway_env(tmp_path))
    assert result.returncode == 0 and "--probe" in result.stdout and "--fix" in result.stdout


def test_unsupported_bind_flag_is_refused(tmp_path: Path) -> None:
    result = run_process(["--bind", "tailnet"], gateway_env(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'python -m gateway: argument --bind: Invalid --bind. Use "loopback", "lan", "auto",'
        ' or "custom".'
    )


def test_unsupported_bind_in_config_exits_78(tmp_path: Path) -> None:
    (tmp_path / "openclaw.json").write_text(
        json.dumps({"gateway": {"mode": "local", "bind": "tailnet"}})
    )
    result = run_process(
        ["--port", str(free_port())], gateway_env(tmp_path, OPENCLAW_GATEWAY_TOKEN=TOKEN)
    )
    assert result.returncode == 78
    assert 'gateway.bind="tailnet" is not supported' in result.stderr


@pytest.mark.parametrize(
    ("host", "expected"), [(None, "0.0.0.0"), ("127.0.0.1", "127.0.0.1"), ("10.1.2.3", "10.1.2.3")]
)
def test_custom_bind_uses_custom_bind_host(host: str | None, expected: str) -> None:
    config = cfg(bind="custom", customBindHost=host) if host else cfg(bind="custom")
    assert resolve_bind(Flags(), config, False) == ("custom", expected)


def test_custom_bind_host_must_be_ipv4() -> None:
    with pytest.raises(StartupError) as info:
        resolve_bind(Flags(bind="custom"), cfg(customBindHost="my-host"), False)
    assert info.value.exit_code == 78 and "'my-host' is not an IPv4 address" in info.value.lines[0]


def _settings(auth: AuthSettings, host: str = "127.0.0.1", port: int = 3000) -> RuntimeSettings:
    return RuntimeSettings(
        port=port,
        bind="loopback",
        host=host,
        auth=auth,
        container=False,
        allowed_origins=[],
        seeded_origins=[],
        state_dir=Path("/data"),
        config_path=Path("/data/openclaw.json"),
    )


def test_hint_names_where_the_token_comes_from_never_the_token() -> None:
    env = {"OPENCLAW_GATEWAY_TOKEN": "s3cret-token-value-123"}
    auth = resolve_auth(Flags(), cfg(), env, "0.0.0.0", "lan", True)
    lines = control_ui_hint(_settings(auth, "0.0.0.0"), cfg(), env)
    assert lines == [
        "Control UI: http://127.0.0.1:3000/",
        "gateway token: from OPENCLAW_GATEWAY_TOKEN",
    ]

    ref = cfg(auth={"token": {"source": "env", "id": "MY_GW_TOKEN"}}, controlUi={"basePath": "/ui"})
    auth = resolve_auth(Flags(), ref, {"MY_GW_TOKEN": "x" * 20}, "127.0.0.1", "loopback", False)
    lines = control_ui_hint(_settings(auth), ref, {})
    assert lines == [
        "Control UI: http://127.0.0.1:3000/ui/",
        "gateway token: from MY_GW_TOKEN (via gateway.auth.token)",
    ]

    generated = resolve_auth(Flags(), cfg(), {}, "127.0.0.1", "loopback", False)
    (_, token_line) = control_ui_hint(_settings(generated), cfg(), {})
    assert token_line.startswith("gateway token: generated for this run, in /data/tmp/openclaw-")
    assert token_line.endswith("/runtime-token (cat it to log in)")
    assert generated.token is not None and generated.token not in token_line


def test_hint_on_fly_is_the_app_url() -> None:
    env = {"FLY_APP_NAME": "my-claw", "FLY_MACHINE_ID": "148e", "OPENCLAW_GATEWAY_TOKEN": "t" * 20}
    auth = resolve_auth(Flags(), cfg(), env, "0.0.0.0", "lan", True)
    assert control_ui_hint(_settings(auth, "0.0.0.0"), cfg(), env)[0] == (
        "Control UI: https://my-claw.fly.dev/"
    )


def test_bad_env_port_warns_once_and_ready_says_where_ui_and_token_are(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "openclaw.json").write_text(
        json.dumps({"gateway": {"mode": "local", "port": port, "bind": "loopback"}})
    )
    env = gateway_env(
        tmp_path,
        OPENCLAW_GATEWAY_TOKEN=TOKEN,
        OPENCLAW_GATEWAY_PORT="30OO",  # letter O typed for zero
        OPENCLAW_SKIP_CHANNELS="1",
    )
    proc = start_process([], env)
    try:
        wait_healthy(port, proc)
    finally:
        out = stop_process(proc)
    warnings = [line for line in out.splitlines() if "OPENCLAW_GATEWAY_PORT" in line]
    assert len(warnings) == 1, out
    assert "ignoring OPENCLAW_GATEWAY_PORT='30OO'" in warnings[0] and f"using {port}" in warnings[0]
    lines = out.splitlines()
    ready = next(i for i, line in enumerate(lines) if line.endswith("[gateway] ready"))
    assert lines[ready + 1].endswith(f"[gateway] Control UI: http://127.0.0.1:{port}/")
    assert lines[ready + 2].endswith("[gateway] gateway token: from OPENCLAW_GATEWAY_TOKEN")
    assert TOKEN not in out

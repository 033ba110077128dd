"""Precedence of port, bind and auth (config.md §5-6), as a table."""

from __future__ import annotations

import pytest

from gateway.config.models import OpenClawConfig
from gateway.settings import (
    AuthSettings,
    Flags,
    StartupError,
    parse_env_port,
    resolve_auth,
    resolve_bind,
    resolve_port,
)


def cfg(**gateway: object) -> OpenClawConfig:
    return OpenClawConfig.model_validate({"gateway": gateway})


@pytest.mark.parametrize(
    ("flag", "env", "config", "expected"),
    [
        (4000, "5000", 6000, 4000),
        (None, "5000", 6000, 5000),
        (None, "127.0.0.1:5001", 6000, 5001),
        (None, "[::1]:5002", 6000, 5002),
        (None, "70000", 6000, 6000),  # invalid env values are ignored
        (None, "abc", None, 18789),
        (None, None, None, 18789),
    ],
)
def test_port_precedence(
    flag: int | None, env: str | None, config: int | None, expected: int
) -> None:
    environ = {"OPENCLAW_GATEWAY_PORT": env} if env else {}
    assert resolve_port(Flags(port=flag), cfg(port=config), environ) == expected


def test_parse_env_port() -> None:
    assert (
        parse_env_port("0") is None
        and parse_env_port("") is None
        and parse_env_port("3000") == 3000
    )


@pytest.mark.parametrize(
    ("flag", "config", "container", "expected"),
    [
        ("lan", "loopback", False, ("lan", "0.0.0.0")),
        (None, "lan", False, ("lan", "0.0.0.0")),
        (None, None, False, ("loopback", "127.0.0.1")),
        (None, None, True, ("auto", "0.0.0.0")),
        ("auto", None, False, ("auto", "127.0.0.1")),
        ("loopback", None, True, ("loopback", "127.0.0.1")),
    ],
)
def test_bind_resolution(
    flag: str | None, config: str | None, container: bool, expected: tuple[str, str]
) -> None:
    assert resolve_bind(Flags(bind=flag), cfg(bind=config), container) == expected


def auth(
    flags: Flags | None = None,
    env: dict[str, str] | None = None,
    host: str = "127.0.0.1",
    container: bool = False,
    **auth_cfg: object,
) -> AuthSettings:
    return resolve_auth(flags or Flags(), cfg(auth=auth_cfg), env or {}, host, "lan", container)


def test_token_precedence_flag_config_env() -> None:
    env = {"OPENCLAW_GATEWAY_TOKEN": "from-env"}
    assert auth(Flags(token="from-flag"), env, token="from-config").token == "from-flag"
    assert auth(Flags(), env, token="from-config").token == "from-config"
    assert auth(Flags(), env).token == "from-env"


def test_secret_ref_env_token() -> None:
    settings = auth(Flags(), {"MY_TOKEN": "abc123"}, token={"source": "env", "id": "MY_TOKEN"})
    assert settings.token == "abc123"
    with pytest.raises(StartupError, match="MY_TOKEN is not set"):
        auth(Flags(), {}, token={"source": "env", "id": "MY_TOKEN"})


def test_password_mode_derived_and_required() -> None:
    assert auth(Flags(), {"OPENCLAW_GATEWAY_PASSWORD": "pw"}).mode == "password"
    with pytest.raises(StartupError) as info:
        auth(Flags(auth="password"))
    assert info.value.exit_code == 78 and "OPENCLAW_GATEWAY_PASSWORD" in " ".join(info.value.lines)


def test_token_and_password_without_mode_is_a_config_error() -> None:
    with pytest.raises(StartupError) as info:
        auth(token="t", password="p")
    assert info.value.exit_code == 78 and "gateway.auth.mode" in info.value.lines[0]
    assert auth(token="t", password="p", mode="password").mode == "password"


def test_non_loopback_without_secret_refused_with_env_var_named() -> None:
    with pytest.raises(StartupError) as info:
        auth(host="0.0.0.0", container=True)
    assert info.value.exit_code == 78
    assert info.value.lines[0] == "Refusing to bind gateway to lan without auth."
    assert "OPENCLAW_GATEWAY_TOKEN" in info.value.lines[-1]
    with pytest.raises(StartupError):
        auth(host="0.0.0.0", mode="none")


def test_loopback_without_secret_generates_runtime_token() -> None:
    settings = auth()
    assert settings.generated and settings.token and len(settings.token) >= 32
    assert any("generated" in note for note in settings.notes)
    assert auth().token != settings.token


def test_password_flag_warns_about_process_listings() -> None:
    settings = auth(Flags(password="pw"))
    assert settings.mode == "password" and any("process listings" in n for n in settings.notes)


def test_fly_seeds_the_apps_own_https_origin() -> None:
    from gateway.settings import seed_origins

    fly = {"FLY_APP_NAME": "My-Claw", "FLY_MACHINE_ID": "148e"}
    allowed, seeded = seed_origins(cfg(), "0.0.0.0", 3000, fly)
    assert "https://my-claw.fly.dev" in allowed and "https://my-claw.fly.dev" in seeded
    # Not on Fly (no machine id), or a name that is not a hostname label: nothing extra.
    assert not any(
        "fly.dev" in o for o in seed_origins(cfg(), "0.0.0.0", 3000, {"FLY_APP_NAME": "x"})[0]
    )
    odd = {"FLY_APP_NAME": "evil.com/x", "FLY_MACHINE_ID": "1"}
    assert not any("fly.dev" in o for o in seed_origins(cfg(), "0.0.0.0", 3000, odd)[0])

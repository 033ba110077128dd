"""The deployment files agree with each other and with the gateway's CLI.

No Docker engine or flyctl here: the Dockerfile, .dockerignore, fly.toml and fly.private.toml are
parsed (tests/deploy/__init__.py) and cross-checked. test_image_like_run.py then runs what they
describe.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from typing import Any

import pytest

from tests.deploy import (
    CLI_FLAGS,
    DOCKERFILE,
    FLY_PRIVATE_TOML,
    FLY_TOML,
    GUIDE,
    REPO,
    Dockerfile,
    context_files,
    duration_seconds,
    healthcheck_cmd,
    load_dockerfile,
    load_dockerignore,
    load_toml,
    memory_mb,
    parse_cli,
)

Toml = dict[str, Any]
PUBLIC_ONLY_KEYS = {"http_service", "services"}
SLIM_PYTHON = re.compile(r"^python:3\.(1[1-9])-slim(-bookworm|-trixie)?$")


@pytest.fixture(scope="module")
def df() -> Dockerfile:
    return load_dockerfile()


@pytest.fixture(scope="module")
def fly() -> dict[str, Any]:
    return load_toml(FLY_TOML)


@pytest.fixture(scope="module")
def private() -> dict[str, Any]:
    return load_toml(FLY_PRIVATE_TOML)


@pytest.fixture(scope="module", params=["fly.toml", "fly.private.toml"])
def any_fly(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load_toml(REPO / request.param)


def _cmd(df: Dockerfile) -> list[str]:
    ins = df.final.last("CMD")
    assert ins is not None, "the runtime stage needs a CMD"
    return ins.exec_form()


def _gateway_flags(argv: list[str]) -> dict[str, str | bool]:
    assert argv[:3] == ["python", "-m", "gateway"], argv
    return parse_cli(argv[3:])


# --- Dockerfile -------------------------------------------------------------------------------


def test_dockerfile_is_multistage_on_one_official_slim_python(df: Dockerfile) -> None:
    assert len(df.stages) >= 2, "builder + runtime"
    bases = {st.base for st in df.stages}
    assert len(bases) == 1, (
        f"the venv's interpreter symlink needs the same base everywhere: {bases}"
    )
    (base,) = bases
    assert SLIM_PYTHON.match(base), base
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11" and int(SLIM_PYTHON.match(base).group(1)) >= 11  # type: ignore[union-attr]
    assert df.stages[0].name == "builder"


def test_builder_installs_the_repo_into_a_venv(df: Dockerfile) -> None:
    builder = df.stage("builder")
    env = builder.env()
    venv = env["VIRTUAL_ENV"]
    runs = [r.args for r in builder.all("RUN")]
    assert any(re.fullmatch(r'python -m venv "\$VIRTUAL_ENV"', r) for r in runs), runs
    assert any(
        re.fullmatch(r'"\$VIRTUAL_ENV/bin/pip" install --no-cache-dir \.', r) for r in runs
    ), runs
    assert [c.args for c in builder.all("COPY")] == [". ."], "the whole (whitelisted) context"
    workdir = builder.last("WORKDIR")
    assert workdir is not None and workdir.args.startswith("/")
    assert not any("--no-deps" in r or "-e " in r or "--editable" in r for r in runs)
    assert venv == "/opt/venv"


def test_runtime_stage_has_only_the_venv_and_no_toolchain(df: Dockerfile) -> None:
    final = df.final
    froms = [c for c in final.all("COPY") if "from" in c.flags]
    assert [(c.flags["from"], c.args) for c in froms] == [("builder", "/opt/venv /opt/venv")]
    for run in final.all("RUN"):
        for banned in (
            "apt-get",
            "apt ",
            "apk ",
            "gcc",
            "build-essential",
            "pip install",
            "curl",
            "wget",
            "make ",
        ):
            assert banned not in run.args, f"line {run.line}: {banned!r} in the runtime stage"


def test_builds_with_the_classic_builder_too(df: Dockerfile) -> None:
    """No BuildKit-only syntax: heredocs, RUN --mount, COPY --chmod/--link, a syntax directive."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert not re.search(r"^#\s*syntax\s*=", text, re.M | re.I)
    for stage in df.stages:
        for ins in stage.instructions:
            assert not ins.heredocs, f"line {ins.line}: heredoc"
            assert set(ins.flags) <= {"from", "interval", "timeout", "start-period", "retries"}, (
                f"line {ins.line}: {ins.cmd} --{', --'.join(ins.flags)}"
            )
    # What the Dockerfile copies into the image is a real, executable file in the repository.
    sources = df.image_sources()
    assert set(sources) == {
        "/usr/local/bin/clawgate-entrypoint",
        "/usr/local/bin/clawgate-healthcheck",
    }
    for dest, src in sources.items():
        assert src.parent == REPO / "deploy" and src.is_file(), dest
        assert src.stat().st_mode & 0o111, f"{src} is executable in git too"
        assert any(dest in r.args and "chmod 0755" in r.args for r in df.final.all("RUN")), dest


def test_no_architecture_specific_downloads(df: Dockerfile) -> None:
    files = df.image_files()
    for stage in df.stages:
        for ins in stage.instructions:
            text = ins.args + (files.get(ins.words()[-1], "") if ins.cmd == "COPY" else "")
            assert not re.search(r"amd64|x86_64|arm64|aarch64|armhf", text), f"line {ins.line}"
            # Nothing fetched at build time; the only URL allowed is the loopback health probe.
            assert not re.search(r"\b(curl|wget)\b|https?://(?!127\.0\.0\.1[:/])", text), (
                f"line {ins.line}"
            )


def test_runtime_env_points_the_state_dir_at_the_volume(df: Dockerfile, any_fly: Toml) -> None:
    env = df.final.env({"PATH": "/usr/local/bin:/usr/bin:/bin"})
    assert env["OPENCLAW_STATE_DIR"] == "/data"
    assert any_fly["env"]["OPENCLAW_STATE_DIR"] == env["OPENCLAW_STATE_DIR"]
    assert any_fly["mounts"]["destination"] == env["OPENCLAW_STATE_DIR"]
    assert any_fly["mounts"]["source"] == "openclaw_data"
    # `python` in CMD / [processes] must be the venv's interpreter.
    assert env["PATH"].split(":")[0] == f"{env['VIRTUAL_ENV']}/bin"
    assert env.get("PYTHONUNBUFFERED") == "1", "log lines must reach `fly logs` without buffering"


def test_cmd_is_exec_form_and_is_the_fly_process_command(df: Dockerfile, any_fly: Toml) -> None:
    cmd = _cmd(df)
    assert cmd == [
        "python",
        "-m",
        "gateway",
        "--allow-unconfigured",
        "--port",
        "3000",
        "--bind",
        "lan",
    ]
    assert shlex.split(any_fly["processes"]["app"]) == cmd


def test_start_command_flags_are_valid_gateway_flags(df: Dockerfile) -> None:
    flags = _gateway_flags(_cmd(df))
    assert flags["--allow-unconfigured"] is True
    assert flags["--bind"] == "lan", "Fly's proxy reaches the Machine on its private address"
    assert 1 <= int(str(flags["--port"])) <= 65535
    for secret in ("--token", "--password"):
        assert secret not in flags, "secrets belong in `fly secrets`, not in a visible argv"
    assert "--force" not in flags


def test_cli_accepts_every_flag_the_deployment_uses(df: Dockerfile) -> None:
    """The real CLI (`python -m gateway --help`) lists every flag of the Fly start command."""
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"`python -m gateway --help` failed:\n{proc.stdout}{proc.stderr}"
    used = [f for f in _cmd(df) if f.startswith("--")]
    for flag in set(used) | set(CLI_FLAGS):
        assert flag in proc.stdout, f"{flag} missing from --help:\n{proc.stdout}"


def test_ports_agree(df: Dockerfile, fly: Toml, private: Toml) -> None:
    port = int(str(_gateway_flags(_cmd(df))["--port"]))
    expose = [e.args.split("/")[0] for e in df.final.all("EXPOSE")]
    assert expose == [str(port)]
    assert fly["http_service"]["internal_port"] == port
    for check in private.get("checks", {}).values():
        assert check["port"] == port
    for doc in (fly, private):
        assert int(str(_gateway_flags(shlex.split(doc["processes"]["app"]))["--port"])) == port
    healthcheck = df.image_files()["/usr/local/bin/clawgate-healthcheck"]
    assert f"FALLBACK_PORT = {port}" in healthcheck, "the HEALTHCHECK falls back to the CMD's port"


def test_healthcheck_uses_python_against_healthz(df: Dockerfile) -> None:
    ins = df.final.last("HEALTHCHECK")
    assert ins is not None
    opts, argv = healthcheck_cmd(ins)
    assert duration_seconds(opts["timeout"]) <= duration_seconds(opts["interval"])
    files = df.image_files()
    script = files.get(f"/usr/local/bin/{argv[0]}")
    assert script is not None, f"HEALTHCHECK runs {argv[0]}, which the image must provide"
    assert script.startswith("#!/usr/bin/env python3\n")
    assert "/healthz" in script
    assert not re.search(r"\b(curl|wget)\b", script)


def test_non_root_via_an_exec_preserving_entrypoint(df: Dockerfile) -> None:
    final = df.final
    env = final.env()
    uid, gid = int(env["CLAWGATE_UID"]), int(env["CLAWGATE_GID"])
    assert uid != 0 and gid != 0
    useradd = " ".join(r.args for r in final.all("RUN"))
    assert f"useradd --uid {uid} --gid {gid}" in useradd
    assert f"groupadd --gid {gid}" in useradd
    entry = final.last("ENTRYPOINT")
    assert entry is not None
    argv = entry.exec_form()
    assert argv == ["clawgate-entrypoint"], "exec form; CMD/[processes] args are appended"
    script = df.image_files()[f"/usr/local/bin/{argv[0]}"]
    # Drops root (groups, gid, then uid) and replaces itself with the command: same PID, same argv.
    order = [
        script.index(s)
        for s in (
            "os.setgroups([])",
            "os.setgid(gid)",
            "os.setuid(uid)",
            "os.execvp(argv[0], argv)",
        )
    ]
    assert order == sorted(order)
    assert "subprocess" not in script and "os.system" not in script
    user = final.last("USER")
    # Root at start is only acceptable because the entrypoint drops privileges before exec.
    assert user is None or user.args in {"root", "0", str(uid), "clawgate"}


# --- fly.toml / fly.private.toml --------------------------------------------------------------


def test_fly_build_uses_the_dockerfile(any_fly: Toml) -> None:
    assert (REPO / any_fly["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert any_fly["app"] and any_fly["primary_region"]
    assert any_fly.get("kill_signal") in {"SIGTERM", "SIGINT"}
    assert 5 <= duration_seconds(any_fly["kill_timeout"]) <= 300


def test_public_http_service(fly: Toml) -> None:
    svc = fly["http_service"]
    assert svc["force_https"] is True
    assert svc["auto_stop_machines"] is False
    assert svc["auto_start_machines"] is True
    assert svc["min_machines_running"] >= 1
    assert svc["processes"] == ["app"] and "app" in fly["processes"]
    (check,) = svc["checks"]
    assert check["path"] == "/startupz" and check["method"].upper() == "GET"
    assert duration_seconds(check["interval"]) == 15
    assert duration_seconds(check["timeout"]) == 5
    assert 10 <= duration_seconds(check["grace_period"]) <= 120
    assert "services" not in fly, "one public service is enough"


def test_private_variant_has_no_public_service(private: Toml) -> None:
    assert not PUBLIC_ONLY_KEYS & private.keys()
    for check in private.get("checks", {}).values():
        assert check["type"] == "http" and check["path"] == "/startupz"
        assert check.get("processes", ["app"]) == ["app"]


def test_private_variant_matches_the_public_one(fly: Toml, private: Toml) -> None:
    shared = (fly.keys() - PUBLIC_ONLY_KEYS) | (private.keys() - {"checks"})
    for key in sorted(shared):
        assert private.get(key) == fly.get(key), f"[{key}] differs between the two files"
    public_check = fly["http_service"]["checks"][0]
    for check in private.get("checks", {}).values():
        for key in ("grace_period", "interval", "timeout", "path"):
            assert check[key] == public_check[key]


def test_vm_size(any_fly: Toml) -> None:
    (vm,) = any_fly["vm"]
    assert vm["cpu_kind"] == "shared" and vm["cpus"] == 1
    assert memory_mb(vm["memory"]) >= 256


# --- build context ----------------------------------------------------------------------------


def test_build_context_holds_exactly_what_pip_install_needs() -> None:
    files = context_files()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = sorted(
        p.name
        for p in REPO.iterdir()
        if (p / "__init__.py").is_file()
        and any(re.fullmatch(i.replace("*", ".*"), p.name) for i in include)
    )
    assert packages, "pyproject declares packages that exist"
    assert "pyproject.toml" in files
    for pkg in packages:
        assert f"{pkg}/__init__.py" in files, f"{pkg}/ is missing from the build context"
    readme = pyproject["project"].get("readme")
    if isinstance(readme, str) and (REPO / readme).exists():
        assert readme in files
    for path in files:
        top = path.split("/")[0]
        assert top in set(packages) | {"pyproject.toml", "README.md", "LICENSE", "deploy"}, path
        assert "__pycache__" not in path and not path.endswith(".pyc")
    rules = load_dockerignore()
    assert rules[0].pattern == "*" and not rules[0].negate, "whitelist: ignore everything first"


# --- the guide --------------------------------------------------------------------------------


def test_guide_matches_the_files(fly: Toml) -> None:
    text = GUIDE.read_text(encoding="utf-8")
    for needle in (
        fly["processes"]["app"],
        "/data/openclaw.json",
        "openclaw_data",
        "fly.private.toml",
        "fly proxy 3000:3000",
        "/startupz",
        "/healthz",
        "allowedOrigins",
        "gateway.state.lock",
        "OPENCLAW_GATEWAY_TOKEN",
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "DISCORD_BOT_TOKEN",
        "TELEGRAM_BOT_TOKEN",
        f'memory = "{fly["vm"][0]["memory"]}"',
        f'grace_period = "{fly["http_service"]["checks"][0]["grace_period"]}"',
    ):
        assert needle in text, f"docs/deploy-fly.md does not mention {needle!r}"


def test_the_default_drain_fits_inside_kill_timeout(any_fly: Toml) -> None:
    # SIGTERM's drain (agent turns finishing) must end before Fly's SIGKILL, with room to exit.
    from gateway.cli import drain_timeout

    env = {k: str(v) for k, v in (any_fly.get("env") or {}).items()}
    assert drain_timeout(env) + 5 <= duration_seconds(any_fly["kill_timeout"])

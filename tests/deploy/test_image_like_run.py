"""Run the gateway the way the Docker image and Fly run it, without a Docker engine.

How faithful this is, and where it has to differ:

* Install: the builder stage's instructions are replayed from the parsed Dockerfile. The build
  context is copied to a temp dir through the real .dockerignore rules (what `COPY . .` would
  see), then the stage's own RUN lines run verbatim under `sh -c` with the stage's ENV:
  `python -m venv "$VIRTUAL_ENV"` and `"$VIRTUAL_ENV/bin/pip" install .`. Same command, same
  source, full dependency resolution into a fresh venv without system site-packages. Not
  `--no-deps` and not an editable install: either would hide a broken pyproject or a module that
  only imports from the repo checkout. What differs: `python` is this machine's CPython of the
  Dockerfile's minor version instead of the image's; the BuildKit cache mount is dropped (pip
  uses its normal cache); pip reaches packages through this machine's pip configuration
  (PIP_* and pip.conf are passed through). Bound: about 20 s for the whole install here, once
  per session.
* Run: ENTRYPOINT + the fly.toml [processes] command (asserted equal to CMD elsewhere) with the
  final stage's ENV, fly.toml's [env], the variables Fly sets on every Machine
  (FLY_APP_NAME, FLY_MACHINE_ID, ...) and OPENCLAW_GATEWAY_TOKEN as a Fly secret would be. Image
  paths map to temp dirs: /opt/venv -> the fresh venv, /data -> a root-owned temp dir (as a fresh
  Fly volume is), /usr/local/bin/clawgate-* -> the deploy/ programs the Dockerfile copies there.
  `--port 3000` becomes a free port. The final stage's RUN (groupadd/useradd) is not replayed,
  because it would edit this machine's /etc/passwd: uid 10001 has no passwd entry here, so the
  entrypoint keeps the HOME we pass (the image's /home/clawgate stand-in) instead of looking it
  up. When the tests run as root, the entrypoint really chowns the state dir and drops to uid
  10001, exactly as in the image.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import (
    FLY_TOML,
    REPO,
    context_files,
    load_dockerfile,
    load_toml,
    memory_mb,
    parse_env,
)

BASE_IMAGE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
IS_ROOT = os.geteuid() == 0
TOKEN = "deploy-test-token-0123456789abcdef"
READY = re.compile(r"\[gateway\] ready\b")
LISTENING = re.compile(
    r"\[gateway\] listening on ws://(?P<host>[^:\s]+):(?P<port>\d+) \(PID (?P<pid>\d+)\)"
)


# --- helpers ----------------------------------------------------------------------------------


def _world_usable(path: str) -> bool:
    """Can an unprivileged uid execute/read this path (all parents traversable)?"""
    real = Path(os.path.realpath(path))
    if not real.exists() or not os.stat(real).st_mode & stat.S_IXOTH:
        return False
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in real.parents)


def _python_version(exe: str) -> str | None:
    try:
        out = subprocess.run(
            [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2], sys.prefix)"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    version, prefix = out[0], out[1]
    # When we will drop to an unprivileged uid, its stdlib must be reachable too.
    if IS_ROOT and not _world_usable(prefix):
        return None
    return version


def _base_python(version: str) -> str:
    """A CPython of the image's minor version that the gateway's uid will be able to run."""
    candidates = [
        getattr(sys, "_base_executable", sys.executable),
        shutil.which(f"python{version}"),
        f"/usr/bin/python{version}",
        f"/usr/local/bin/python{version}",
    ]
    seen = set()
    for cand in candidates:
        if not cand or cand in seen or not os.path.exists(cand):
            continue
        seen.add(cand)
        if IS_ROOT and not _world_usable(cand):
            continue
        if _python_version(cand) == version:
            return os.path.realpath(cand)
    raise AssertionError(
        f"no python{version} usable by an unprivileged uid on this machine; the image's"
        f" interpreter version cannot be reproduced (tried {candidates})"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


def _http(port: int, path: str, timeout: float = 3.0) -> tuple[int, dict[str, Any]]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            return err.code, json.loads(body or b"{}")
        except ValueError:
            return err.code, {"raw": body.decode(errors="replace")}


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[2])  # effective uid
    raise AssertionError("no Uid line")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS line")


def _lock_payload(path: Path) -> dict[str, Any]:
    obj, _ = json.JSONDecoder().raw_decode(path.read_text(encoding="utf-8").lstrip())
    assert isinstance(obj, dict)
    return obj


# --- the image, replayed ----------------------------------------------------------------------


@dataclass
class ImageLike:
    root: Path
    venv: Path
    bindir: Path
    home: Path
    workdir: Path
    env: dict[str, str]  # the final stage's ENV, mapped
    entrypoint: list[str]
    fly_command: list[str]
    run_uid: int
    healthcheck: list[str]
    fly: dict[str, Any]
    mapping: dict[str, Path] = field(default_factory=dict)

    def map(self, value: str) -> str:
        """Image path -> temp path (longest prefix first), for each `:`-separated part."""
        parts = []
        for part in value.split(":"):
            for src in sorted(self.mapping, key=len, reverse=True):
                if part == src or part.startswith(src.rstrip("/") + "/"):
                    part = str(self.mapping[src]) + part[len(src) :]
                    break
            parts.append(part)
        return ":".join(parts)

    def new_state_dir(self) -> Path:
        """A fresh, root-owned (when root) 0755 directory: what Fly mounts at /data."""
        state = Path(tempfile.mkdtemp(prefix="data-", dir=self.root))
        state.chmod(0o755)
        return state

    def fly_env(self, state: Path, token: str | None = TOKEN) -> dict[str, str]:
        env = dict(self.env)
        env["HOME"] = str(self.home)  # see the module docstring (no passwd entry for 10001)
        env["LANG"] = "C.UTF-8"
        for key, value in self.fly.get("env", {}).items():
            env[key] = self.map(str(value))
        env["OPENCLAW_STATE_DIR"] = str(state)  # /data -> this volume stand-in
        env.update(
            FLY_APP_NAME="clawgate-deploy-test",
            FLY_MACHINE_ID="3d8d9e1b2c4f58",
            FLY_REGION=str(self.fly["primary_region"]),
            PRIMARY_REGION=str(self.fly["primary_region"]),
        )
        if token is not None:
            env["OPENCLAW_GATEWAY_TOKEN"] = token
        return env

    def argv(self, port: int) -> list[str]:
        cmd = list(self.fly_command)
        at = cmd.index("--port")
        cmd[at + 1] = str(port)
        return self.entrypoint + cmd


def _replay_builder(df: Any, ctx: Path, venv: Path, basebin: Path) -> None:
    builder = df.stage("builder")
    env: dict[str, str] = {"PATH": f"{basebin}:{BASE_IMAGE_PATH}", "LANG": "C.UTF-8"}
    # How this machine reaches package indexes (not what gets installed).
    env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_")})
    env["HOME"] = os.environ.get("HOME", "/root")
    mapping = {"/opt/venv": venv}
    cwd: Path | None = None
    for ins in builder.instructions:
        if ins.cmd == "ENV":
            for key, value in parse_env(ins.args, env).items():
                env[key] = str(mapping.get(value, value))
        elif ins.cmd == "WORKDIR":
            cwd = ctx
        elif ins.cmd == "COPY":
            assert ins.args == ". .", f"builder COPY {ins.args!r} is not replayed by this test"
            assert cwd is not None
            for rel in context_files():
                dest = cwd / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / rel, dest)
        elif ins.cmd == "RUN":
            assert set(ins.flags) <= {"mount"}, ins.flags
            assert "/opt/venv" not in ins.args, "use $VIRTUAL_ENV so the test can relocate it"
            proc = subprocess.run(
                ["sh", "-c", ins.args],
                cwd=cwd or ctx,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert proc.returncode == 0, (
                f"Dockerfile line {ins.line} `{ins.args}` failed ({proc.returncode}):\n"
                f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
            )
        else:
            raise AssertionError(f"builder instruction {ins.cmd} is not replayed by this test")


@pytest.fixture(scope="session")
def image() -> Iterator[ImageLike]:
    df = load_dockerfile()
    fly = load_toml(FLY_TOML)
    version = re.match(r"python:(3\.\d+)-", df.final.base).group(1)  # type: ignore[union-attr]
    root = Path(tempfile.mkdtemp(prefix="clawgate-image-"))
    root.chmod(0o755)  # traversable by the gateway's uid, like / in the image
    try:
        venv, ctx, basebin = root / "opt" / "venv", root / "src", root / "basebin"
        bindir, home = root / "usr-local-bin", root / "home" / "clawgate"
        for d in (venv.parent, ctx, basebin, bindir, home):
            d.mkdir(parents=True)
            d.chmod(0o755)
        (basebin / "python").symlink_to(_base_python(version))
        _replay_builder(df, ctx, venv, basebin)

        final_env_raw = df.final.env({"PATH": BASE_IMAGE_PATH})
        final_uid = int(final_env_raw["CLAWGATE_UID"])
        run_uid = final_uid if IS_ROOT else os.getuid()
        if IS_ROOT:
            os.chown(home, final_uid, int(final_env_raw["CLAWGATE_GID"]))  # useradd --create-home
        mapping: dict[str, Path] = {"/opt/venv": venv, "/home/clawgate": home}
        for dest, body in df.image_files().items():
            script = bindir / Path(dest).name
            script.write_text(body, encoding="utf-8")
            script.chmod(0o755)  # COPY --chmod=0755
            mapping[dest] = script
        img = ImageLike(
            root=root,
            venv=venv,
            bindir=bindir,
            home=home,
            workdir=home,
            env={},
            entrypoint=df.final.last("ENTRYPOINT").exec_form(),  # type: ignore[union-attr]
            fly_command=shlex.split(fly["processes"]["app"]),
            run_uid=run_uid,
            healthcheck=[],
            fly=fly,
            mapping=mapping,
        )
        for absolute in [v for v in final_env_raw.values() if v.startswith("/")]:
            for part in absolute.split(":"):
                known = any(part == k or part.startswith(k + "/") for k in mapping)
                assert known or part in BASE_IMAGE_PATH.split(":") or part == "/data", (
                    f"ENV path {part} has no stand-in in this test; add one to `mapping`"
                )
        env = {k: img.map(v) for k, v in final_env_raw.items()}
        # The deploy/ programs live in /usr/local/bin in the image: keep them on PATH there.
        env["PATH"] = env["PATH"].replace("/usr/local/bin", f"{bindir}:/usr/local/bin", 1)
        img.env = env
        img.workdir = Path(img.map(df.final.last("WORKDIR").args))  # type: ignore[union-attr]
        hc = df.final.last("HEALTHCHECK")
        img.healthcheck = json.loads(hc.args.partition(" ")[2])  # type: ignore[union-attr]
        yield img
    finally:
        shutil.rmtree(root, ignore_errors=True)


class Gateway:
    """One gateway process, its merged stdout/stderr collected line by line."""

    def __init__(
        self,
        img: ImageLike,
        state: Path,
        port: int | None = None,
        token: str | None = TOKEN,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = port or _free_port()
        self.state = state
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            img.argv(self.port),
            env={**img.fly_env(state, token), **(extra_env or {})},
            cwd=img.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
        self.lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append((time.monotonic() - self.started, line.rstrip("\n")))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(line for _, line in self.lines)

    def wait_line(
        self, pattern: re.Pattern[str], timeout: float = 30.0
    ) -> tuple[float, re.Match[str]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for at, line in self.lines:
                    m = pattern.search(line)
                    if m:
                        return at, m
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(
                        f"no line matching {pattern.pattern!r} (exit={self.proc.poll()}):\n"
                        f"{self.output}"
                    )
                self._cond.wait(min(left, 0.2))

    def wait_exit(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._reader.join(timeout=5)


@pytest.fixture
def gateways() -> Iterator[list[Gateway]]:
    started: list[Gateway] = []
    yield started
    for gw in started:
        gw.stop()


def _lock_file(img: ImageLike, state: Path) -> Path:
    return state / "tmp" / f"openclaw-{img.run_uid}" / "gateway.state.lock"


def _start_ready(img: ImageLike, state: Path, gateways: list[Gateway]) -> Gateway:
    gw = Gateway(img, state)
    gateways.append(gw)
    gw.wait_line(READY)
    return gw


# --- tests ------------------------------------------------------------------------------------


def test_install_is_a_regular_install_with_consistent_dependencies(image: ImageLike) -> None:
    py = image.venv / "bin" / "python"
    probe = subprocess.run(
        [
            str(py),
            "-c",
            "import gateway, channels, providers, importlib.metadata as m;"
            "print(gateway.__file__); print(m.version('clawgate'))",
        ],
        cwd=image.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    where, version = probe.stdout.split()
    assert Path(where).is_relative_to(image.venv), f"imported from {where}, not the venv"
    assert version == load_toml(REPO / "pyproject.toml")["project"]["version"]
    check = subprocess.run(
        [str(py), "-m", "pip", "check"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert (image.venv / "pyvenv.cfg").read_text().count("include-system-site-packages = false")


def test_entrypoint_takes_the_volume_and_drops_root(image: ImageLike) -> None:
    """A root-owned volume with root-created files (e.g. a config written over `fly ssh console`)."""
    state = image.new_state_dir()
    (state / "openclaw.json").write_text("{}\n")
    (state / "workspace").mkdir()
    (state / "workspace" / "notes.md").write_text("x")
    outside = image.root / "outside.txt"
    outside.write_text("not on the volume")
    (state / "link").symlink_to(outside)
    probe = [
        "sh",
        "-c",
        'echo "$$ $(id -u) $(id -g) $(id -G)"; touch "$OPENCLAW_STATE_DIR/written"; echo "$HOME"',
    ]
    proc = subprocess.Popen(
        image.entrypoint + probe,
        env=image.fly_env(state),
        cwd=image.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = out.strip().splitlines()
    notes = [line for line in lines if line.startswith("[entrypoint]")]
    first, home = [line for line in lines if not line.startswith("[entrypoint]")]
    pid, uid, gid, *groups = first.split()
    assert int(pid) == proc.pid, "the entrypoint must exec, not spawn a child"
    assert int(uid) == image.run_uid
    assert home == str(image.home)
    if IS_ROOT:
        assert int(gid) == int(image.env["CLAWGATE_GID"])
        assert groups == [gid], "no supplementary groups (root's are dropped)"
        for path in [state, *state.rglob("*")]:
            st = os.lstat(path)
            assert (st.st_uid, st.st_gid) == (image.run_uid, int(gid)), path
        assert os.stat(outside).st_uid == 0, "a symlink target outside the volume was chowned"
        # state dir, openclaw.json, workspace/, workspace/notes.md, the symlink itself
        assert notes == [f"[entrypoint] gave 5 path(s) under {state} to uid {uid}"], out
    else:
        assert notes == [], out
    assert (state / "written").exists()


def test_docker_healthcheck_follows_the_lock_port(image: ImageLike) -> None:
    """The HEALTHCHECK script reads the port from the lock payload, then asks /healthz."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"ok":true,"status":"live"}' if self.path == "/healthz" else b"{}"
            self.send_response(200 if self.path == "/healthz" else 404)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        state = image.new_state_dir()
        env = {**image.env, "OPENCLAW_STATE_DIR": str(state)}

        def run() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                image.healthcheck, env=env, capture_output=True, text=True, timeout=30
            )

        lock = state / "tmp" / f"openclaw-{image.run_uid}" / "gateway.state.lock"
        lock.parent.mkdir(parents=True)
        lock.write_text(
            json.dumps({"pid": 1, "port": server.server_address[1]}, indent=2)
            + "\n\t\t\t\t\t\t\t\t \t\n"
        )
        assert run().returncode == 0
        lock.write_text(json.dumps({"pid": 1, "port": _free_port()}))
        failed = run()
        assert failed.returncode == 1 and "healthcheck: port" in failed.stderr
    finally:
        server.shutdown()
        server.server_close()


def test_fly_command_starts_serves_health_and_holds_the_lock(
    image: ImageLike, gateways: list[Gateway]
) -> None:
    state = image.new_state_dir()
    gw = Gateway(image, state)
    gateways.append(gw)
    _, listening = gw.wait_line(LISTENING)
    gw.wait_line(READY)
    assert listening["host"] == "0.0.0.0" and int(listening["port"]) == gw.port
    assert int(listening["pid"]) == gw.proc.pid, "PID changed: the entrypoint did not exec"
    assert _uid_of(gw.proc.pid) == image.run_uid

    assert _http(gw.port, "/healthz") == (200, {"ok": True, "status": "live"})
    deadline = time.monotonic() + 10
    while (status := _http(gw.port, "/startupz"))[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status[0] == 200 and status[1]["ok"] is True and status[1]["status"] == "started"

    lock = _lock_file(image, state)
    payload = _lock_payload(lock)
    assert payload["pid"] == gw.proc.pid
    assert payload.get("port") == gw.port
    assert stat.S_IMODE(os.stat(lock).st_mode) == 0o600
    assert os.stat(lock).st_uid == image.run_uid
    assert os.stat(state).st_uid == image.run_uid, "the volume root was not handed over"

    # Docker's HEALTHCHECK, run like `docker` does: image ENV only, as the image user.
    hc_env = {**image.env, "OPENCLAW_STATE_DIR": str(state)}
    hc = subprocess.run(image.healthcheck, env=hc_env, capture_output=True, text=True, timeout=30)
    assert hc.returncode == 0, hc.stderr


def test_without_a_token_the_fly_command_exits_78_naming_the_variable(image: ImageLike) -> None:
    gw = Gateway(image, image.new_state_dir(), token=None)
    try:
        code = gw.wait_exit(timeout=30)
    finally:
        gw.stop()
    assert code == 78, gw.output
    assert "OPENCLAW_GATEWAY_TOKEN" in gw.output
    assert "Refusing to bind gateway to lan without auth." in gw.output


def test_sigterm_drains_exits_zero_removes_the_lock_and_restarts(
    image: ImageLike, gateways: list[Gateway]
) -> None:
    state = image.new_state_dir()
    gw = _start_ready(image, state, gateways)
    lock = _lock_file(image, state)
    assert _lock_payload(lock)["pid"] == gw.proc.pid

    seen: list[tuple[int, str]] = []
    gw.proc.send_signal(signal.SIGTERM)  # what Fly sends (kill_signal) on stop/deploy/restart
    deadline = time.monotonic() + 30
    while gw.proc.poll() is None and time.monotonic() < deadline:
        try:
            code, body = _http(gw.port, "/startupz", timeout=1.0)
            seen.append((code, str(body.get("status"))))
        except OSError:
            pass  # listener already closed
        time.sleep(0.02)
    assert gw.wait_exit(timeout=5) == 0, gw.output
    # The drain window may be too short to observe. When it is seen it must be a 503, and once
    # draining has been reported nothing may claim "started" again (Fly would route to it).
    statuses = [status for _, status in seen]
    if "draining" in statuses:
        first = statuses.index("draining")
        assert all(code == 503 for code, status in seen if status == "draining"), seen
        assert "started" not in statuses[first:], seen
    print(f"\n[drain] /startupz after SIGTERM: {seen[-5:]} ({len(seen)} answers)")
    leftovers = [p.name for p in lock.parent.glob("*.lock") if p.read_text().strip()]
    assert leftovers == [], f"lock payloads left behind after a clean exit: {leftovers}"
    assert "received SIGTERM" in gw.output

    again = _start_ready(image, state, gateways)  # the restart half of a Fly restart
    assert _lock_payload(lock)["pid"] == again.proc.pid


def test_restart_after_sigkill_is_not_blocked_by_the_stale_lock(
    image: ImageLike, gateways: list[Gateway]
) -> None:
    """Crash / OOM kill / host restart: the JSON stays, the kernel lock does not."""
    state = image.new_state_dir()
    gw = _start_ready(image, state, gateways)
    lock = _lock_file(image, state)
    gw.proc.kill()
    gw.wait_exit(timeout=10)
    assert _lock_payload(lock)["pid"] == gw.proc.pid, "stale payload expected after SIGKILL"
    again = Gateway(image, state)
    gateways.append(again)
    at, _ = again.wait_line(READY, timeout=30)
    assert at < 4.5, f"restart waited {at:.1f}s: the stale lock was not reclaimed immediately"
    assert _lock_payload(lock)["pid"] == again.proc.pid


def test_idle_rss_and_start_time_fit_the_fly_vm(image: ImageLike, gateways: list[Gateway]) -> None:
    """Measurement quoted in docs/deploy-fly.md ("Sizing"): VmRSS after 3 s idle."""
    state = image.new_state_dir()
    gw = Gateway(image, state)
    gateways.append(gw)
    ready_at, _ = gw.wait_line(READY)
    deadline = time.monotonic() + 10
    while _http(gw.port, "/startupz")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    started_at = time.monotonic() - gw.started
    time.sleep(3)
    rss_mib = _rss_kib(gw.proc.pid) / 1024
    vm_mib = memory_mb(image.fly["vm"][0]["memory"])
    grace = image.fly["http_service"]["checks"][0]["grace_period"]
    print(
        f"\n[measure] idle VmRSS {rss_mib:.1f} MiB (pid {gw.proc.pid}, uid {image.run_uid});"
        f" '[gateway] ready' after {ready_at:.2f}s, /startupz 200 after {started_at:.2f}s;"
        f" fly.toml vm {vm_mib} MiB, grace {grace}"
    )
    assert rss_mib < vm_mib / 2, "less than half the VM at idle, or raise [[vm]] memory"
    assert started_at < 10


def test_the_guides_example_config_starts_the_fly_command(
    image: ImageLike, gateways: list[Gateway]
) -> None:
    """docs/deploy-fly.md step 5: the config users upload to /data/openclaw.json is valid."""
    guide = (REPO / "docs" / "deploy-fly.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- example-config\b[^>]*-->\s*```json\n(.*?)```", guide, re.S)
    assert m, "the example-config block is missing from docs/deploy-fly.md"
    config = json.loads(m.group(1))  # plain JSON, so `jq` and editors accept it too
    origins = config["gateway"]["controlUi"]["allowedOrigins"]
    assert f"https://{image.fly['app']}.fly.dev" in origins
    state = image.new_state_dir()
    cfg = state / "openclaw.json"
    cfg.write_text(m.group(1), encoding="utf-8")  # written as root, like `fly ssh console`
    cfg.chmod(0o644)
    env_extra = {"OPENCLAW_SKIP_CHANNELS": "1"}  # no Discord/Telegram traffic from a test
    gw = Gateway(image, state, extra_env=env_extra)
    gateways.append(gw)
    gw.wait_line(READY)
    assert "agent model: anthropic/claude-opus-4-6" in gw.output
    for bad in ("Unrecognized", "Invalid config", "legacy", "retired"):
        assert bad not in gw.output, gw.output

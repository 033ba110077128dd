"""deploy/entrypoint.py and deploy/healthcheck.py, the programs the image runs around the
gateway, tested as the modules they are (test_image_like_run.py runs them as the image does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from deploy import entrypoint, healthcheck
from tests.deploy import REPO


def test_entrypoint_without_a_command_exits_64(capsys: pytest.CaptureFixture[str]) -> None:
    assert entrypoint.main([]) == 64
    assert "no command to run" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("raw", "expected"), [("", 10001), ("4242", 4242), ("-1", 10001), ("x", 10001)]
)
def test_entrypoint_ids_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: int
) -> None:
    monkeypatch.setenv("CLAWGATE_UID", raw)
    assert entrypoint.env_id("CLAWGATE_UID") == expected


def test_claim_changes_nothing_already_owned_and_never_follows_symlinks(tmp_path: Path) -> None:
    state = tmp_path / "data"
    (state / "agents" / "main").mkdir(parents=True)
    (state / "openclaw.json").write_text("{}")
    outside = tmp_path / "outside"
    outside.mkdir()
    (state / "link").symlink_to(outside)
    uid, gid = os.getuid(), os.getgid()
    assert entrypoint.claim(str(state), uid, gid) == 0
    # A fresh state dir is created (Fly mounts an empty volume; docker run may mount nothing).
    fresh = tmp_path / "fresh"
    assert entrypoint.claim(str(fresh), uid, gid) == 0 and fresh.is_dir()


def test_entrypoint_execs_the_command_with_the_same_pid(tmp_path: Path) -> None:
    # As its own uid (root: CLAWGATE_UID=0) nothing is dropped: it just execs, keeping the PID.
    env = {
        **os.environ,
        "CLAWGATE_UID": str(os.getuid()),
        "CLAWGATE_GID": str(os.getgid()),
        "OPENCLAW_STATE_DIR": str(tmp_path),
    }
    code = "import os, sys; print(os.getpid()); sys.exit(7)"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "deploy" / "entrypoint.py"), sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 7 and int(out.strip()) == proc.pid


class _Health(BaseHTTPRequestHandler):
    body: bytes = b'{"ok": true}'
    status = 200

    def do_GET(self) -> None:
        ok = self.path == "/healthz"
        self.send_response(self.status if ok else 404)
        self.end_headers()
        self.wfile.write(self.body if ok else b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _lock(state: Path, port: int, uid: str = "10001") -> None:
    lock_dir = state / "tmp" / f"openclaw-{uid}"
    lock_dir.mkdir(parents=True)
    (lock_dir / "gateway.state.lock").write_text(json.dumps({"pid": 1, "port": port}) + "\n")


def test_healthcheck_follows_the_lock_port(
    tmp_path: Path, server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = server.server_address[1]
    monkeypatch.setenv("OPENCLAW_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("CLAWGATE_UID", "10001")
    monkeypatch.delenv("OPENCLAW_GATEWAY_PORT", raising=False)
    assert healthcheck.lock_port(str(tmp_path)) is None
    _lock(tmp_path, port)
    assert healthcheck.lock_port(str(tmp_path)) == port
    assert healthcheck.main() == 0
    monkeypatch.setattr(_Health, "body", b'{"ok": false}')
    assert healthcheck.main() == 1
    monkeypatch.setattr(_Health, "body", b'{"ok": true}')
    monkeypatch.setattr(_Health, "status", 503)
    assert healthcheck.main() == 1


def test_healthcheck_env_port_and_nothing_listening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENCLAW_STATE_DIR", str(tmp_path))
    for raw, expected in [("3000", 3000), ("0.0.0.0:4001", 4001), ("0", None), ("x", None)]:
        monkeypatch.setenv("OPENCLAW_GATEWAY_PORT", raw)
        assert healthcheck.env_port() == expected
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # bound, never listening: connection refused
        monkeypatch.setenv("OPENCLAW_GATEWAY_PORT", str(dead))
        assert healthcheck.main() == 1
    assert f"healthcheck: port {dead}:" in capsys.readouterr().err

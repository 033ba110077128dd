"""exec and process: output, limits, abort, timeout, background jobs, the scrubbed environment
(tools.md §1.7, §1.8, §3.2, §3.3, §7)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from gateway.agents.tools import environment
from gateway.agents.tools.environment import child_env, mask_secrets
from gateway.agents.tools.process import OutputBuffer
from gateway.agents.tools.registry import Requester, ToolContext
from gateway.logs import scrubber

from .helpers import call, config, context, error_of

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return context(tmp_path / "workspace")


def _alive(marker: str) -> list[int]:
    """Pids (any namespace) whose command line contains `marker`, zombies excluded."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != "Z":
            found.append(int(entry))
    return found


# --- running --------------------------------------------------------------------------------


async def test_output_interleaved_exit_code_and_cwd(ctx: ToolContext) -> None:
    out = await call(ctx, "exec", command="echo out; echo err >&2; pwd; exit 3")
    assert not out.is_error  # a non-zero exit is a normal result
    assert out.text.startswith(f"out\nerr\n{ctx.workspace}\n")
    assert out.text.endswith("[Command exited with code 3]")
    assert out.details["exitCode"] == 3 and out.details["status"] == "failed"
    assert out.details["cwd"] == str(ctx.workspace)


async def test_no_output_marker_workdir_and_env_override(ctx: ToolContext) -> None:
    assert (await call(ctx, "exec", command="true")).text == "(no output)"
    (ctx.workspace / "sub").mkdir()
    out = await call(
        ctx, "exec", command="pwd; echo $GREETING", workdir="sub", env={"GREETING": "hi"}
    )
    assert out.text == f"{ctx.workspace / 'sub'}\nhi\n"
    assert "PATH" in error_of(await call(ctx, "exec", command="true", env={"PATH": "/tmp"}))
    assert "LD_PRELOAD" in error_of(
        await call(ctx, "exec", command="true", env={"LD_PRELOAD": "/x.so"})
    )
    assert "whitespace" in error_of(await call(ctx, "exec", command="true", workdir="  "))
    assert "not a directory" in error_of(await call(ctx, "exec", command="true", workdir="nope"))
    assert "not supported" in error_of(await call(ctx, "exec", command="true", host="node"))


async def test_timeout_kills_the_process_group(ctx: ToolContext) -> None:
    started = time.monotonic()
    out = await call(ctx, "exec", command="echo begin; sleep 31.7171 & wait", timeoutSeconds=0.5)
    assert out.is_error and "timed out after 0.5s" in out.text and "begin" in out.text
    assert time.monotonic() - started < 5
    for _ in range(40):
        if not _alive("31.7171"):
            break
        await asyncio.sleep(0.05)
    assert not _alive("31.7171")


async def test_abort_kills_sleep(ctx: ToolContext) -> None:
    task = asyncio.create_task(call(ctx, "exec", command="sleep 60.4242"))
    for _ in range(100):
        if _alive("60.4242"):
            break
        await asyncio.sleep(0.02)
    assert _alive("60.4242"), "sleep never started"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(60):
        if not _alive("60.4242"):
            break
        await asyncio.sleep(0.05)
    assert not _alive("60.4242")


async def test_huge_output_is_capped_with_bounded_memory(ctx: ToolContext) -> None:
    tracemalloc.start()
    try:
        out = await call(ctx, "exec", command="yes 0123456789 | head -c 100000000; echo END")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not out.is_error
    assert len(out.text) <= 64_000
    assert out.text.startswith("0123456789\n") and out.text.rstrip().endswith("END")
    assert "characters of output elided" in out.text
    assert out.details["elided"] > 99_000_000
    assert peak < 8 * 1024 * 1024, f"peak python memory {peak} bytes"


def test_output_buffer_keeps_head_and_tail() -> None:
    buf = OutputBuffer(head_chars=5, tail_chars=5)
    for piece in (b"abc", b"defgh", "é".encode()[:1]):
        buf.feed(piece)
    buf.feed("é".encode()[1:] + b"ijklmnop")
    assert buf.text() == "abcde\n\n[… 7 characters of output elided …]\n\nlmnop"
    assert buf.since(0) == ("abcdelmnop", 7)


async def test_background_yield_and_process_actions(ctx: ToolContext) -> None:
    started = await call(
        ctx, "exec", command="echo first; read line; echo got $line", background=True
    )
    assert not started.is_error and started.details["status"] == "running"
    sid = started.details["sessionId"]
    listed = await call(ctx, "process", action="list")
    assert sid in listed.text and "running" in listed.text
    poll = await call(ctx, "process", action="poll", sessionId=sid, timeout=2000)
    assert "first" in poll.text and "still running" in poll.text
    await call(ctx, "process", action="write", sessionId=sid, data="hello\n", eof=True)
    for _ in range(50):
        poll = await call(ctx, "process", action="poll", sessionId=sid, timeout=200)
        if "exited" in poll.text:
            break
    assert "got hello" in poll.text and "exited with code 0" in poll.text
    log = await call(ctx, "process", action="log", sessionId=sid)
    assert log.text == "first\ngot hello"
    yielded = await call(ctx, "exec", command="sleep 30.5151", yieldMs=100)
    assert yielded.details["status"] == "running"
    killed = await call(ctx, "process", action="kill", sessionId=yielded.details["sessionId"])
    assert "killed" in killed.text
    assert "No process session" in error_of(
        await call(ctx, "process", action="poll", sessionId="x")
    )


async def test_without_process_exec_runs_in_the_foreground(tmp_path: Path) -> None:
    ctx = context(tmp_path / "w", config({"tools": {"deny": ["process"]}}))
    out = await call(ctx, "exec", command="sleep 0.3; echo done", background=True, yieldMs=10)
    assert out.text == "done\n"


# --- security modes ---------------------------------------------------------------------------


async def test_security_deny_and_allowlist_refuse(tmp_path: Path) -> None:
    deny = context(tmp_path / "a", config({"tools": {"exec": {"mode": "deny"}}}))
    assert "disabled" in error_of(await call(deny, "exec", command="echo hi"))
    allow = context(tmp_path / "b", config({"tools": {"exec": {"security": "allowlist"}}}))
    assert "allowlist" in error_of(await call(allow, "exec", command="echo hi"))
    # ask without any approval surface (no gateway): denied at once
    ask = context(tmp_path / "c", config({"tools": {"exec": {"mode": "ask"}}}))
    assert "no-route" in error_of(await call(ask, "exec", command="echo hi"))
    always = context(tmp_path / "d")
    assert "no-route" in error_of(await call(always, "exec", command="echo hi", ask="always"))
    # per agent override
    agent = context(
        tmp_path / "e",
        config(
            {
                "tools": {"exec": {"mode": "deny"}},
                "agents": {"entries": {"main": {"tools": {"exec": {"mode": "full"}}}}},
            }
        ),
    )
    assert (await call(agent, "exec", command="echo ok")).text == "ok\n"


async def test_group_stranger_cannot_exec(tmp_path: Path) -> None:
    stranger = Requester(
        owner=False, channel="telegram", chat_type="group", chat_id="-1", sender_id="9"
    )
    ctx = context(tmp_path / "w", requester=stranger)
    assert "not found or not allowed" in error_of(await call(ctx, "exec", command="id"))
    granted = context(
        tmp_path / "w",
        config({"channels": {"telegram": {"groups": {"-1": {"tools": {"allow": ["exec"]}}}}}}),
        requester=stranger,
    )
    assert (await call(granted, "exec", command="echo yes")).text == "yes\n"


# --- secrets ------------------------------------------------------------------------------------

SECRETS = {
    "ANTHROPIC_API_KEY": "sk-ant-api03-SECRETVALUE-aaaaaaaaaaaaaaaaaaaa",
    "OPENAI_API_KEY": "sk-proj-OPENAISECRET-bbbbbbbbbbbbbbbbbbbbbb",
    "OPENCLAW_GATEWAY_TOKEN": "gw-token-cccccccccccccccccccccccc",
    "TELEGRAM_BOT_TOKEN": "123456:tg-dddddddddddddddddddddddddd",
    # Names no pattern catches: scrubbed because the config references them.
    "TG_BOT_CRED_REF": "ref-secret-eeeeeeeeeeeeeeeeeeeeeeee",
    "PROVIDER_K": "subst-secret-ffffffffffffffffffffffff",
}
SECRET_CONFIG = {
    "channels": {"discord": {"token": {"source": "env", "id": "TG_BOT_CRED_REF"}}},
    "models": {"providers": {"custom": {"apiKey": "${PROVIDER_K}"}}},
}
LEAK_COMMANDS = [
    "env",
    "cat /proc/self/environ",
    "cat /proc/$PPID/environ",
    "cat /proc/{GATEWAY_PID}/environ",
    "for p in /proc/[0-9]*; do cat $p/environ; done 2>/dev/null",
    "echo $ANTHROPIC_API_KEY | rev",
    "echo $ANTHROPIC_API_KEY | base64",
    "printenv TG_BOT_CRED_REF PROVIDER_K OPENCLAW_GATEWAY_TOKEN",
    "cat /proc/1/environ",
]


def _leaks(text: str) -> list[str]:
    found = []
    for name, value in SECRETS.items():
        forms = {value, value[::-1], base64.b64encode(value.encode()).decode()[:-4]}
        if any(form in text or form in text.replace("\n", "") for form in forms):
            found.append(name)
    return found


def _run_host(mode: str = "namespace", as_user: bool = False) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_")}
    env.update(SECRETS)
    env["EXEC_HOST_CONFIG"] = json.dumps(SECRET_CONFIG)
    argv = [sys.executable, "-m", "tests.agents.tools.exec_host", json.dumps(LEAK_COMMANDS), mode]
    if as_user:
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize(
    "mode, as_user",
    [("namespace", False), ("namespace", True), ("no-namespace", True)],
    ids=["root-pid-namespace", "user-pid-namespace", "user-dumpable-only"],
)
def test_no_command_shows_a_secret(mode: str, as_user: bool) -> None:
    data = _run_host(mode, as_user)
    results = data["results"]
    assert isinstance(results, list) and len(results) == len(LEAK_COMMANDS)
    for command, text in zip(LEAK_COMMANDS, results, strict=True):
        assert not _leaks(text), f"{command!r} leaked {_leaks(text)}:\n{text[:500]}"
    env_out = results[0]
    assert "PATH=" in env_out and "OPENCLAW_SHELL=exec" in env_out  # the env is not just empty


def test_child_env_scrubs_names_patterns_refs_and_values() -> None:
    env = {
        **SECRETS,
        "HOME": "/root",
        "SOME_SERVICE_TOKEN": "zzz",
        "DB_PASSWORD": "pw-123456",
        "INNOCENT": "contains sk-proj-OPENAISECRET-bbbbbbbbbbbbbbbbbbbbbb inside",
        "COPY": SECRETS["PROVIDER_K"],
    }
    cfg = config(SECRET_CONFIG, env)
    out = child_env(cfg, workdir="/w", env=env)
    assert out["HOME"] == "/root" and out["PWD"] == "/w" and out["OPENCLAW_SHELL"] == "exec"
    for name in (*SECRETS, "SOME_SERVICE_TOKEN", "DB_PASSWORD", "INNOCENT", "COPY"):
        assert name not in out, name


async def test_output_masks_known_secrets_in_every_form(ctx: ToolContext) -> None:
    secret = "registered-secret-0123456789-abcdef"
    scrubber.add(secret)
    command = (
        f"echo {secret}; echo {secret} | rev; printf %s {secret} | base64;"
        f" printf xx%s {secret} | base64 -w 20"
    )
    out = await call(ctx, "exec", command=command)
    assert secret not in out.text and secret[::-1] not in out.text
    b64 = base64.b64encode(secret.encode()).decode()
    assert b64[:-4] not in out.text
    assert out.text.count("***") >= 4, out.text
    assert mask_secrets("a " + secret + " b", frozenset({secret})) == "a *** b"


async def test_isolation_probe_runs_once(ctx: ToolContext) -> None:
    environment.reset_isolation_cache()
    first = await environment.isolation_prefix()
    assert first[:3] == ["/usr/bin/setpriv", "--pdeathsig", "KILL"]
    assert first[-1] == "--kill-child"  # this machine has unshare
    assert await environment.isolation_prefix() == first


def test_commands_die_with_the_gateway() -> None:
    # SIGKILL the process that runs exec: its command must not outlive it (setpriv pdeathsig,
    # then the namespace's init takes everything with it).
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_")}
    argv = [sys.executable, "-m", "tests.agents.tools.exec_host", json.dumps(["sleep 45.6789"])]
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not _alive("45.6789") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _alive("45.6789"), "the command never started"
    finally:
        proc.kill()
        proc.wait(10)
    deadline = time.monotonic() + 5
    while _alive("45.6789") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive("45.6789")

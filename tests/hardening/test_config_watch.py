"""The config file watcher: garbage keeps the running config (one error), valid edits apply."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from gateway.config.watch import ConfigWatcher, attach
from tests.hardening.procs import start_gateway, stop
from tests.harness import TOKEN, LiveGateway, connected, free_port, gateway_env, live_gateway

BASE: dict[str, Any] = {"agents": {"defaults": {"model": {"primary": "openai/first"}}}}


def write(path: Path, text: str) -> None:
    # Write in place with a fresh mtime, as an editor or `cat >` would.
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


def primary(snapshot: dict[str, Any]) -> str:
    return str(snapshot["config"]["agents"]["defaults"]["model"]["primary"])


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "gateway.reload" and r.levelno >= logging.ERROR
    ]


async def test_garbage_keeps_running_config_and_valid_edit_applies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with live_gateway(tmp_path, BASE) as live:
        path = live.gateway.loaded.path
        watcher = ConfigWatcher(live.gateway, debounce_s=0)
        assert await watcher.check() == "unchanged"

        write(path, "{ this is: not [ json5")
        assert await watcher.check() == "invalid"
        assert await watcher.check() == "unchanged"
        write(path, "{ this is: not [ json5")  # same garbage again: counted, not re-logged
        assert await watcher.check() == "invalid"
        (line,) = errors(caplog)
        assert "keeping the running config" in line
        assert "openclaw.json:1:8 — JSON5 parse failed" in line, line
        assert watcher.rejected == 2

        async with connected(live) as client:
            snap = await client.call("config.get", {})
            assert primary(snap) == "openai/first"
            assert snap["valid"] is False
            assert (await client.call("health"))["ok"] is True

            edited = json.dumps(
                {"agents": {"defaults": {"model": {"primary": "openai/second"}}}}, indent=2
            )
            write(path, edited)
            assert await watcher.check() == "applied"
            snap = await client.call("config.get", {})
            assert primary(snap) == "openai/second" and snap["valid"] is True
            assert live.gateway.loaded.config.agents.defaults.model is not None

            # A schema error names the line and the key.
            write(path, '{\n  "agents": {\n    "defaults": {\n      "bogus": 1\n    }\n  }\n}\n')
            assert await watcher.check() == "invalid"
            assert (
                'openclaw.json:4 — agents.defaults: Unrecognized key: "bogus"' in errors(caplog)[-1]
            )
            assert primary(await client.call("config.get", {})) == "openai/second"
            # The same broken text after a good one is reported again (a new incident).
            write(path, edited)
            assert await watcher.check() == "same"
            write(path, "{ this is: not [ json5")
            assert await watcher.check() == "invalid"
            assert len(errors(caplog)) == 3


async def test_config_set_write_is_not_applied_twice(tmp_path: Path) -> None:
    async with live_gateway(tmp_path, BASE) as live:
        watcher = ConfigWatcher(live.gateway, debounce_s=0)
        async with connected(live) as client:
            snap = await client.call("config.get", {})
            raw = json.dumps({"agents": {"defaults": {"model": {"primary": "openai/set"}}}})
            await client.call("config.set", {"raw": raw, "baseHash": snap["hash"]})
        assert await watcher.check() == "same"
        assert watcher.applied == 0


async def test_removed_file_keeps_config_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with live_gateway(tmp_path, BASE) as live:
        watcher = ConfigWatcher(live.gateway, debounce_s=0)
        live.gateway.loaded.path.unlink()
        assert await watcher.check() == "missing"
        assert await watcher.check() == "unchanged"
        warned = [r for r in caplog.records if "disappeared" in r.getMessage()]
        assert len(warned) == 1
        assert live.gateway.loaded.config.agents.defaults.model is not None


async def test_config_that_would_not_start_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with live_gateway(tmp_path, BASE) as live:
        watcher = ConfigWatcher(live.gateway, debounce_s=0)
        bad = {**BASE, "gateway": {"auth": {"mode": "password"}}}  # no password anywhere
        write(live.gateway.loaded.path, json.dumps(bad))
        assert await watcher.check() == "invalid"
        assert "gateway:" in errors(caplog)[-1] and "password" in errors(caplog)[-1]
        assert live.gateway.loaded.config.gateway.auth.mode is None


async def test_attach_is_idempotent_and_reload_off_disables(tmp_path: Path) -> None:
    config = {**BASE, "gateway": {"reload": {"mode": "off"}}}
    async with live_gateway(tmp_path, config) as live:
        service = attach(live.gateway)
        assert attach(live.gateway) is service
        # Once, whether or not gateway/assembly.py attached it already.
        assert [s.name for s in live.gateway.services].count("config-watch") == 1
        await service.start()
        watcher, _ = live.gateway.extensions["config.watcher"]
        assert watcher._task is None
        await service.stop()


async def test_polling_task_applies_an_edit(tmp_path: Path) -> None:
    async with live_gateway(tmp_path, BASE) as live:
        watcher = ConfigWatcher(live.gateway, interval_s=0.02, debounce_s=0.01)
        await watcher.start()
        try:
            write(live.gateway.loaded.path, json.dumps({"agents": {"defaults": {"model": "x/y"}}}))
            applied = asyncio.Event()
            live.gateway.extensions.setdefault("config.listeners", []).append(
                lambda loaded, hot: applied.set()
            )
            await asyncio.wait_for(applied.wait(), 5)
        finally:
            await watcher.stop()
        assert watcher.applied == 1


async def test_real_process_survives_garbage_then_applies_edit(tmp_path: Path) -> None:
    path = tmp_path / "openclaw.json"
    path.write_text(json.dumps({"gateway": {"mode": "local"}, **BASE}, indent=2))
    port = free_port()
    env = gateway_env(tmp_path, OPENCLAW_GATEWAY_TOKEN=TOKEN, CLAWGATE_CONFIG_POLL_MS="100")
    proc, out = start_gateway(
        ["--port", str(port), "--bind", "loopback"], env, module="tests.hardening.watched_gateway"
    )
    try:
        await asyncio.to_thread(out.wait_for, r"\[gateway\] ready")
        live = LiveGateway(None, port)  # type: ignore[arg-type]  # only .ws is used
        async with connected(live) as client:
            write(path, "\x00\x01 garbage {{{")
            await asyncio.to_thread(out.wait_for, r"change not applied")
            assert (await client.call("health"))["ok"] is True
            snap = await client.call("config.get", {})
            assert primary(snap) == "openai/first" and snap["valid"] is False

            edited = {
                "gateway": {"mode": "local"},
                "agents": {"defaults": {"model": {"primary": "openai/new"}}},
            }
            write(path, json.dumps(edited, indent=2))
            await asyncio.to_thread(out.wait_for, r"config file change applied")
            assert primary(await client.call("config.get", {})) == "openai/new"
        async with connected(live) as client:
            assert (await client.call("health"))["ok"] is True
    finally:
        text = await asyncio.to_thread(stop, proc, out)
    assert proc.returncode == 0, text
    bad = [line for line in text.splitlines() if "change not applied" in line]
    assert len(bad) == 1, text
    assert "openclaw.json:1:1 — JSON5 parse failed" in bad[0]

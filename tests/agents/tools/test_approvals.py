"""Exec approvals against a real gateway: events to operators, exec.approval.* methods,
allow / deny / expiry / no approver (tools.md §3.4, §7)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from gateway.agents.tools.approvals import broker
from gateway.agents.tools.registry import ToolContext, ToolOutput
from tests.harness import Client, LiveGateway, connected, live_gateway

from .helpers import call, config, context, error_of

ASK = {"tools": {"exec": {"mode": "ask"}}}


def _ctx(tmp_path: Path, live: LiveGateway) -> ToolContext:
    ctx = context(tmp_path / "workspace", config(ASK))
    ctx.gateway = live.gateway
    return ctx


async def _event(client: Client, name: str, timeout: float = 5.0) -> dict[str, Any]:
    for i, msg in enumerate(client.events):
        if msg.get("event") == name:
            client.events.pop(i)
            return dict(msg["payload"])
    while True:
        msg = await client.recv(timeout)
        if msg.get("type") == "event" and msg.get("event") == name:
            return dict(msg["payload"])
        client.events.append(msg)


async def test_allow_once_runs_the_command(tmp_path: Path) -> None:
    async with live_gateway(tmp_path) as live, connected(live) as op:
        assert "exec.approval.resolve" in op.hello["features"]["methods"]  # type: ignore[attr-defined]
        assert "exec.approval.requested" in op.hello["features"]["events"]  # type: ignore[attr-defined]
        ctx = _ctx(tmp_path, live)
        task: asyncio.Task[ToolOutput] = asyncio.create_task(
            call(ctx, "exec", command="echo approved-run")
        )
        requested = await _event(op, "exec.approval.requested")
        request = requested["request"]
        assert requested["approvalKind"] == "exec"
        assert requested["expiresAtMs"] - requested["createdAtMs"] == 1_800_000
        assert request["command"] == "echo approved-run"
        assert request["cwd"] == str(ctx.workspace) and request["host"] == "gateway"
        assert request["security"] == "allowlist" and request["ask"] == "on-miss"
        assert request["allowedDecisions"] == ["allow-once", "deny"]
        assert request["toolCallId"] == "call-1" and request["agentId"] == "main"
        listed = await op.call("exec.approval.list")
        assert [e["id"] for e in listed] == [requested["id"]]
        got = await op.call("exec.approval.get", {"id": requested["id"]})
        assert got["commandText"] == "echo approved-run"
        refused = await op.request(
            "exec.approval.resolve", {"id": requested["id"], "decision": "allow-always"}
        )
        assert not refused["ok"] and "allow-always" in refused["error"]["message"]
        assert not task.done()
        ok = await op.call(
            "exec.approval.resolve", {"id": requested["id"], "decision": "allow-once"}
        )
        assert ok == {"ok": True}
        resolved = await _event(op, "exec.approval.resolved")
        assert resolved["id"] == requested["id"] and resolved["decision"] == "allow-once"
        out = await asyncio.wait_for(task, 5)
        assert out.text == "approved-run\n"
        assert await op.call("exec.approval.list") == []
        unknown = await op.request("exec.approval.resolve", {"id": "nope", "decision": "deny"})
        assert unknown["error"]["code"] == "NOT_FOUND"


async def test_deny_returns_an_error_naming_the_approval(tmp_path: Path) -> None:
    async with live_gateway(tmp_path) as live, connected(live) as op:
        ctx = _ctx(tmp_path, live)
        task = asyncio.create_task(call(ctx, "exec", command="touch should-not-exist"))
        requested = await _event(op, "exec.approval.requested")
        await op.call("exec.approval.resolve", {"id": requested["id"], "decision": "deny"})
        message = error_of(await asyncio.wait_for(task, 5))
        assert requested["id"] in message and "user-denied" in message
        assert "touch should-not-exist" in message
        assert not (ctx.workspace / "should-not-exist").exists()


async def test_unanswered_approval_expires_as_denied(tmp_path: Path) -> None:
    async with live_gateway(tmp_path) as live, connected(live) as op:
        broker(live.gateway).timeout_ms = 300
        ctx = _ctx(tmp_path, live)
        out = await asyncio.wait_for(call(ctx, "exec", command="echo never"), 5)
        assert "timeout" in error_of(out)
        resolved = await _event(op, "exec.approval.resolved")
        assert resolved["decision"] == "deny" and resolved["reason"] == "timeout"


async def test_no_approver_denies_at_once_and_read_scope_sees_nothing(tmp_path: Path) -> None:
    async with live_gateway(tmp_path) as live:
        ctx = _ctx(tmp_path, live)
        assert "no-route" in error_of(await call(ctx, "exec", command="echo x"))
        async with connected(live, scopes=["operator.read"]) as reader:
            assert "no-route" in error_of(await call(ctx, "exec", command="echo x"))
            res = await reader.request("exec.approval.list")
            assert not res["ok"]
            await asyncio.sleep(0.05)
            names = [m.get("event") for m in reader.events]
            assert "exec.approval.requested" not in names


async def test_abort_while_waiting_withdraws_the_request(tmp_path: Path) -> None:
    async with live_gateway(tmp_path) as live, connected(live) as op:
        ctx = _ctx(tmp_path, live)
        task = asyncio.create_task(call(ctx, "exec", command="echo aborted"))
        requested = await _event(op, "exec.approval.requested")
        task.cancel()
        resolved = await _event(op, "exec.approval.resolved")
        assert resolved["id"] == requested["id"] and resolved["reason"] == "run-aborted"
        assert await op.call("exec.approval.list") == []
        assert json.dumps(resolved["request"])  # the request travels with the resolution

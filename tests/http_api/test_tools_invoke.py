"""`POST /tools/invoke` against a real gateway: auth, policy, the HTTP deny list, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel

from gateway.agents import tools
from gateway.agents.tools.registry import REGISTRY, ToolContext, ToolError, ToolOutput, tool
from tests.harness import TOKEN, live_gateway

AUTH = {"Authorization": f"Bearer {TOKEN}"}


class EchoArgs(BaseModel):
    """Echo text back (test tool)."""

    text: str
    action: str | None = None


@pytest.fixture
def echo_tool() -> Iterator[None]:
    tools.load()

    async def echo(args: EchoArgs, ctx: ToolContext) -> ToolOutput:
        if args.text == "fail":
            raise ToolError("asked to fail")
        return ToolOutput(f"{args.action or 'echo'}:{args.text}@{ctx.session_key}", {"n": 1})

    tool("http_test_echo", group="group:test", side_effects=False)(echo)
    # An `exec` (the real one once its module is loaded) proves the HTTP deny list.
    added_exec = "exec" not in REGISTRY
    if added_exec:
        tool("exec", group="group:runtime")(echo)
    yield
    REGISTRY.pop("http_test_echo", None)
    if added_exec:
        REGISTRY.pop("exec", None)


async def test_invoke_runs_an_allowed_tool(tmp_path: Path, echo_tool: None) -> None:
    async with live_gateway(tmp_path, {}) as live, httpx.AsyncClient(base_url=live.http) as http:
        ok = await http.post(
            "/tools/invoke",
            json={"tool": "http_test_echo", "action": "shout", "args": {"text": "hi"}},
            headers=AUTH,
        )
        assert ok.status_code == 200, ok.text
        assert ok.json() == {
            "ok": True,
            "result": {
                "content": [{"type": "text", "text": "shout:hi@agent:main:main"}],
                "details": {"n": 1},
            },
        }
        failed = await http.post(
            "/tools/invoke", json={"name": "http_test_echo", "args": {"text": "fail"}}, headers=AUTH
        )
        assert failed.status_code == 400 and "asked to fail" in failed.json()["error"]["message"]
        bad_args = await http.post(
            "/tools/invoke", json={"tool": "http_test_echo", "args": {}}, headers=AUTH
        )
        assert bad_args.status_code == 400 and "text" in bad_args.json()["error"]["message"]
        # exec is on the HTTP deny list whatever the policy says.
        denied = await http.post(
            "/tools/invoke", json={"tool": "exec", "args": {"text": "id"}}, headers=AUTH
        )
        assert denied.status_code == 404
        missing = await http.post("/tools/invoke", json={"tool": "nope"}, headers=AUTH)
        assert missing.status_code == 404
        unauth = await http.post("/tools/invoke", json={"tool": "http_test_echo"})
        assert unauth.status_code == 401


async def test_policy_and_gateway_tools_deny(tmp_path: Path, echo_tool: None) -> None:
    cfg = {"gateway": {"tools": {"deny": ["http_test_echo"]}}}
    async with live_gateway(tmp_path, cfg) as live, httpx.AsyncClient(base_url=live.http) as http:
        denied = await http.post(
            "/tools/invoke", json={"tool": "http_test_echo", "args": {"text": "x"}}, headers=AUTH
        )
        assert denied.status_code == 404
        other_agent = await http.post(
            "/tools/invoke",
            json={"tool": "http_test_echo", "agentId": "ghost", "args": {"text": "x"}},
            headers=AUTH,
        )
        assert other_agent.status_code == 400

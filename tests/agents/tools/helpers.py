"""Building tool contexts and calling tools the way the loop does (through registry.invoke)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.agents import tools as tool_pkg
from gateway.agents.tools.policy import allowed_tools
from gateway.agents.tools.registry import Requester, ToolContext, ToolOutput, invoke
from gateway.config.loader import validate_text
from gateway.config.models import OpenClawConfig
from providers.types import ToolCall

REGISTRY = tool_pkg.load()


def config(
    data: dict[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> OpenClawConfig:
    """A config validated exactly like the file would be (`${VAR}` resolved from `env`)."""
    raw = json.dumps(data or {})
    return validate_text(Path("/tmp/openclaw.json"), raw, env or {}).config


def context(
    workspace: Path,
    cfg: OpenClawConfig | None = None,
    requester: Requester | None = None,
    window: int = 200_000,
) -> ToolContext:
    workspace.mkdir(parents=True, exist_ok=True)
    return ToolContext(
        agent_id="main",
        session_key="agent:main:main",
        run_id="run-1",
        workspace=workspace,
        config=cfg or config(),
        requester=requester or Requester.operator(),
        context_window_tokens=window,
    )


async def call(ctx: ToolContext, name: str, **arguments: Any) -> ToolOutput:
    """Invoke one tool with the tools the policy allows for the context's requester."""
    allowed = allowed_tools(ctx.config, ctx.agent_id, ctx.requester, REGISTRY)
    return await invoke(ToolCall(id="call-1", name=name, arguments=arguments), allowed, ctx)


def error_of(out: ToolOutput) -> str:
    assert out.is_error, out.text
    body = json.loads(out.text)
    assert body["status"] == "error"
    return str(body["error"])

"""`tools.effective`: the tools a turn in a session really gets (official-clients spec §2.2).

The official Control UI shows this list in its chat view. The answer is the tool policy's own
result (gateway/agents/tools/policy.py `allowed_tools`) for the requester of the turns the
caller starts there: an operator client's `chat.send`/`agent` turns run as the owner
(tools.md §2.6). A channel session also serves channel senders, who may be strangers with
fewer tools; a notice says so rather than listing tools they do not get.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.agents import roster as rv
from gateway.agents.session_keys import agent_id_from_session_key
from gateway.agents.tools.policy import STRANGER_GROUPS, agent_tools_config, allowed_tools
from gateway.agents.tools.registry import Requester, Tool
from gateway.protocol.scopes import READ
from gateway.rpc.agents_methods import service
from gateway.rpc.registry import CallContext, method

# Sessions whose turns come only from operator clients.
_OPERATOR_CHANNELS = frozenset({"", "webchat"})


class ToolsEffectiveParams(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    session_key: str = Field(alias="sessionKey", min_length=1, max_length=512)
    agent_id: str | None = Field(None, alias="agentId", min_length=1, max_length=128)


def _entry(found: Tool) -> dict[str, Any]:
    raw = found.description.strip()
    return {
        "id": found.name,
        "label": found.name,
        "description": raw.splitlines()[0][:160] if raw else "",
        "rawDescription": raw,
        "source": "core",
    }


@method("tools.effective", scope=READ, params=ToolsEffectiveParams)
async def tools_effective(ctx: CallContext, params: ToolsEffectiveParams) -> dict[str, Any]:
    svc = service(ctx)
    config = svc.config
    key = svc.session_key(params.session_key, params.agent_id)
    agent_id = params.agent_id or agent_id_from_session_key(key, rv.default_agent_id(config))
    tools = allowed_tools(config, agent_id, Requester.operator(), await svc.tool_registry())
    agent_tools = agent_tools_config(config, agent_id)
    profile = (agent_tools.profile if agent_tools else None) or config.tools.profile or "full"
    result: dict[str, Any] = {"agentId": agent_id, "profile": profile, "groups": []}
    if tools:
        result["groups"].append(
            {
                "id": "core",
                "label": "Built-in tools",
                "source": "core",
                "tools": [_entry(t) for _, t in sorted(tools.items())],
            }
        )
    row = svc.store.get(key)
    channel = (row.channel or "") if row is not None else ""
    if channel not in _OPERATOR_CHANNELS:
        groups = ", ".join(sorted(STRANGER_GROUPS))
        result["notices"] = [
            {
                "id": "channel-senders",
                "severity": "info",
                "message": (
                    f"Listed: the tools of your own turns. {channel} senders who are not "
                    f"owners get fewer ({groups} only when a room or sender policy grants them)."
                ),
            }
        ]
    return result

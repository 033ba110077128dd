"""`POST /tools/invoke`: run one tool outside a model turn, under the same policy.

As in the reference: always on, gateway bearer auth (the caller is the operator), the tool
must be allowed by the agent's tool policy (404 otherwise), and a hard deny list keeps the
machine- and control-plane tools (`exec`, `apply_patch`, `automations`, ...) off HTTP unless
`gateway.tools.allow` takes one off that list. `gateway.tools.deny` adds more.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.agents import roster as rv
from gateway.agents.session_keys import agent_id_from_session_key, canonical_session_key
from gateway.agents.tools.policy import allowed_tools
from gateway.agents.tools.registry import Requester, ToolContext, invoke
from gateway.http_api.common import HttpError, read_json
from gateway.http_api.openai_compat import authorize
from gateway.runtime import Gateway
from providers.types import ToolCall

MAX_BODY_BYTES = 2 * 1024 * 1024
HTTP_DENY = frozenset(
    {
        "exec",
        "process",
        "spawn",
        "shell",
        "fs_write",
        "fs_delete",
        "fs_move",
        "apply_patch",
        "sessions_spawn",
        "sessions_send",
        "cron",
        "automations",
        "gateway",
        "nodes",
    }
)


def _http_denied(gateway: Gateway, name: str) -> bool:
    section = gateway.loaded.config.gateway.tools
    extra_deny: list[str] = []
    lifted: list[str] = []
    if isinstance(section, dict):
        extra_deny = [str(x).lower() for x in section.get("deny") or []]
        lifted = [str(x).lower() for x in section.get("allow") or []]
    if name in extra_deny:
        return True
    aliases = {name, "cron"} if name == "automations" else {name}
    return bool(aliases & HTTP_DENY) and not (aliases & set(lifted))


async def tools_invoke(gateway: Gateway, request: Request) -> Response:
    await authorize(gateway, request)
    body = await read_json(request, MAX_BODY_BYTES)
    name = body.get("name") or body.get("tool")
    if not isinstance(name, str) or not name.strip():
        raise HttpError(400, "tool (or name) must be a non-empty string")
    name = name.strip()
    args = body.get("args", {})
    if not isinstance(args, dict):
        raise HttpError(400, "args must be an object")
    config = gateway.loaded.config
    default_agent = rv.default_agent_id(config)
    agent_id = body.get("agentId")
    key_raw = body.get("sessionKey")
    if agent_id is not None and not isinstance(agent_id, str):
        raise HttpError(400, "agentId must be a string")
    agent_id = (agent_id or "").strip().lower() or None
    if agent_id is not None and agent_id not in rv.roster(config).agent_ids:
        raise HttpError(400, f"agentId {agent_id!r} is not a configured agent")
    key = canonical_session_key(
        key_raw if isinstance(key_raw, str) else None, agent_id or default_agent
    )
    key_agent = agent_id_from_session_key(key, default_agent)
    if agent_id is not None and key_agent != agent_id:
        raise HttpError(400, f"sessionKey {key!r} belongs to agent {key_agent!r}, not {agent_id!r}")
    agent_id = key_agent
    action = body.get("action")
    svc = gateway.extensions.get("agents")
    if svc is None:
        raise HttpError(503, "the agents are not running", "unavailable")
    registry = await svc.tool_registry()
    allowed = allowed_tools(config, agent_id, Requester.operator(), registry)
    found = allowed.get(name)
    if found is None or _http_denied(gateway, name):
        return JSONResponse(
            {
                "ok": False,
                "error": {"type": "not_found", "message": f"tool {name!r} is not available"},
            },
            status_code=404,
        )
    if (
        isinstance(action, str)
        and "action" in found.input_model.model_fields
        and "action" not in args
    ):
        args = {**args, "action": action}
    ctx = ToolContext(
        agent_id=agent_id,
        session_key=key,
        run_id=f"http-{uuid.uuid4().hex[:12]}",
        workspace=rv.workspace_dir(config, agent_id, gateway.settings.state_dir),
        config=config,
        requester=Requester.operator(),
        gateway=gateway,
    )
    idem = body.get("idempotencyKey")
    call_id = f"http_{idem}" if isinstance(idem, str) and idem else f"http_{uuid.uuid4().hex[:16]}"
    output = await invoke(ToolCall(call_id, name, args), {name: found}, ctx)
    result: dict[str, Any] = {"content": [{"type": "text", "text": output.text}]}
    if output.details:
        result["details"] = dict(output.details)
    if output.is_error:
        return JSONResponse(
            {
                "ok": False,
                "error": {"type": "tool_error", "message": output.text},
                "result": result,
            },
            status_code=400,
        )
    return JSONResponse({"ok": True, "result": result})


def routes(gateway: Gateway) -> list[BaseRoute]:
    async def endpoint(request: Request) -> Response:
        try:
            return await tools_invoke(gateway, request)
        except HttpError as exc:
            return JSONResponse(
                {"ok": False, "error": {"type": exc.kind, "message": exc.message}},
                status_code=exc.status,
                headers=exc.headers,
            )

    return [Route("/tools/invoke", endpoint, methods=["POST"])]

"""`sessions.patch`: the per-session settings official clients change (`openclaw tui`'s
`/usage` sends `{key, responseUsage}`).

Only `responseUsage` is implemented; any other setting is refused with an error naming it,
never silently dropped. Because it is partial the method is not listed in hello-ok
`features.methods`: the Control UI would otherwise start patching labels, unread marks and
the like through it (official-clients.md §0.1). The reference asks `operator.admin` for a
`responseUsage` patch.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.agents import roster as rv
from gateway.agents import usage_footer
from gateway.protocol.errors import CONFLICT, INVALID_REQUEST, NOT_FOUND, RpcError
from gateway.protocol.scopes import ADMIN
from gateway.rpc.agents_methods import service
from gateway.rpc.registry import CallContext, method

# Fields that say which session and in what state, not what to change.
_ENVELOPE = frozenset(
    {
        "key",
        "agentId",
        "expectedSessionId",
        "expectedLifecycleRevision",
        "expectedPermissionMode",
        "expectedToolOverrides",
        "expectedMarkedUnreadAt",
    }
)
_SUPPORTED = frozenset({"responseUsage"})


class SessionsPatchParams(BaseModel):
    # Other fields are collected and refused by name (below), not ignored.
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    key: str = Field(min_length=1, max_length=512)
    agent_id: str | None = Field(None, alias="agentId", max_length=128)
    expected_session_id: str | None = Field(None, alias="expectedSessionId", max_length=256)
    response_usage: str | None = Field(None, alias="responseUsage", max_length=32)


@method("sessions.patch", scope=ADMIN, params=SessionsPatchParams, listed=False)
async def sessions_patch(ctx: CallContext, params: SessionsPatchParams) -> dict[str, Any]:
    other = sorted(set(params.model_extra or {}) - _ENVELOPE - _SUPPORTED)
    if other:
        raise RpcError(
            INVALID_REQUEST,
            "invalid sessions.patch params: clawgate can change only responseUsage here; "
            f"not supported: {', '.join(other)}",
        )
    svc = service(ctx)
    key = svc.session_key(params.key, params.agent_id)
    row = svc.store.get(key)
    expected = params.expected_session_id
    if expected is not None and row is not None and row.session_id != expected:
        raise RpcError(CONFLICT, f"session {key} changed: its sessionId is no longer {expected}")
    if "response_usage" not in params.model_fields_set:
        if row is None:
            raise RpcError(NOT_FOUND, f"no session {key}")
    else:  # null clears the session's choice
        raw = params.response_usage
        mode = usage_footer.normalize_mode(raw) if raw is not None else None
        if raw is not None and mode is None:
            raise RpcError(
                INVALID_REQUEST,
                "invalid sessions.patch params: responseUsage: use off, tokens or full "
                f"(got {raw!r})",
            )
        usage_footer.set_choice(svc.store, key, mode)
        svc.sessions_changed(key, "patch")
    current = svc.store.ensure(key)
    config = ctx.gateway.loaded.config
    entry = {**current.to_wire(), **usage_footer.wire_fields(current, config)}
    chain = rv.model_chain(config, current.agent_id)
    provider, _, model = chain.primary.partition("/")
    return {
        "ok": True,
        "path": str(ctx.gateway.settings.state_dir / "agents"),
        "key": key,
        "entry": entry,
        "resolved": {
            "modelProvider": current.model_provider or provider,
            "model": current.model or model,
        },
    }

"""exec.approval.* methods (tools.md §3.4); all need scope operator.approvals."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.agents.tools.approvals import ApprovalError, broker
from gateway.protocol.errors import INVALID_REQUEST, NOT_FOUND, RpcError
from gateway.protocol.scopes import APPROVALS
from gateway.rpc.registry import CallContext, EmptyParams, method


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Reviewer(_Params):
    channel: str = Field(min_length=1)
    account_id: str = Field(alias="accountId", min_length=1)
    sender_id: str = Field(alias="senderId", min_length=1)


class ResolveParams(_Params):
    id: str = Field(min_length=1, max_length=256)
    decision: str = Field(min_length=1, max_length=64)
    reviewer: Reviewer | None = None
    grant_expires_in_days: int | None = Field(None, alias="grantExpiresInDays", ge=1, le=3650)


class IdParams(_Params):
    id: str = Field(min_length=1, max_length=256)


class WaitParams(_Params):
    id: str = Field(min_length=1, max_length=256)
    timeout_ms: int | None = Field(None, alias="timeoutMs", ge=0, le=600_000)


def _rpc_error(exc: ApprovalError) -> RpcError:
    return RpcError(NOT_FOUND if exc.code == "not-found" else INVALID_REQUEST, str(exc))


def _who(ctx: CallContext, params: ResolveParams) -> str:
    if params.reviewer is not None:
        return f"{params.reviewer.channel}:{params.reviewer.sender_id}"
    client = ctx.conn.client if ctx.conn is not None else None
    if client is not None:
        return client.display_name or client.id
    return "operator"


@method("exec.approval.resolve", scope=APPROVALS, params=ResolveParams)
async def resolve(ctx: CallContext, params: ResolveParams) -> dict[str, Any]:
    try:
        broker(ctx.gateway).resolve(params.id, params.decision, _who(ctx, params))
    except ApprovalError as exc:
        raise _rpc_error(exc) from exc
    return {"ok": True}


@method("exec.approval.list", scope=APPROVALS)
async def list_(ctx: CallContext, params: EmptyParams) -> list[dict[str, Any]]:
    return [p.entry() for p in broker(ctx.gateway).pending.values()]


@method("exec.approval.get", scope=APPROVALS, params=IdParams)
async def get(ctx: CallContext, params: IdParams) -> dict[str, Any]:
    try:
        pending = broker(ctx.gateway).get(params.id)
    except ApprovalError as exc:
        raise _rpc_error(exc) from exc
    command = str(pending.request.get("command", ""))
    return {
        "id": pending.id,
        "commandText": command,
        "commandPreview": command if len(command) <= 200 else command[:199] + "…",
        "allowedDecisions": pending.request.get("allowedDecisions", []),
        "host": pending.request.get("host"),
        "nodeId": None,
        "agentId": pending.request.get("agentId"),
        "expiresAtMs": pending.expires_at_ms,
    }


@method("exec.approval.waitDecision", scope=APPROVALS, params=WaitParams)
async def wait_decision(ctx: CallContext, params: WaitParams) -> dict[str, Any]:
    timeout_s = (params.timeout_ms if params.timeout_ms is not None else 30_000) / 1000
    try:
        decision = await broker(ctx.gateway).wait_decision(params.id, timeout_s)
    except ApprovalError as exc:
        raise _rpc_error(exc) from exc
    return {"id": params.id, "decision": decision}

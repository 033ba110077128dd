"""Usage and context methods: usage.status, usage.cost, sessions.usage(.timeseries/.logs),
sessions.compact (context-and-cron.md A.10, B.4)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.agents import roster as rv
from gateway.agents.usage_report import (
    UsageQueryError,
    cost_report,
    index_for,
    logs,
    now_ms,
    resolve_period,
    resolve_tz,
    sessions_report,
    timeseries,
)
from gateway.protocol.errors import INVALID_REQUEST, UNAVAILABLE, RpcError
from gateway.protocol.scopes import ADMIN, READ
from gateway.rpc.registry import CallContext, EmptyParams, method

if TYPE_CHECKING:
    from gateway.agents.compaction import ContextManager
    from gateway.agents.service import AgentService


class _Params(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class RangeParams(_Params):
    start_date: str | None = Field(None, alias="startDate", max_length=10)
    end_date: str | None = Field(None, alias="endDate", max_length=10)
    range: str | None = Field(None, max_length=8)
    days: int | None = Field(None, ge=1, le=3660)
    mode: str | None = Field(None, max_length=16)
    time_zone: str | None = Field(None, alias="timeZone", max_length=64)
    utc_offset: str | None = Field(None, alias="utcOffset", max_length=12)
    agent_id: str | None = Field(None, alias="agentId", max_length=128)
    agent_scope: Literal["all"] | None = Field(None, alias="agentScope")


class SessionsUsageParams(RangeParams):
    key: str | None = Field(None, max_length=512)
    limit: int = Field(50, ge=1, le=10_000)


class SessionUsageKeyParams(_Params):
    key: str = Field(min_length=1, max_length=512)
    agent_id: str | None = Field(None, alias="agentId", max_length=128)
    limit: int = Field(200, ge=1, le=1000)


class SessionsCompactParams(_Params):
    key: str = Field(min_length=1, max_length=512)
    agent_id: str | None = Field(None, alias="agentId", max_length=128)
    max_lines: int | None = Field(None, alias="maxLines", ge=1)


def _service(ctx: CallContext) -> AgentService:
    svc: AgentService | None = ctx.gateway.extensions.get("agents")
    if svc is None:
        raise RpcError(UNAVAILABLE, "agents are not running", retryable=True, retry_after_ms=1000)
    return svc


def _agent(ctx: CallContext, params: RangeParams) -> str | None:
    if params.agent_scope == "all":
        if params.agent_id or getattr(params, "key", None):
            raise RpcError(INVALID_REQUEST, "agentScope all cannot be combined with agentId or key")
        return None
    return params.agent_id or rv.default_agent_id(ctx.gateway.loaded.config)


def _period(params: RangeParams, earliest: int | None) -> Any:
    try:
        tz = resolve_tz(params.mode, params.time_zone, params.utc_offset)
        return resolve_period(
            start_date=params.start_date,
            end_date=params.end_date,
            range_=params.range,
            days=params.days,
            tz=tz,
            earliest=earliest,
        )
    except UsageQueryError as exc:
        raise RpcError(INVALID_REQUEST, str(exc)) from exc


def _earliest(ctx: CallContext) -> int | None:
    index = index_for(ctx.gateway)
    index.refresh()
    stamps = [r[0] for _, r in index.records() if r[0]]
    return min(stamps) if stamps else None


@method("usage.status", scope=READ, params=EmptyParams)
async def usage_status(ctx: CallContext, params: EmptyParams) -> dict[str, Any]:
    # Provider plan quota windows need plan credentials we do not hold: none to report.
    return {"updatedAt": now_ms(), "providers": []}


@method("usage.cost", scope=READ, params=RangeParams)
async def usage_cost(ctx: CallContext, params: RangeParams) -> dict[str, Any]:
    agent = _agent(ctx, params)
    period = _period(params, _earliest(ctx) if params.range == "all" else None)
    return cost_report(index_for(ctx.gateway), period, agent)


@method("sessions.usage", scope=READ, params=SessionsUsageParams)
async def sessions_usage(ctx: CallContext, params: SessionsUsageParams) -> dict[str, Any]:
    svc = _service(ctx)
    agent = _agent(ctx, params) if not params.key else None
    key = svc.session_key(params.key, params.agent_id) if params.key else None
    period = _period(params, _earliest(ctx) if params.range == "all" else None)
    return sessions_report(
        index_for(ctx.gateway), svc, period, agent_id=agent, key=key, limit=params.limit
    )


@method("sessions.usage.timeseries", scope=READ, params=SessionUsageKeyParams)
async def sessions_usage_timeseries(
    ctx: CallContext, params: SessionUsageKeyParams
) -> dict[str, Any]:
    svc = _service(ctx)
    key = svc.session_key(params.key, params.agent_id)
    return timeseries(svc, key, ctx.gateway.loaded.config)


@method("sessions.usage.logs", scope=READ, params=SessionUsageKeyParams)
async def sessions_usage_logs(ctx: CallContext, params: SessionUsageKeyParams) -> dict[str, Any]:
    svc = _service(ctx)
    key = svc.session_key(params.key, params.agent_id)
    return logs(svc, key, params.limit, ctx.gateway.loaded.config)


@method("sessions.compact", scope=ADMIN, params=SessionsCompactParams)
async def sessions_compact(ctx: CallContext, params: SessionsCompactParams) -> dict[str, Any]:
    svc = _service(ctx)
    key = svc.session_key(params.key, params.agent_id)
    row = svc.store.get(key)
    if row is None:
        return {"ok": True, "key": key, "compacted": False, "reason": "no sessionId"}
    lane = svc.runner.status(key)
    if lane.active_run_id is not None:
        raise RpcError(
            INVALID_REQUEST, f"session {key} has an active run; retry after it finishes."
        )
    if lane.queued:
        raise RpcError(INVALID_REQUEST, f"session {key} has queued work; retry after it finishes.")
    manager: ContextManager | None = ctx.gateway.extensions.get("agents.context")
    if manager is None:
        raise RpcError(UNAVAILABLE, "compaction is not available", retryable=True)
    done = await manager.compact_session(key)
    if done is None:
        return {"ok": True, "key": key, "compacted": False, "reason": "nothing to compact"}
    return {"ok": True, "key": key, "compacted": True, "result": done.to_wire()}

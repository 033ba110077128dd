"""Scheduler methods (context-and-cron.md §C.16): cron.status/list/get/add/update/remove/run/
runs, and the heartbeat controls `wake`, `last-heartbeat`, `set-heartbeats`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.cron import delivery as dlv
from gateway.cron import schedule as sched
from gateway.cron.service import CronError, CronService, Job, JobNotFound
from gateway.protocol.errors import INVALID_REQUEST, UNAVAILABLE, RpcError
from gateway.protocol.scopes import ADMIN, READ, WRITE
from gateway.rpc.registry import CallContext, method

PAGE_MAX = 200


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class StatusParams(_Strict):
    pass


class ListParams(_Strict):
    include_disabled: bool = Field(False, alias="includeDisabled")
    limit: int | None = Field(None, ge=1, le=PAGE_MAX)
    offset: int = Field(0, ge=0)
    query: str | None = None
    enabled: Literal["all", "enabled", "disabled"] | None = None
    schedule_kind: Literal["all", "at", "every", "cron", "on-exit", "stream"] | None = Field(
        None, alias="scheduleKind"
    )
    last_run_status: Literal["all", "ok", "error", "skipped", "unknown"] | None = Field(
        None, alias="lastRunStatus"
    )
    trigger: Literal["all", "conditional", "unconditional"] | None = None
    sort_by: Literal["nextRunAtMs", "updatedAtMs", "name"] = Field("nextRunAtMs", alias="sortBy")
    sort_dir: Literal["asc", "desc"] = Field("asc", alias="sortDir")
    agent_id: str | None = Field(None, alias="agentId", min_length=1)
    compact: bool = False
    include_delivery_previews: bool = Field(True, alias="includeDeliveryPreviews")
    # Sent by the Control UI bundle (§C.16): accepted, used as filters.
    session_key: str | None = Field(None, alias="sessionKey")
    session_agent_id: str | None = Field(None, alias="sessionAgentId")


class IdParams(_Strict):
    id: str | None = Field(None, min_length=1)
    job_id: str | None = Field(None, alias="jobId", min_length=1)

    @model_validator(mode="after")
    def _one(self) -> IdParams:
        if not (self.id or self.job_id):
            raise ValueError("id is required")
        return self

    @property
    def target(self) -> str:
        return self.id or self.job_id or ""


class UpdateParams(IdParams):
    patch: dict[str, Any]
    expected_config_revision: str | None = Field(None, alias="expectedConfigRevision")


class RunParams(IdParams):
    mode: Literal["due", "force", "if-enabled"] = "force"
    expected_process_instance_id: str | None = Field(
        None, alias="expectedProcessInstanceId", min_length=1
    )


class RunsParams(_Strict):
    agent_id: str | None = Field(None, alias="agentId", min_length=1)
    scope: Literal["job", "all"] | None = None
    id: str | None = Field(None, min_length=1, pattern=r"^[^/\\]+$")
    job_id: str | None = Field(None, alias="jobId", min_length=1, pattern=r"^[^/\\]+$")
    run_id: str | None = Field(None, alias="runId", min_length=1)
    limit: int = Field(50, ge=1, le=PAGE_MAX)
    offset: int = Field(0, ge=0)
    statuses: list[Literal["ok", "error", "skipped"]] | None = Field(
        None, min_length=1, max_length=3
    )
    status: Literal["all", "ok", "error", "skipped"] | None = None
    delivery_statuses: list[Literal["delivered", "not-delivered", "unknown", "not-requested"]] | (
        None
    ) = Field(None, alias="deliveryStatuses", min_length=1, max_length=4)
    delivery_status: (
        Literal["all", "delivered", "not-delivered", "unknown", "not-requested"] | None
    ) = Field(None, alias="deliveryStatus")
    query: str | None = None
    sort_dir: Literal["asc", "desc"] = Field("desc", alias="sortDir")


class WakeParams(_Strict):
    mode: Literal["now", "next-heartbeat"] = "next-heartbeat"
    text: str = Field(min_length=1)
    session_key: str | None = Field(None, alias="sessionKey")
    agent_id: str | None = Field(None, alias="agentId")


class SetHeartbeatsParams(_Strict):
    enabled: bool


def service(ctx: CallContext) -> CronService:
    svc: CronService | None = ctx.gateway.extensions.get("cron")
    if svc is None:
        raise RpcError(UNAVAILABLE, "the scheduler is not running")
    return svc


def not_found(job_id: str, *, get: bool = False) -> RpcError:
    text = (
        f"cron job not found: {job_id}"
        if get
        else f"Automation not found: {job_id}. List jobs with `openclaw cron list --all`."
    )
    return RpcError(INVALID_REQUEST, text, details={"code": "CRON_JOB_NOT_FOUND", "jobId": job_id})


def _lookup(svc: CronService, job_id: str, *, get: bool = False) -> Job:
    try:
        return svc.get(job_id)
    except JobNotFound:
        raise not_found(job_id, get=get) from None


def _invalid(name: str, exc: Exception) -> RpcError:
    return RpcError(INVALID_REQUEST, f"invalid cron.{name} params: {exc}")


def compact_row(svc: CronService, job: Job) -> dict[str, Any]:
    st = job.state
    row: dict[str, Any] = {
        "id": job.id,
        "name": job.spec.name,
        "updatedAtMs": job.spec.updated_at_ms,
        "enabled": job.spec.enabled,
        "nextRunAt": sched.iso(st.next_run_at_ms) if st.next_run_at_ms is not None else None,
        "nextRunAtMs": st.next_run_at_ms,
        "scheduleKind": job.spec.schedule.kind,
        "schedule": job.spec.schedule.wire(),
        "lastRunAt": sched.iso(st.last_run_at_ms) if st.last_run_at_ms is not None else None,
        "lastRunAtMs": st.last_run_at_ms,
        "lastRunStatus": st.last_run_status,
        "lastRunError": st.last_error,
        "effectiveAgentId": svc.effective_agent(job),
    }
    if job.spec.display_name:
        row["displayName"] = job.spec.display_name
    return row


def list_page(svc: CronService, p: ListParams) -> dict[str, Any]:
    jobs = list(svc.jobs.values())
    enabled = p.enabled or ("all" if p.include_disabled else "enabled")
    if enabled != "all":
        jobs = [j for j in jobs if j.spec.enabled == (enabled == "enabled")]
    if p.schedule_kind not in (None, "all"):
        jobs = [j for j in jobs if j.spec.schedule.kind == p.schedule_kind]
    if p.last_run_status not in (None, "all"):
        want = None if p.last_run_status == "unknown" else p.last_run_status
        jobs = [j for j in jobs if j.state.last_run_status == want]
    agent = p.agent_id or p.session_agent_id
    if agent:
        jobs = [j for j in jobs if svc.effective_agent(j) == agent]
    if p.query:
        q = p.query.lower()
        jobs = [
            j
            for j in jobs
            if q in j.spec.name.lower()
            or q in (j.spec.display_name or "").lower()
            or q in (j.spec.description or "").lower()
            or q == j.id
        ]
    if p.sort_by == "name":
        jobs.sort(key=lambda j: j.spec.name.lower())
    elif p.sort_by == "updatedAtMs":
        jobs.sort(key=lambda j: j.spec.updated_at_ms or 0)
    else:
        big = 1 << 62
        jobs.sort(key=lambda j: (j.state.next_run_at_ms or big, j.spec.name))
    if p.sort_dir == "desc":
        jobs.reverse()
    total = len(jobs)
    limit = p.limit if p.limit is not None else max(total - p.offset, 0)
    page = jobs[p.offset : p.offset + limit]
    has_more = p.offset + len(page) < total
    out: dict[str, Any] = {
        "jobs": [
            compact_row(svc, j)
            if p.compact
            else {**svc.view(j), "effectiveAgentId": svc.effective_agent(j)}
            for j in page
        ],
        "total": total,
        "offset": p.offset,
        "limit": limit if p.limit is not None else max(1, len(page)),
        "hasMore": has_more,
        "nextOffset": p.offset + len(page) if has_more else None,
        "snapshotRevision": f"rev-{svc.process_instance_id[:8]}-{svc.revision}",
    }
    if p.include_delivery_previews and not p.compact:
        out["deliveryPreviews"] = {
            j.id: dlv.preview(svc.gateway, j.spec, svc.effective_agent(j)) for j in page
        }
    return out


@method("cron.status", scope=READ, params=StatusParams)
async def cron_status(ctx: CallContext, params: StatusParams) -> dict[str, Any]:
    return service(ctx).status()


@method("cron.list", scope=READ, params=ListParams)
async def cron_list(ctx: CallContext, params: ListParams) -> dict[str, Any]:
    return list_page(service(ctx), params)


@method("cron.get", scope=READ, params=IdParams)
async def cron_get(ctx: CallContext, params: IdParams) -> dict[str, Any]:
    svc = service(ctx)
    return svc.view(_lookup(svc, params.target, get=True))


def add_job(svc: CronService, data: dict[str, Any]) -> dict[str, Any]:
    """`cron.add`: the created job + deliveryPreview, or the declarative upsert shape."""
    try:
        job, created = svc.add(data)
    except CronError as exc:
        raise _invalid("add", exc) from exc
    view = svc.view(job)
    preview = dlv.preview(svc.gateway, job.spec, svc.effective_agent(job))
    if "declarationKey" in data:
        return {"created": created, "updated": not created, "job": view}
    return {**view, "deliveryPreview": preview}


@method("cron.add", scope=ADMIN, params=_Open)
async def cron_add(ctx: CallContext, params: _Open) -> dict[str, Any]:
    return add_job(service(ctx), params.model_dump())


@method("cron.update", scope=ADMIN, params=UpdateParams)
async def cron_update(ctx: CallContext, params: UpdateParams) -> dict[str, Any]:
    svc = service(ctx)
    _lookup(svc, params.target)
    try:
        job = svc.update(params.target, params.patch, params.expected_config_revision)
    except CronError as exc:
        raise _invalid("update", exc) from exc
    return svc.view(job)


@method("cron.remove", scope=ADMIN, params=IdParams)
async def cron_remove(ctx: CallContext, params: IdParams) -> dict[str, Any]:
    svc = service(ctx)
    _lookup(svc, params.target)
    try:
        svc.remove(params.target)
    except CronError as exc:
        raise _invalid("remove", exc) from exc
    return {"ok": True, "removed": True}


@method("cron.run", scope=ADMIN, params=RunParams)
async def cron_run(ctx: CallContext, params: RunParams) -> dict[str, Any]:
    svc = service(ctx)
    _lookup(svc, params.target)
    expected = params.expected_process_instance_id
    if expected is not None and expected != svc.process_instance_id:
        return {
            "ok": True,
            "ran": False,
            "reason": "stopped",
            "processInstanceId": svc.process_instance_id,
        }
    return svc.run(params.target, params.mode)


def runs_page(svc: CronService, p: RunsParams) -> dict[str, Any]:
    job_id = p.id or p.job_id
    scope = p.scope or ("job" if job_id else "all")
    if scope == "job":
        if not job_id:
            raise RpcError(
                INVALID_REQUEST, "invalid cron.runs params: id is required for scope job"
            )
        entries = svc.store.runs(job_id)
    else:
        entries = svc.store.all_runs()
    if p.run_id:
        entries = [e for e in entries if e.get("runId") == p.run_id]
    statuses: set[str] = set(p.statuses or ())
    if p.status is not None and p.status != "all":
        statuses.add(p.status)
    if statuses:
        entries = [e for e in entries if e.get("status") in statuses]
    delivery: set[str] = set(p.delivery_statuses or ())
    if p.delivery_status is not None and p.delivery_status != "all":
        delivery.add(p.delivery_status)
    if delivery:
        entries = [e for e in entries if e.get("deliveryStatus") in delivery]
    if p.agent_id:
        entries = [
            e
            for e in entries
            if (job := svc.jobs.get(str(e.get("jobId")))) is None
            or svc.effective_agent(job) == p.agent_id
        ]
    if p.query:
        q = p.query.lower()
        entries = [
            e
            for e in entries
            if q in str(e.get("summary", "")).lower()
            or q in str(e.get("error", "")).lower()
            or q in str(e.get("jobName", "")).lower()
        ]
    entries.sort(key=lambda e: int(e.get("ts", 0)), reverse=p.sort_dir == "desc")
    total = len(entries)
    page = entries[p.offset : p.offset + p.limit]
    has_more = p.offset + len(page) < total
    return {
        "entries": page,
        "total": total,
        "offset": p.offset,
        "limit": p.limit,
        "hasMore": has_more,
        "nextOffset": p.offset + len(page) if has_more else None,
    }


@method("cron.runs", scope=READ, params=RunsParams)
async def cron_runs(ctx: CallContext, params: RunsParams) -> dict[str, Any]:
    return runs_page(service(ctx), params)


@method("wake", scope=WRITE, params=WakeParams)
async def wake(ctx: CallContext, params: WakeParams) -> dict[str, Any]:
    svc = service(ctx)
    return await svc.system_wake(params.text, params.mode, params.session_key, params.agent_id)


@method("last-heartbeat", scope=READ)
async def last_heartbeat(ctx: CallContext, params: BaseModel) -> dict[str, Any] | None:
    beat = service(ctx).executor.last_heartbeat
    return beat.wire() if beat is not None else None


@method("set-heartbeats", scope=ADMIN, params=SetHeartbeatsParams)
async def set_heartbeats(ctx: CallContext, params: SetHeartbeatsParams) -> dict[str, Any]:
    service(ctx).executor.heartbeats_enabled = params.enabled
    return {"ok": True, "enabled": params.enabled}

"""The `automations` tool (policy alias `cron`): reminders and scheduled jobs from chat.

Owner-only (tools.md §1.12, §2.6; context-and-cron.md §C.17). A job the agent creates is
bound to the conversation that asked: `owner` records it, `scheduledToolPolicy` is the
account mode, its tools are the creator's tools, and — unless the model says otherwise — the
result is announced back to the chat the request came from, so "remind me in 2 minutes"
from Telegram lands in that Telegram chat.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.agents.tools.registry import REGISTRY, ToolContext, ToolError, ToolOutput, tool
from gateway.cron import schedule as sched
from gateway.cron.delivery import CHANNELS
from gateway.cron.service import CronError, CronService, JobNotFound
from gateway.protocol.errors import RpcError

DESCRIPTION = """Schedule reminders and recurring jobs, and inspect or change them.

Actions: status | list | get | add | update | remove | run | runs | wake.
add: `job` = {name, schedule, payload, sessionTarget?, wakeMode?, delivery?, deleteAfterRun?}.
  schedule: {"kind":"at","at":"<ISO-8601>"} (no offset = UTC) or a relative "20m", "2h", "1d";
  {"kind":"every","everyMs":N}; {"kind":"cron","expr":"0 9 * * 1-5","tz":"Europe/Berlin"}.
  A cron expr is WALL-CLOCK time in `tz`; without `tz` the user's configured time zone (else the
  gateway host's) is used. Never convert cron times to UTC yourself.
  payload: {"kind":"agentTurn","message":"what to do or say when it fires"} or
  {"kind":"systemEvent","text":"..."} (main session only).
  Without `delivery` the result is sent back to this chat.
update: `jobId` + `job` (partial; null clears). remove/get/run/runs: `jobId`.
list: `includeDisabled`, `limit`, `offset`. wake: `text`, `mode` (now | next-heartbeat)."""


class AutomationsArgs(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    action: Literal["status", "list", "get", "add", "update", "remove", "run", "runs", "wake"]
    job: dict[str, Any] | None = None
    job_id: str | None = Field(None, alias="jobId")
    id: str | None = None
    include_disabled: bool = Field(False, alias="includeDisabled")
    limit: int | None = Field(None, ge=1, le=200)
    offset: int = Field(0, ge=0)
    run_mode: Literal["due", "force"] = Field("due", alias="runMode")
    text: str | None = None
    mode: Literal["now", "next-heartbeat"] = "next-heartbeat"
    agent_id: str | None = Field(None, alias="agentId")
    session_key: str | None = Field(None, alias="sessionKey")
    context_messages: int | None = Field(None, alias="contextMessages", ge=0, le=10)


def _service(ctx: ToolContext) -> CronService:
    svc: CronService | None = (
        ctx.gateway.extensions.get("cron") if ctx.gateway is not None else None
    )
    if svc is None:
        raise ToolError("The scheduler is not running on this gateway.")
    return svc


def _json(value: Any) -> ToolOutput:
    return ToolOutput(json.dumps(value, ensure_ascii=False), details={"result": value})


def _resolve_at(value: str, now_ms: int) -> str:
    """Relative forms ("20m", "in 2h", "+1d") become an ISO instant; ISO is kept."""
    text = value.strip()
    rel = text.removeprefix("in ").removeprefix("+").strip()
    try:
        return sched.iso(now_ms + sched.parse_duration_ms(rel, bare_unit="m"))
    except sched.ScheduleError:
        pass
    try:
        return sched.iso(sched.parse_at_ms(text))
    except sched.ScheduleError as exc:
        raise ToolError(str(exc)) from exc


def _normalise_schedule(raw: Any, ctx: ToolContext, now_ms: int) -> Any:
    if isinstance(raw, str):
        raw = {"kind": "at", "at": raw}
    if not isinstance(raw, dict):
        return raw
    out = dict(raw)
    if out.get("kind") == "at" and isinstance(out.get("at"), str):
        out["at"] = _resolve_at(out["at"], now_ms)
    if out.get("kind") == "cron" and not out.get("tz"):
        tz = ctx.config.agents.defaults.user_timezone
        if tz:
            out["tz"] = tz
    return out


def _creator_tools(ctx: ToolContext) -> list[str]:
    from gateway.agents.tools.policy import allowed_tools

    return sorted(allowed_tools(ctx.config, ctx.agent_id, ctx.requester, REGISTRY))


def _job_for_add(job: dict[str, Any], ctx: ToolContext, now_ms: int) -> dict[str, Any]:
    data = dict(job)
    if "schedule" not in data:
        raise ToolError('job.schedule is required, e.g. {"kind":"at","at":"20m"}')
    data["schedule"] = _normalise_schedule(data["schedule"], ctx, now_ms)
    payload = data.get("payload")
    if payload is None and isinstance(data.get("message"), str):
        payload = {"kind": "agentTurn", "message": data.pop("message")}
    if not isinstance(payload, dict):
        raise ToolError('job.payload is required, e.g. {"kind":"agentTurn","message":"..."}')
    payload = dict(payload)
    kind = payload.get("kind")
    requester = ctx.requester
    from_chat = requester.channel in CHANNELS and requester.chat_id is not None
    if kind == "agentTurn":
        data.setdefault("sessionTarget", "current" if ctx.session_key else "isolated")
        # Never wider than the creator's own tools (tools.md §1.12).
        mine = _creator_tools(ctx)
        asked = payload.get("toolsAllow")
        payload["toolsAllow"] = [t for t in asked if t in mine] if isinstance(asked, list) else mine
    elif kind == "systemEvent":
        data.setdefault("sessionTarget", "main")
    data["payload"] = payload
    data.setdefault("wakeMode", "now")
    data.setdefault("name", (payload.get("message") or payload.get("text") or "reminder")[:60])
    account = requester.account_id or "default"
    data["owner"] = {"agentId": ctx.agent_id, "sessionKey": ctx.session_key, "accountId": account}
    data["agentId"] = ctx.agent_id
    if requester.channel is not None:
        data["scheduledToolPolicy"] = {
            "version": 1,
            "mode": "account",
            "ownerSessionKey": ctx.session_key,
            "ownerAccountId": account,
        }
    if "delivery" not in data and kind == "agentTurn":
        if from_chat:
            delivery: dict[str, Any] = {
                "mode": "announce",
                "channel": requester.channel,
                "to": requester.chat_id,
            }
            if requester.thread_id:
                delivery["threadId"] = requester.thread_id
            if requester.account_id:
                delivery["accountId"] = requester.account_id
            data["delivery"] = delivery
        else:
            data["delivery"] = {"mode": "announce", "channel": "last"}
    return data


def _job_id(args: AutomationsArgs) -> str:
    job_id = args.job_id or args.id
    if not job_id:
        raise ToolError("jobId is required for this action.")
    return job_id


@tool(
    "automations",
    group="group:automation",
    description=DESCRIPTION,
    owner_only=True,
    timeout_s=30.0,
)
async def automations(args: AutomationsArgs, ctx: ToolContext) -> ToolOutput:
    from gateway.rpc import cron_methods as rpc

    svc = _service(ctx)
    try:
        if args.action == "status":
            return _json(svc.status())
        if args.action == "list":
            page = rpc.list_page(
                svc,
                rpc.ListParams(
                    include_disabled=args.include_disabled,
                    limit=args.limit,
                    offset=args.offset,
                    compact=True,
                    agent_id=args.agent_id,
                ),
            )
            return _json({**page, "scope": "gateway"})
        if args.action == "get":
            return _json(svc.view(svc.get(_job_id(args))))
        if args.action == "add":
            if not args.job:
                raise ToolError("job is required for add.")
            data = _job_for_add(args.job, ctx, svc.clock.now_ms())
            try:
                return _json(rpc.add_job(svc, data))
            except RpcError as exc:
                raise ToolError(exc.message) from exc
        if args.action == "update":
            patch = dict(args.job or {})
            if "schedule" in patch:
                patch["schedule"] = _normalise_schedule(patch["schedule"], ctx, svc.clock.now_ms())
            return _json(svc.view(svc.update(_job_id(args), patch)))
        if args.action == "remove":
            svc.remove(_job_id(args))
            return _json({"ok": True, "removed": True})
        if args.action == "run":
            return _json(svc.run(_job_id(args), args.run_mode))
        if args.action == "runs":
            params = rpc.RunsParams(id=_job_id(args), limit=args.limit or 20, offset=args.offset)
            return _json(rpc.runs_page(svc, params))
        if not args.text:
            raise ToolError("text is required for wake.")
        return _json(
            await svc.system_wake(
                args.text, args.mode, args.session_key or ctx.session_key, args.agent_id
            )
        )
    except JobNotFound as exc:
        raise ToolError(
            f"Automation not found: {exc.job_id}. Use action list to see jobs."
        ) from exc
    except CronError as exc:
        raise ToolError(str(exc)) from exc

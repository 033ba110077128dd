"""Agent-facing methods: chat.send/history/abort, sessions.*, agents.list, models.list."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.agents import commands as chat_commands
from gateway.agents import roster as rv
from gateway.agents.chat_view import history_page
from gateway.agents.model_status import availability, configured_models
from gateway.agents.routing import agents_list_result
from gateway.agents.runner import QueueFull, SubmitRequest
from gateway.agents.session_keys import agent_id_from_session_key
from gateway.agents.store import SessionListPage
from gateway.agents.tools.registry import Requester
from gateway.agents.usage_footer import wire_fields as usage_wire_fields
from gateway.media.chat import AttachmentError, ChatAttachment, store_attachments
from gateway.media.memory import after_big_file
from gateway.media.serve import client_message
from gateway.media.service import media_store
from gateway.media.settings import attachment_policy
from gateway.protocol.errors import INVALID_REQUEST, NOT_FOUND, UNAVAILABLE, RpcError
from gateway.protocol.scopes import ADMIN, READ, WRITE
from gateway.rpc.registry import CallContext, EmptyParams, method
from gateway.ws.feed import feed_of

if TYPE_CHECKING:
    from gateway.agents.service import AgentService


class _Params(BaseModel):
    # Optional reference fields we don't act on are accepted and ignored (protocol.md §6).
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class ChatSendParams(_Params):
    session_key: str = Field(alias="sessionKey", min_length=1, max_length=512)
    message: str = Field(max_length=1_000_000)
    idempotency_key: str = Field(alias="idempotencyKey", min_length=1, max_length=256)
    agent_id: str | None = Field(None, alias="agentId", max_length=128)
    queue_mode: str | None = Field(None, alias="queueMode", max_length=32)
    timeout_ms: int | None = Field(None, alias="timeoutMs", ge=0)
    attachments: list[ChatAttachment] | None = None


class ChatHistoryParams(_Params):
    session_key: str = Field(alias="sessionKey", min_length=1, max_length=512)
    agent_id: str | None = Field(None, alias="agentId")
    limit: int | None = Field(None, ge=1, le=1000)
    cursor: str | None = Field(None, max_length=256)
    offset: int | None = Field(None, ge=0)


class ChatAbortParams(_Params):
    session_key: str = Field(alias="sessionKey", min_length=1, max_length=512)
    agent_id: str | None = Field(None, alias="agentId")
    run_id: str | None = Field(None, alias="runId", max_length=256)


class SessionsListParams(_Params):
    limit: int | None = Field(None, ge=1, le=10_000)
    offset: int = Field(0, ge=0)
    agent_id: str | None = Field(None, alias="agentId")
    search: str | None = Field(None, max_length=256)
    active_minutes: int | None = Field(None, alias="activeMinutes", ge=1)


class SessionKeyParams(_Params):
    key: str = Field(min_length=1, max_length=512)
    agent_id: str | None = Field(None, alias="agentId")
    reason: str | None = None


def service(ctx: CallContext) -> AgentService:
    svc: AgentService | None = ctx.gateway.extensions.get("agents")
    if svc is None:
        raise RpcError(UNAVAILABLE, "agents are not running", retryable=True, retry_after_ms=1000)
    return svc


@method("chat.send", scope=WRITE, params=ChatSendParams)
async def chat_send(ctx: CallContext, params: ChatSendParams) -> dict[str, Any]:
    received_at = int(time.time() * 1000)
    svc = service(ctx)
    if ctx.gateway.phase == "draining":
        raise RpcError(UNAVAILABLE, "gateway is restarting", retryable=True, retry_after_ms=5000)
    if params.message.strip() == "" and not params.attachments:
        raise RpcError(INVALID_REQUEST, "invalid chat.send params: message must not be empty")
    key = svc.session_key(params.session_key, params.agent_id)
    if ctx.conn is not None:
        svc.watch(key, ctx.conn)
    earlier = svc.remembered(params.idempotency_key)
    if earlier is not None:
        return earlier
    message = params.message
    command = chat_commands.parse(message, svc.config)
    if command is not None and command.trigger != "/whoami":
        # /new, /reset, /status, /model, /help, /stop: answered here, no model call.
        done = chat_commands.apply(
            command,
            svc=svc,
            config=svc.config,
            session_key=key,
            agent_id=agent_id_from_session_key(key, rv.default_agent_id(svc.config)),
            channel="webchat",
            sender_id="operator",
        )
        if done.run_text is None:
            result = {"runId": params.idempotency_key, "status": "started"}
            svc.remember(params.idempotency_key, result)
            svc.announce(key, params.idempotency_key, done.reply or "")
            return result
        message = done.run_text
    media: list[dict[str, Any]] = []
    if params.attachments:
        policy = attachment_policy(svc.config)
        try:
            media = await store_attachments(
                params.attachments,
                store=media_store(ctx.gateway),
                session_key=key,
                max_bytes=policy["maxBytes"],
                max_image_bytes=policy["maxImageBytes"],
            )
        except AttachmentError as exc:
            raise RpcError(INVALID_REQUEST, f"invalid chat.send params: {exc}") from exc
        finally:
            # The frame's base64 and decoded copies go once this call returns.
            after_big_file(sum(len(str(a.content or "")) for a in params.attachments))
    try:
        handle = svc.submit(
            SubmitRequest(
                session_key=key,
                text=message,
                run_id=params.idempotency_key,
                channel="webchat",
                queue_mode=params.queue_mode,
                timeout_seconds=params.timeout_ms / 1000 if params.timeout_ms else None,
                # An operator client is the owner (tools.md §2.6).
                requester=Requester.operator(),
                media=tuple(media),
            )
        )
    except QueueFull as exc:
        raise RpcError(UNAVAILABLE, str(exc), retryable=True, retry_after_ms=2000) from exc
    result = {"runId": handle.run_id, "status": "started"}
    svc.remember(params.idempotency_key, result)
    feed = feed_of(ctx.gateway)
    if feed is not None and ctx.conn is not None:
        agent_id = agent_id_from_session_key(key, rv.default_agent_id(svc.config))
        feed.dispatch_started(ctx.conn, handle.run_id, key, agent_id, received_at)
    return result


@method("chat.history", scope=READ, params=ChatHistoryParams)
async def chat_history(ctx: CallContext, params: ChatHistoryParams) -> dict[str, Any]:
    svc = service(ctx)
    key = svc.session_key(params.session_key, params.agent_id)
    if ctx.conn is not None:
        svc.watch(key, ctx.conn)
    # Messages carry `__openclaw {id, seq, runId}` and the user's `idempotencyKey`, which the
    # official clients match their live view against (gateway/agents/chat_view.py).
    page = history_page(
        svc.store, key, limit=params.limit, cursor=params.cursor, offset=params.offset
    )
    # Pictures and files as short-lived same-origin URLs (gateway/media/serve.py).
    base = svc.config.gateway.control_ui.base_path
    page["messages"] = [client_message(m, base) for m in page["messages"]]
    return page


@method("chat.abort", scope=WRITE, params=ChatAbortParams)
async def chat_abort(ctx: CallContext, params: ChatAbortParams) -> dict[str, Any]:
    svc = service(ctx)
    key = svc.session_key(params.session_key, params.agent_id)
    aborted = svc.runner.abort(key, run_id=params.run_id)
    return {"ok": True, "aborted": bool(aborted), "runIds": aborted}


@method("sessions.list", scope=READ, params=SessionsListParams)
async def sessions_list(ctx: CallContext, params: SessionsListParams) -> dict[str, Any]:
    svc = service(ctx)
    page = svc.store.list_sessions(
        agent_id=params.agent_id,
        limit=params.limit,
        offset=params.offset,
        search=params.search,
        active_minutes=params.active_minutes,
    )
    if (params.model_extra or {}).get("spawnedBy"):
        # Children of a session: clawgate runs no sub-agents, so no session has any.
        page = SessionListPage(rows=[], total_count=0, offset=0, limit=params.limit)
    chain = rv.defaults_chain(ctx.gateway.loaded.config)
    provider, _, model = chain.primary.partition("/")
    result = page.to_wire(
        path=str(ctx.gateway.settings.state_dir / "agents"),
        defaults={"modelProvider": provider, "model": model, "contextTokens": None},
    )
    for session, wire in zip(page.rows, result["sessions"], strict=True):
        wire.update(usage_wire_fields(session, ctx.gateway.loaded.config))  # `/usage` mode
    feed = ctx.gateway.extensions.get("clients.feed")
    if feed is not None:
        for row in result["sessions"]:
            feed.decorate(row)  # run status the official clients show
    return result


@method("sessions.reset", scope=ADMIN, params=SessionKeyParams)
async def sessions_reset(ctx: CallContext, params: SessionKeyParams) -> dict[str, Any]:
    svc = service(ctx)
    key = svc.session_key(params.key, params.agent_id)
    svc.runner.abort(key)
    row = svc.store.reset(key, "reset" if params.reason == "reset" else "new")
    svc.sessions_changed(key, "reset")
    return {"ok": True, "key": key, "entry": row.to_wire()}


@method("sessions.delete", scope=ADMIN, params=SessionKeyParams)
async def sessions_delete(ctx: CallContext, params: SessionKeyParams) -> dict[str, Any]:
    svc = service(ctx)
    key = svc.session_key(params.key, params.agent_id)
    if svc.store.get(key) is None:
        raise RpcError(NOT_FOUND, f"no session {key}")
    svc.runner.abort(key)
    result = svc.store.delete(key).to_wire()
    svc.sessions_changed(key, "deleted")
    return result


@method("agents.list", scope=READ, params=EmptyParams)
async def agents_list(ctx: CallContext, params: EmptyParams) -> dict[str, Any]:
    cfg = ctx.gateway.loaded.config
    return agents_list_result(
        rv.roster(cfg), rv.profiles(cfg, ctx.gateway.settings.state_dir), cfg.session.scope
    )


@method("models.list", scope=READ, params=_Params)
async def models_list(ctx: CallContext, params: _Params) -> dict[str, Any]:
    cfg = ctx.gateway.loaded.config
    seen: dict[str, dict[str, Any]] = {}
    aliases = {ref: m.alias for ref, m in cfg.agents.defaults.models.items() if m.alias}
    for agent_id in rv.roster(cfg).agent_ids:
        for ref in rv.model_chain(cfg, agent_id).candidates:
            provider, _, model_id = ref.partition("/")
            entry = seen.setdefault(ref, {"id": model_id or ref, "provider": provider, "name": ref})
            if ref in aliases:
                entry["alias"] = aliases[ref]
    for ref, name in configured_models(cfg):
        provider, _, model_id = ref.partition("/")
        seen.setdefault(ref, {"id": model_id, "provider": provider, "name": name or ref})
    for ref, fields in availability(cfg, list(seen), ctx.gateway.settings.state_dir).items():
        seen[ref].update(fields)  # available / unavailableReason (the UI marks these)
    return {"models": list(seen.values())}

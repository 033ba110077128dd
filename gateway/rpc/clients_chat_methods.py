"""The chat paths of the official clients (official-clients spec §2.1).

`agent` (the CLI's `openclaw agent -m`, answered twice: accepted, then the final result),
the subscriptions the TUI and the official Control UI open (`sessions.subscribe`,
`sessions.messages.subscribe`), and what their chat views read on open (`chat.startup`,
`chat.metadata`, `sessions.describe`, `commands.list`, `agent.identity.get`,
`models.authStatus`).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.agents import commands as chat_commands
from gateway.agents import roster as rv
from gateway.agents.chat_view import chat_page
from gateway.agents.runner import QueueFull, SubmitRequest
from gateway.agents.session_keys import agent_id_from_session_key
from gateway.agents.tools.registry import Requester
from gateway.config.models import OpenClawConfig, SecretRef
from gateway.protocol import scopes as sc
from gateway.protocol.errors import FORBIDDEN, INVALID_REQUEST, UNAVAILABLE, RpcError
from gateway.protocol.scopes import READ, WRITE
from gateway.rpc.agents_methods import SessionsListParams, models_list, service, sessions_list
from gateway.rpc.agents_methods import _Params as ModelsListParams
from gateway.rpc.registry import CallContext, EmptyParams, method
from gateway.ws.feed import feed_of
from providers.types import ENV_KEYS, MissingCredentials

STARTUP_DEFAULT_LIMIT = 80
STARTUP_MAX_LIMIT = 1000
DEFAULT_ASSISTANT_NAME = "Assistant"


class _Params(BaseModel):
    # Extra fields the clients send are accepted and ignored (spec §0.4).
    model_config = ConfigDict(extra="allow", populate_by_name=True)


# --- agent ------------------------------------------------------------------------------------


class AgentParams(_Params):
    message: str = Field(min_length=1, max_length=1_000_000)
    idempotency_key: str = Field(alias="idempotencyKey", min_length=1, max_length=256)
    agent_id: str | None = Field(None, alias="agentId", max_length=128)
    session_key: str | None = Field(None, alias="sessionKey", max_length=512)
    timeout: int | None = Field(None, ge=0)  # seconds; 0 = no limit


def _usage(usage: dict[str, Any] | None) -> dict[str, int] | None:
    if not usage:
        return None
    keys = ("input", "output", "cacheRead", "cacheWrite")
    out = {k: int(usage.get(k) or 0) for k in keys}
    out["total"] = int(usage.get("totalTokens") or sum(out.values()))
    return out


@method("agent", scope=WRITE, params=AgentParams)
async def agent(ctx: CallContext, params: AgentParams) -> dict[str, Any]:
    svc = service(ctx)
    if ctx.gateway.phase == "draining":
        raise RpcError(UNAVAILABLE, "gateway is restarting", retryable=True, retry_after_ms=5000)
    if params.message.strip() == "":
        raise RpcError(INVALID_REQUEST, "invalid agent params: message must not be empty")
    config = svc.config
    agent_id = params.agent_id or rv.default_agent_id(config)
    if agent_id not in rv.roster(config).agent_ids:
        raise RpcError(
            INVALID_REQUEST, f'invalid agent params: agentId: unknown agent "{agent_id}"'
        )
    key = svc.session_key(params.session_key or None, agent_id)
    run_id = params.idempotency_key
    earlier = svc.remembered(f"agent:{run_id}")
    if earlier is not None:
        return earlier
    started = time.monotonic()
    message = params.message
    command = chat_commands.parse(message, config)
    if command is not None and command.name in ("new", "reset") and command.trigger != "/whoami":
        # Starting over discards history: the reference asks for admin here.
        granted = ctx.conn.scopes if ctx.conn is not None else frozenset({sc.ADMIN})
        if not sc.satisfies(granted, sc.ADMIN):
            raise RpcError(
                FORBIDDEN,
                f"missing scope: {sc.ADMIN}",
                details={
                    "code": "MISSING_SCOPE",
                    "missingScope": sc.ADMIN,
                    "requiredScopes": [sc.ADMIN],
                },
            )
    if command is not None and command.trigger != "/whoami":
        done = chat_commands.apply(
            command,
            svc=svc,
            config=config,
            session_key=key,
            agent_id=agent_id_from_session_key(key, agent_id),
            channel="webchat",
            sender_id="operator",
        )
        if done.run_text is None:
            result = _final(run_id, done.reply or "", started, None)
            svc.remember(f"agent:{run_id}", result)
            return result
        message = done.run_text
    try:
        handle = svc.submit(
            SubmitRequest(
                session_key=key,
                text=message,
                agent_id=agent_id,
                run_id=run_id,
                channel="webchat",
                timeout_seconds=float(params.timeout) if params.timeout is not None else None,
                # An operator client is the owner (tools.md §2.6), as for chat.send.
                requester=Requester.operator(),
            )
        )
    except QueueFull as exc:
        raise RpcError(UNAVAILABLE, str(exc), retryable=True, retry_after_ms=2000) from exc
    except ValueError as exc:
        # The same idempotency key while its run is still going.
        return {"runId": run_id, "status": "in_flight", "summary": str(exc)}
    accepted = {
        "runId": handle.run_id,
        "sessionKey": key,
        "agentId": agent_id,
        "status": "accepted",
        "acceptedAt": int(time.time() * 1000),
    }
    if ctx.conn is not None and ctx.request_id is not None:
        ctx.conn.send_interim(ctx.request_id, accepted)
    outcome = await handle.wait()
    if outcome.state == "error":
        raise RpcError(UNAVAILABLE, outcome.text or "the run failed")
    if outcome.state == "aborted":
        result = {
            "runId": run_id,
            "status": "timeout",
            "summary": "aborted",
            "stopReason": outcome.stop_reason or "aborted",
        }
    else:
        row = svc.store.get(key)
        result = _final(
            run_id,
            "" if outcome.silent else outcome.text,
            started,
            {
                "sessionId": row.session_id if row else None,
                "provider": outcome.outcome.provider if outcome.outcome else None,
                "model": outcome.outcome.model if outcome.outcome else None,
                "usage": _usage(
                    outcome.outcome.usage.to_json()
                    if outcome.outcome and outcome.outcome.usage
                    else None
                ),
            },
        )
    svc.remember(f"agent:{run_id}", result)
    return result


def _final(
    run_id: str, text: str, started: float, agent_meta: dict[str, Any] | None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"durationMs": int((time.monotonic() - started) * 1000)}
    if agent_meta:
        meta["agentMeta"] = {k: v for k, v in agent_meta.items() if v is not None}
    payloads = [{"text": text, "mediaUrl": None}] if text.strip() else []
    return {
        "runId": run_id,
        "status": "ok",
        "summary": "completed",
        "result": {"payloads": payloads, "meta": meta},
    }


# --- subscriptions ----------------------------------------------------------------------------


@method("sessions.subscribe", scope=READ, params=EmptyParams)
async def sessions_subscribe(ctx: CallContext, params: EmptyParams) -> dict[str, Any]:
    feed = feed_of(ctx.gateway)
    if feed is None:
        raise RpcError(UNAVAILABLE, "agents are not running", retryable=True, retry_after_ms=1000)
    if ctx.conn is not None:
        feed.subscribe_sessions(ctx.conn)
    extra = params.model_extra or {}
    if not extra:
        return {"subscribed": True}
    listed = await sessions_list(ctx, SessionsListParams.model_validate(extra))
    return {"subscribed": True, "list": listed}


class MessagesSubscribeParams(_Params):
    key: str = Field(min_length=1, max_length=512)
    agent_id: str | None = Field(None, alias="agentId", max_length=128)
    include_approvals: bool = Field(False, alias="includeApprovals")


@method("sessions.messages.subscribe", scope=READ, params=MessagesSubscribeParams)
async def messages_subscribe(ctx: CallContext, params: MessagesSubscribeParams) -> dict[str, Any]:
    svc = service(ctx)
    feed = feed_of(ctx.gateway)
    key = svc.session_key(params.key, params.agent_id)
    if feed is not None and ctx.conn is not None:
        feed.subscribe_messages(key, ctx.conn)
    result: dict[str, Any] = {"subscribed": True, "key": key}
    if params.include_approvals:
        pending = ctx.gateway.extensions.get("approvals.pending")
        approvals = list(pending(key)) if callable(pending) else []
        result["approvalReplay"] = {
            "sessionKey": key,
            "updatedAtMs": int(time.time() * 1000),
            "approvals": approvals,
            "truncated": False,
        }
    return result


@method("sessions.messages.unsubscribe", scope=READ, params=MessagesSubscribeParams)
async def messages_unsubscribe(ctx: CallContext, params: MessagesSubscribeParams) -> dict[str, Any]:
    svc = service(ctx)
    feed = feed_of(ctx.gateway)
    key = svc.session_key(params.key, params.agent_id)
    if feed is not None and ctx.conn is not None:
        feed.unsubscribe_messages(key, ctx.conn)
    return {"subscribed": False, "key": key}


# --- the chat view ----------------------------------------------------------------------------


class StartupParams(_Params):
    session_key: str | None = Field(None, alias="sessionKey", max_length=512)
    short_id: str | None = Field(None, alias="shortId", max_length=64)
    agent_id: str | None = Field(None, alias="agentId", max_length=128)
    limit: int | None = Field(None, ge=1)
    max_bytes: int | None = Field(None, alias="maxBytes", ge=1)


def _row(ctx: CallContext, key: str) -> dict[str, Any] | None:
    feed = feed_of(ctx.gateway)
    if feed is not None:
        return feed.session_row(key)
    row = service(ctx).store.get(key)
    return row.to_wire() if row else None


def _defaults(config: OpenClawConfig, agent_id: str) -> dict[str, Any]:
    provider, _, model = rv.model_chain(config, agent_id).primary.partition("/")
    return {"modelProvider": provider, "model": model, "contextTokens": None}


@method("chat.startup", scope=READ, params=StartupParams)
async def chat_startup(ctx: CallContext, params: StartupParams) -> dict[str, Any]:
    svc = service(ctx)
    if params.session_key is None:
        # Short URL ids name sessions in the reference; clawgate has none to resolve.
        return {"resolution": {"ok": False}}
    key = svc.session_key(params.session_key, params.agent_id)
    agent_id = agent_id_from_session_key(key, rv.default_agent_id(svc.config))
    limit = min(params.limit or STARTUP_DEFAULT_LIMIT, STARTUP_MAX_LIMIT)
    page = chat_page(svc.store, key, limit)
    messages = page.messages
    offset = page.offset
    if params.max_bytes is not None:
        # Drop the oldest until the page fits; the rest stays reachable through paging.
        while len(messages) > 1 and len(json.dumps(messages)) > params.max_bytes:
            messages = messages[1:]
            offset += 1
    result: dict[str, Any] = {
        "sessionKey": key,
        "messages": messages,
        "hasMore": offset > 0,
        "totalMessages": page.total,
        "defaults": _defaults(svc.config, agent_id),
        "sessionInfo": _row(ctx, key) or {"key": key, "kind": "direct", "agentId": agent_id},
        "metadata": await _metadata(ctx, agent_id),
    }
    if page.session_id:
        result["sessionId"] = page.session_id
    if offset > 0:
        result["nextOffset"] = page.total - offset
    return result


class MetadataParams(_Params):
    agent_id: str | None = Field(None, alias="agentId", max_length=128)
    session_key: str | None = Field(None, alias="sessionKey", max_length=512)


async def _metadata(ctx: CallContext, agent_id: str | None) -> dict[str, Any]:
    listed = await models_list(ctx, ModelsListParams())
    return {"models": listed["models"], "commands": command_entries(ctx.gateway.loaded.config)}


@method("chat.metadata", scope=READ, params=MetadataParams)
async def chat_metadata(ctx: CallContext, params: MetadataParams) -> dict[str, Any]:
    return await _metadata(ctx, params.agent_id)


class DescribeParams(_Params):
    key: str = Field(min_length=1, max_length=512)
    agent_id: str | None = Field(None, alias="agentId", max_length=128)


@method("sessions.describe", scope=READ, params=DescribeParams)
async def sessions_describe(ctx: CallContext, params: DescribeParams) -> dict[str, Any]:
    key = service(ctx).session_key(params.key, params.agent_id)
    return {"session": _row(ctx, key)}


# --- commands ---------------------------------------------------------------------------------

_CATEGORY = {
    "new": "session",
    "reset": "session",
    "stop": "session",
    "status": "status",
    "whoami": "status",
    "model": "options",
    "help": "status",
}
_ALIASES = {"whoami": ["/whoami", "/id"]}
_TAKES_ARGS = frozenset({"new", "reset", "model"})


def command_entries(config: OpenClawConfig) -> list[dict[str, Any]]:
    """The slash commands clawgate answers itself (gateway/agents/commands.py)."""
    out = []
    for name, description in chat_commands.NATIVE_COMMANDS:
        entry: dict[str, Any] = {
            "name": name,
            "nativeName": name,
            "textAliases": _ALIASES.get(name, [f"/{name}"]),
            "description": description,
            "category": _CATEGORY.get(name, "status"),
            "source": "native",
            "scope": "both",
            "acceptsArgs": name in _TAKES_ARGS,
        }
        if name == "model":
            entry["args"] = [
                {"name": "model", "description": "Model alias to show", "type": "string"}
            ]
        out.append(entry)
    return out


@method("commands.list", scope=READ, params=_Params)
async def commands_list(ctx: CallContext, params: _Params) -> dict[str, Any]:
    return {"commands": command_entries(ctx.gateway.loaded.config)}


# --- identity and auth status -----------------------------------------------------------------

_IDENTITY_FIELD = re.compile(r"^\s*[-*]\s*\**(name|emoji|avatar)\**\s*:\s*(.+?)\s*$", re.I | re.M)


def _identity_file(workspace: os.PathLike[str]) -> dict[str, str]:
    """`- Name: …` / `- Emoji: …` / `- Avatar: …` lines of IDENTITY.md; placeholders skipped."""
    try:
        with open(os.path.join(workspace, "IDENTITY.md"), encoding="utf-8") as fh:
            text = fh.read(64 * 1024)
    except OSError:
        return {}
    found: dict[str, str] = {}
    for name, value in _IDENTITY_FIELD.findall(text):
        value = value.strip()
        if value and not value.startswith("(") and name.lower() not in found:
            found[name.lower()] = value[:200]
    return found


def agent_identity(
    config: OpenClawConfig, agent_id: str, state_dir: os.PathLike[str]
) -> dict[str, Any]:
    entry = config.agents.entries.get(agent_id)
    ident = entry.identity if entry else None
    from_file = _identity_file(rv.workspace_dir(config, agent_id, Path(state_dir)))
    name, source = DEFAULT_ASSISTANT_NAME, "default"
    if ident is not None and ident.name:
        name, source = ident.name, "config"
    elif entry is not None and entry.name:
        name, source = entry.name, "config"
    elif from_file.get("name"):
        name, source = from_file["name"], "workspace"
    emoji = (ident.emoji if ident else None) or from_file.get("emoji")
    result: dict[str, Any] = {"agentId": agent_id, "name": name, "nameSource": source}
    avatar = from_file.get("avatar")
    if avatar and avatar.startswith(("http://", "https://")):
        result.update(avatar=avatar, avatarSource=avatar, avatarStatus="remote")
    else:
        result["avatar"] = emoji or name[:1].upper()
        result["avatarStatus"] = "none"
    if emoji:
        result["emoji"] = emoji
    return result


class IdentityParams(_Params):
    agent_id: str | None = Field(None, alias="agentId", max_length=128)
    session_key: str | None = Field(None, alias="sessionKey", max_length=512)


@method("agent.identity.get", scope=READ, params=IdentityParams)
async def agent_identity_get(ctx: CallContext, params: IdentityParams) -> dict[str, Any]:
    config = ctx.gateway.loaded.config
    default = rv.default_agent_id(config)
    agent_id = params.agent_id or (
        agent_id_from_session_key(params.session_key, default) if params.session_key else default
    )
    if agent_id not in rv.roster(config).agent_ids:
        raise RpcError(
            INVALID_REQUEST,
            f'invalid agent.identity.get params: agentId: unknown agent "{agent_id}"',
        )
    return agent_identity(config, agent_id, ctx.gateway.settings.state_dir)


_DISPLAY = {"anthropic": "Claude", "openai": "OpenAI"}


def provider_auth(config: OpenClawConfig, provider: str) -> dict[str, Any]:
    """One provider's credential status, never the credential."""
    from gateway.agents.model_turn import provider_settings_from_config

    entry: dict[str, Any] = {
        "provider": provider,
        "authProvider": provider,
        "displayName": _DISPLAY.get(provider, provider),
        "profiles": [],
    }
    try:
        provider_settings_from_config(config, provider, os.environ)
    except MissingCredentials:
        entry["status"] = "missing"
        return entry
    entry["status"] = "static"
    configured = config.models.providers.get(provider)
    key = configured.api_key if configured else None
    if isinstance(key, SecretRef):
        entry["apiKey"] = (
            {"source": key.source, "envVar": key.id}
            if key.source == "env"
            else {"source": key.source}
        )
    elif isinstance(key, str) and key:
        entry["apiKey"] = {"source": "config"}
    else:
        var = ENV_KEYS.get(provider, f"{provider.upper().replace('-', '_')}_API_KEY")
        if os.environ.get(var):
            entry["apiKey"] = {"source": "env", "envVar": var}
        else:
            entry["apiKey"] = {"source": "env", "envVar": "ANTHROPIC_OAUTH_TOKEN"}
    return entry


@method("models.authStatus", scope=READ, params=IdentityParams)
async def models_auth_status(ctx: CallContext, params: IdentityParams) -> dict[str, Any]:
    config = ctx.gateway.loaded.config
    agents = [params.agent_id] if params.agent_id else list(rv.roster(config).agent_ids)
    providers: dict[str, None] = {}
    for agent_id in agents:
        for ref in rv.model_chain(config, agent_id).candidates:
            providers.setdefault(ref.partition("/")[0], None)
    return {
        "ts": int(time.time() * 1000),
        "providers": [provider_auth(config, p) for p in providers],
    }

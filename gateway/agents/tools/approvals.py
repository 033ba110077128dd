"""Exec approvals (tools.md §3.4): a pending request waits inside the exec call until an
operator answers `exec.approval.resolve`, or it expires (30 min) and counts as denied.

Requests go to operator connections holding `operator.approvals` (and, when the connection
records client caps, advertising `exec-approvals` or `approvals`) and to chat surfaces
(`ApprovalSurface`, e.g. Telegram inline buttons to the owner, `channels.approvals`). With
neither the request is denied at once (`askFallback: deny`), like the reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from gateway.protocol import scopes as sc

if TYPE_CHECKING:
    from gateway.agents.tools.registry import Requester, ToolContext
    from gateway.runtime import Gateway
    from gateway.ws.connection import Connection

log = logging.getLogger("agent/approvals")

DEFAULT_TIMEOUT_MS = 30 * 60 * 1000
ALLOWED_DECISIONS = ("allow-once", "deny")
UNAVAILABLE_DECISIONS = ("allow-always",)  # needs the allowlist store (later)
REQUESTED, RESOLVED = "exec.approval.requested", "exec.approval.resolved"
APPROVER_CAPS = frozenset({"exec-approvals", "approvals"})
EXTENSION_KEY = "exec-approvals"


@dataclass(frozen=True)
class Outcome:
    decision: Literal["allow-once", "deny"]
    reason: str  # "approved" | "user-denied" | "timeout" | "no-route" | "run-aborted"
    approval_id: str | None = None


@dataclass
class Pending:
    id: str
    created_at_ms: int
    expires_at_ms: int
    request: dict[str, Any]
    future: asyncio.Future[tuple[str, str | None]] = field(repr=False)
    origin: Requester | None = None  # who asked for the turn (chat surfaces route by it)

    def entry(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "approvalKind": "exec",
            "request": self.request,
            "createdAtMs": self.created_at_ms,
            "expiresAtMs": self.expires_at_ms,
        }


class ApprovalSurface(Protocol):
    """A place besides operator connections where a human can answer (a chat's buttons)."""

    def routes(self, pending: Pending) -> bool:
        """Could this surface show `pending` to someone allowed to answer it?"""
        ...

    async def offer(self, pending: Pending) -> bool:
        """Show the prompt; False when it could not be delivered."""
        ...

    async def close(
        self, pending: Pending, decision: str, reason: str, resolved_by: str | None
    ) -> None:
        """The approval ended (answered anywhere, expired, withdrawn): update the prompt."""
        ...


class ApprovalError(Exception):
    def __init__(self, code: Literal["not-found", "invalid"], message: str) -> None:
        super().__init__(message)
        self.code = code


class ApprovalBroker:
    """Pending exec approvals of one gateway."""

    def __init__(self, gateway: Gateway, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> None:
        self.gateway = gateway
        self.timeout_ms = timeout_ms
        self.pending: dict[str, Pending] = {}
        self.surfaces: list[ApprovalSurface] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def approvers(self) -> list[Connection]:
        out = []
        for conn in self.gateway.connections:
            if conn.state != "open" or not sc.satisfies(conn.scopes, sc.APPROVALS):
                continue
            caps = getattr(conn, "caps", None)
            if caps is not None and not (set(caps) & APPROVER_CAPS):
                continue
            out.append(conn)
        return out

    def _send(self, name: str, payload: dict[str, Any]) -> None:
        for conn in self.approvers():
            conn.send_event(name, payload)

    async def request(self, request: dict[str, Any], origin: Requester | None = None) -> Outcome:
        now = int(time.time() * 1000)
        pending = Pending(
            id=str(uuid.uuid4()),
            created_at_ms=now,
            expires_at_ms=now + self.timeout_ms,
            request=request,
            future=asyncio.get_running_loop().create_future(),
            origin=origin,
        )
        surfaces = [s for s in self.surfaces if s.routes(pending)]
        if not self.approvers() and not surfaces:
            return Outcome("deny", "no-route")
        self.pending[pending.id] = pending
        self._send(REQUESTED, pending.entry())
        log.info("exec approval %s requested for agent %s", pending.id, request.get("agentId"))
        try:
            offered = 0
            for surface in surfaces:
                try:
                    offered += bool(await surface.offer(pending))
                except Exception:  # one broken surface must not lose the request
                    log.exception("exec approval %s: a chat prompt failed", pending.id)
            if not offered and not self.approvers():
                self._finish(pending, "deny", None, reason="no-route")
                return Outcome("deny", "no-route", pending.id)
            decision, _by = await asyncio.wait_for(
                asyncio.shield(pending.future), self.timeout_ms / 1000
            )
        except TimeoutError:
            self._finish(pending, "deny", None, reason="timeout")
            return Outcome("deny", "timeout", pending.id)
        except asyncio.CancelledError:
            self._finish(pending, "deny", None, reason="run-aborted")
            raise
        if decision == "deny":
            return Outcome("deny", "user-denied", pending.id)
        return Outcome("allow-once", "approved", pending.id)

    def _finish(
        self, pending: Pending, decision: str, resolved_by: str | None, reason: str | None = None
    ) -> None:
        if self.pending.pop(pending.id, None) is None:
            return
        payload: dict[str, Any] = {
            "id": pending.id,
            "decision": decision,
            "resolvedBy": resolved_by,
            "ts": int(time.time() * 1000),
            "request": pending.request,
        }
        if reason:
            payload["reason"] = reason
        self._send(RESOLVED, payload)
        if not pending.future.done():
            pending.future.set_result((decision, resolved_by))
        for surface in self.surfaces:
            task = asyncio.get_running_loop().create_task(
                self._close(surface, pending, decision, reason or "resolved", resolved_by)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _close(
        surface: ApprovalSurface,
        pending: Pending,
        decision: str,
        reason: str,
        resolved_by: str | None,
    ) -> None:
        try:
            await surface.close(pending, decision, reason, resolved_by)
        except Exception:
            log.exception("exec approval %s: updating a chat prompt failed", pending.id)

    def resolve(self, approval_id: str, decision: str, resolved_by: str | None) -> None:
        pending = self.pending.get(approval_id)
        if pending is None:
            raise ApprovalError("not-found", f"unknown or expired approval id {approval_id!r}")
        if decision not in ALLOWED_DECISIONS:
            allowed = ", ".join(ALLOWED_DECISIONS)
            raise ApprovalError(
                "invalid", f"decision {decision!r} is not allowed for this approval ({allowed})"
            )
        self._finish(pending, decision, resolved_by)

    def get(self, approval_id: str) -> Pending:
        pending = self.pending.get(approval_id)
        if pending is None:
            raise ApprovalError("not-found", f"unknown or expired approval id {approval_id!r}")
        return pending

    async def wait_decision(self, approval_id: str, timeout_s: float) -> str | None:
        pending = self.get(approval_id)
        with contextlib.suppress(TimeoutError):
            decision, _ = await asyncio.wait_for(asyncio.shield(pending.future), timeout_s)
            return decision
        return None


def broker(gateway: Gateway) -> ApprovalBroker:
    """The gateway's broker (created on first use)."""
    found = gateway.extensions.get(EXTENSION_KEY)
    if not isinstance(found, ApprovalBroker):
        found = ApprovalBroker(gateway)
        gateway.extensions[EXTENSION_KEY] = found
    return found


async def request_exec_approval(
    ctx: ToolContext, *, command: str, cwd: str, security: str, ask: str
) -> Outcome:
    """Ask a human whether `command` may run; waits until answered or expired."""
    if ctx.gateway is None:
        return Outcome("deny", "no-route")
    req = ctx.requester
    request: dict[str, Any] = {
        "command": command,
        "cwd": cwd,
        "host": "gateway",
        "security": security,
        "ask": ask,
        "agentId": ctx.agent_id,
        "sessionKey": ctx.session_key,
        "sessionId": None,
        "runId": ctx.run_id,
        "toolCallId": ctx.tool_call_id,
        "resolvedPath": None,
        "allowedDecisions": list(ALLOWED_DECISIONS),
        "unavailableDecisions": list(UNAVAILABLE_DECISIONS),
        "commandAnalysis": None,
        "warningText": None,
        "scope": None,
        "nodeId": None,
        "systemRunPlan": None,
        "systemRunBinding": None,
        "turnSourceChannel": req.channel or "webchat",
        "turnSourceTo": req.chat_id,
        "turnSourceAccountId": req.account_id,
        "turnSourceThreadId": req.thread_id,
        "cronExecutionSource": None,
        "cronOperationBinding": None,
    }
    return await broker(ctx.gateway).request(request, origin=req)

"""Exec approvals (tools.md §3.4): a pending request waits inside the exec call until an
operator answers `exec.approval.resolve`, or it expires (30 min) and counts as denied.

Requests go to operator connections holding `operator.approvals` (and, when the connection
records client caps, advertising `exec-approvals` or `approvals`). With no such connection the
request is denied at once (`askFallback: deny`), like the reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from gateway.protocol import scopes as sc

if TYPE_CHECKING:
    from gateway.agents.tools.registry import ToolContext
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

    def entry(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "approvalKind": "exec",
            "request": self.request,
            "createdAtMs": self.created_at_ms,
            "expiresAtMs": self.expires_at_ms,
        }


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

    async def request(self, request: dict[str, Any]) -> Outcome:
        if not self.approvers():
            return Outcome("deny", "no-route")
        now = int(time.time() * 1000)
        pending = Pending(
            id=str(uuid.uuid4()),
            created_at_ms=now,
            expires_at_ms=now + self.timeout_ms,
            request=request,
            future=asyncio.get_running_loop().create_future(),
        )
        self.pending[pending.id] = pending
        self._send(REQUESTED, pending.entry())
        log.info("exec approval %s requested for agent %s", pending.id, request.get("agentId"))
        try:
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
    return await broker(ctx.gateway).request(request)

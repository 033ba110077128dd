"""`exec`: run a shell command in the workspace (tools.md §1.7, §3).

`sh -c <command>` in the workspace (or `workdir`), with a scrubbed environment inside its own
PID namespace (see `environment`), a timeout that kills the whole process group, output kept
as head + tail while it streams, and the approval policy of `tools.exec.mode` /
`security` + `ask` (§3.4). Cancelling the call (chat.abort) kills the command.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from gateway.agents.tools import approvals
from gateway.agents.tools.environment import (
    child_env,
    harden_gateway_process,
    isolation_prefix,
    known_secrets,
    mask_secrets,
)
from gateway.agents.tools.policy import agent_tools_config
from gateway.agents.tools.process import SESSIONS, Job, running_details, start_job
from gateway.agents.tools.registry import (
    ToolContext,
    ToolError,
    ToolOutput,
    result_char_limit,
    tool,
)
from gateway.config.models import ExecConfig

DEFAULT_TIMEOUT_S = 1800
DEFAULT_BACKGROUND_MS = 10_000
UPDATE_INTERVAL_S = 0.25
NO_OUTPUT = "(no output)"

Security = Literal["deny", "allowlist", "full"]
Ask = Literal["off", "on-miss", "always"]
_ASK_RANK = {"off": 0, "on-miss": 1, "always": 2}
_MODES: dict[str, tuple[Security, Ask]] = {
    "deny": ("deny", "off"),
    "allowlist": ("allowlist", "off"),
    "ask": ("allowlist", "on-miss"),
    "auto": ("allowlist", "on-miss"),  # the model reviewer is not implemented: a human decides
    "full": ("full", "off"),
}


class ExecArgs(BaseModel):
    """Run a shell command (sh -c) in the workspace. Output (stdout and stderr together) comes
    back when it ends; long output keeps its beginning and end. Long-running commands continue
    in the background after yieldMs (or at once with background=true): follow them with the
    process tool."""

    command: str = Field(min_length=1, description="Shell command to run.")
    title: str | None = Field(None, max_length=120, description="Short purpose label for UIs.")
    workdir: str | None = Field(
        None, description="Working directory (default: the workspace; relative to it)."
    )
    env: dict[str, str] | None = Field(None, description="Extra environment variables.")
    yield_ms: float | None = Field(
        None, alias="yieldMs", ge=0, description="Return 'still running' after this many ms."
    )
    background: bool | None = Field(None, description="Start in the background and return at once.")
    timeout_seconds: float | None = Field(
        None, alias="timeoutSeconds", ge=0, description="Kill after this many seconds (0 = never)."
    )
    pty: bool | None = Field(None, description="Not supported yet.")
    elevated: bool | None = Field(None, description="Not supported.")
    host: Literal["auto", "sandbox", "gateway", "node"] | None = None
    ask: Literal["off", "on-miss", "always"] | None = Field(
        None, description="Ask a human before running (can only make approval stricter)."
    )
    node: str | None = None

    @field_validator("workdir")
    @classmethod
    def _workdir(cls, value: str | None) -> str | None:
        if value is not None and value != "" and not value.strip():
            raise ValueError("must not be only whitespace")
        return value or None


@dataclass(frozen=True)
class ExecPolicy:
    security: Security
    ask: Ask
    timeout_s: int
    background_ms: int
    cleanup_ms: int
    path_prepend: tuple[str, ...]
    host: str


def effective_policy(ctx: ToolContext) -> ExecPolicy:
    """`agents.entries.<id>.tools.exec` key by key over `tools.exec` over the defaults."""
    agent_tools = agent_tools_config(ctx.config, ctx.agent_id)
    layers = [c for c in (agent_tools.exec if agent_tools else None, ctx.config.tools.exec) if c]

    def pick(name: str) -> Any:
        for layer in layers:
            value = getattr(layer, name)
            if value is not None:
                return value
        return None

    security: Security = "full"
    ask: Ask = "off"
    for layer in layers:  # the first layer that says anything about the policy decides
        if layer.mode is not None:
            security, ask = _MODES[layer.mode]
            break
        if layer.security is not None or layer.ask is not None:
            security = layer.security or _legacy_fallback(layers, "security") or "full"
            ask = layer.ask or _legacy_fallback(layers, "ask") or "off"
            break
    return ExecPolicy(
        security=security,
        ask=ask,
        timeout_s=pick("timeout_seconds") or DEFAULT_TIMEOUT_S,
        background_ms=pick("background_ms") or DEFAULT_BACKGROUND_MS,
        cleanup_ms=pick("cleanup_ms") or 1_800_000,
        path_prepend=tuple(pick("path_prepend") or ()),
        host=pick("host") or "auto",
    )


def _legacy_fallback(layers: list[ExecConfig], name: str) -> Any:
    for layer in layers:
        if getattr(layer, name) is not None:
            return getattr(layer, name)
    return None


def _workdir(args: ExecArgs, ctx: ToolContext) -> Path:
    if args.workdir is None:
        path = ctx.workspace
    else:
        path = Path(args.workdir)
        if not path.is_absolute():
            path = ctx.workspace / path
    path = Path(os.path.normpath(path))
    if not path.is_dir():
        raise ToolError(f"workdir {path} does not exist or is not a directory")
    return path


def _gateway_secrets(ctx: ToolContext) -> list[str | None]:
    if ctx.gateway is None:
        return []
    auth = ctx.gateway.settings.auth
    return [auth.token, auth.password]


async def _approve(args: ExecArgs, ctx: ToolContext, policy: ExecPolicy, cwd: Path) -> None:
    """Raise unless the policy lets this command run (asking a human when it says so)."""
    ask = policy.ask
    if args.ask is not None and _ASK_RANK[args.ask] > _ASK_RANK[ask]:
        ask = args.ask  # a call may only make approval stricter
    if policy.security == "deny":
        raise ToolError(
            "exec is disabled here (tools.exec.security=deny / mode=deny). Ask the operator to"
            " change tools.exec if commands should run."
        )
    # Allowlist matching is not implemented yet: every command is a miss (§3.1).
    miss = policy.security == "allowlist"
    if ask == "always" or (ask == "on-miss" and miss):
        outcome = await approvals.request_exec_approval(
            ctx,
            command=args.command,
            cwd=str(cwd),
            security=policy.security,
            ask=ask,
        )
        if outcome.decision == "deny":
            raise ToolError(
                f"exec denied (approval {outcome.approval_id or '-'}: {outcome.reason}). "
                f"Command: {args.command}"
            )
        return
    if miss:
        raise ToolError(
            "exec refused: tools.exec.security=allowlist and the command is not on the allowlist"
            " (allowlist matching is not implemented; set tools.exec.mode to 'ask' or 'full')."
        )


def _budget(ctx: ToolContext) -> tuple[int, int]:
    """Head and tail sizes so a finished command's output fits one result (§1.1)."""
    total = min(64_000, result_char_limit(ctx.context_window_tokens)) - 400
    head = total // 4
    return head, total - head


def _finished(job: Job, timeout_s: float | None) -> ToolOutput:
    output = job.output()
    details: dict[str, Any] = {
        "status": "completed" if job.status == "completed" else "failed",
        "exitCode": job.exit_code,
        "exitSignal": job.exit_signal,
        "exitReason": "timeout" if job.status == "timeout" else "exit",
        "durationMs": job.duration_ms,
        "aggregated": output,
        "noOutputTimedOut": job.status == "timeout" and job.buffer.total == 0,
        "cwd": job.cwd,
        "elided": max(0, job.buffer.dropped),
    }
    if job.status == "timeout":
        text = (f"{output.rstrip()}\n\n" if output.strip() else "") + (
            f"[Command timed out after {timeout_s:g}s and was killed. It may have had side"
            " effects already; do not rerun it blindly. For long jobs use background=true (or"
            " yieldMs) and follow up with the process tool.]"
        )
        return ToolOutput(text, details, is_error=True)
    text = output if output else NO_OUTPUT
    if job.exit_signal:
        text += f"\n\n[Command stopped by signal {job.exit_signal}]"
    elif job.exit_code:
        text += f"\n\n[Command exited with code {job.exit_code}]"
    return ToolOutput(text, details)


def _running(job: Job) -> ToolOutput:
    return ToolOutput(
        f"Command still running in the background: session {job.id}, pid {job.pid}.\n"
        "Use the process tool: action=poll (new output and status), log, write, kill"
        f" with sessionId={job.id!r}.",
        running_details(job),
    )


@tool("exec", group="group:runtime", timeout_s=None)
async def exec_(args: ExecArgs, ctx: ToolContext) -> ToolOutput:
    if args.host not in (None, "auto", "gateway"):
        raise ToolError(f"host={args.host!r} is not supported here; commands run on the gateway")
    if args.pty:
        raise ToolError("pty=true is not supported yet; run the command without a terminal")
    if args.elevated:
        raise ToolError("elevated=true is not supported (no sandbox to escape from)")
    policy = effective_policy(ctx)
    if policy.host not in ("auto", "gateway"):
        raise ToolError(f"tools.exec.host={policy.host!r} is not supported; use 'gateway'")
    cwd = _workdir(args, ctx)
    extra = _gateway_secrets(ctx)
    env = child_env(
        ctx.config,
        workdir=str(cwd),
        overrides=args.env,
        path_prepend=policy.path_prepend,
        extra_secrets=extra,
    )
    await _approve(args, ctx, policy, cwd)

    timeout_s = policy.timeout_s if args.timeout_seconds is None else args.timeout_seconds
    can_background = "process" in (ctx.allowed_tools or ())
    background = bool(args.background) and can_background
    head, tail = _budget(ctx)
    _, secret_values = known_secrets(ctx.config)
    secret_values |= {s for s in extra if s}

    harden_gateway_process()
    prefix = await isolation_prefix()
    job = await start_job(
        [*prefix, "sh", "-c", args.command],
        command=args.command,
        cwd=str(cwd),
        env=env,
        agent_id=ctx.agent_id,
        stdin=background,
        timeout_s=timeout_s or None,
        head_chars=head,
        tail_chars=tail,
        secrets_=frozenset(secret_values),
    )
    if background:
        SESSIONS.add(job)
        return _running(job)
    yield_ms = args.yield_ms if args.yield_ms is not None else policy.background_ms
    deadline = time.monotonic() + yield_ms / 1000 if can_background else None
    try:
        await _follow(job, ctx, deadline)
    except asyncio.CancelledError:
        job.kill("killed")  # chat.abort: the whole process group goes
        raise
    if not job.done.is_set():
        SESSIONS.add(job)
        return _running(job)
    return _finished(job, timeout_s)


async def _follow(job: Job, ctx: ToolContext, deadline: float | None) -> None:
    """Wait for the job (or the yield deadline), sending throttled output updates."""
    seen = job.buffer.changed
    while not job.done.is_set():
        step = UPDATE_INTERVAL_S
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            step = min(step, left)
        await job.wait(step)
        if ctx.on_update is not None and job.buffer.changed != seen:
            seen = job.buffer.changed
            tail = mask_secrets(job.buffer.tail(4000), job.secrets)
            ctx.on_update(
                {"content": [{"type": "text", "text": tail}], "details": running_details(job)}
            )

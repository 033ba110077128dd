"""Running one fire of a job: the payload (§C.4–C.6), then its delivery (§C.7).

* `agentTurn` — a turn through the agent service (the same queue and lanes as chat), in a
  fresh `agent:<id>:cron:<jobId>:run:<uuid>` session (`isolated`), the creator's session
  (`current`) or a named one (`session:<key>`), with the job's own model when it has one.
* `systemEvent` — queued for the agent's main session; `wakeMode: "now"` runs a turn there at
  once, `next-heartbeat` leaves it for the next heartbeat (which never skips while events wait).
* `heartbeat` — the system row of §C.19.
* `command` / `script` — refused: the reference's tool policy has no exec rule we could check
  them against yet (tools.md), so the job is recorded as an error instead of running a shell.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.agents import roster as rv
from gateway.agents.runner import QueueFull, RunResult, SubmitRequest
from gateway.agents.session_keys import canonical_session_key, main_session_key
from gateway.cron import delivery as dlv
from gateway.cron import heartbeat as hb
from gateway.cron.model import AgentTurnPayload, Delivery, JobSpec, SystemEventPayload

if TYPE_CHECKING:
    from gateway.agents.service import AgentService
    from gateway.runtime import Gateway

log = logging.getLogger("gateway.cron")

AGENT_TURN_BUDGET_S = 3600.0  # watchdog when the payload sets no timeoutSeconds (§C.11)
MAX_SUMMARY_CHARS = 2000
# agents.md failure kinds → the run log's errorReason enum.
_REASONS = {
    "timeout": "timeout",
    "rate_limit": "rate_limit",
    "context_length": "context_overflow",
    "refusal": "format",
    "unknown": "unknown",
}
TRANSIENT_REASONS = frozenset({"rate_limit", "overloaded", "timeout", "server_error"})


@dataclass
class Execution:
    status: str  # ok | error | skipped
    error: str | None = None
    error_reason: str | None = None
    summary: str | None = None
    session_key: str | None = None
    session_id: str | None = None
    model: str | None = None
    provider: str | None = None
    usage: dict[str, int] | None = None
    delivery: dlv.Outcome = field(default_factory=dlv.Outcome)

    @property
    def transient(self) -> bool:
        return self.error_reason in TRANSIENT_REASONS


class SystemEvents:
    """System events waiting for a session's next turn (in memory, newest last)."""

    def __init__(self) -> None:
        self._pending: dict[str, list[str]] = {}

    def add(self, session_key: str, text: str, now_ms: int) -> None:
        stamp = datetime.fromtimestamp(now_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        self._pending.setdefault(session_key, []).append(f"System: [{stamp}] {text}")

    def peek(self, session_key: str) -> list[str]:
        return list(self._pending.get(session_key, ()))

    def take(self, session_key: str) -> list[str]:
        return self._pending.pop(session_key, [])


def _beat_status(out: Execution) -> str:
    """`last-heartbeat` status in the reference's words (official-clients spec §2.3)."""
    if out.status == "skipped":
        return "skipped"
    if out.status != "ok":
        return "failed"
    if out.delivery.delivered:
        return "sent"
    # Nothing to deliver: the model acknowledged with the token, or said nothing at all.
    return "ok-empty" if out.delivery.suppression in ("empty", "silent") else "ok-token"


@dataclass
class LastHeartbeat:
    ts: int
    status: str
    reason: str | None = None
    preview: str | None = None
    duration_ms: int = 0

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ts": self.ts,
            "status": self.status,
            "hasMedia": False,
            "durationMs": self.duration_ms,
        }
        if self.reason:
            out["reason"] = self.reason
        if self.preview:
            out["preview"] = self.preview
        return out


class Executor:
    def __init__(self, gateway: Gateway, now_ms: Callable[[], int]) -> None:
        self.gateway = gateway
        self.events = SystemEvents()
        self.now_ms = now_ms
        self.last_heartbeat: LastHeartbeat | None = None
        self.heartbeats_enabled = True
        self.send_backoff_s: tuple[float, ...] | None = None  # None → delivery.SEND_BACKOFF_S

    def _agents(self) -> AgentService | None:
        svc: AgentService | None = self.gateway.extensions.get("agents")
        return svc

    async def run(self, job_id: str, spec: JobSpec, run_id: str) -> Execution:
        payload = spec.payload
        agent_id = dlv.default_agent(self.gateway, spec)
        if isinstance(payload, AgentTurnPayload):
            return await self._agent_turn(job_id, spec, payload, agent_id, run_id)
        if isinstance(payload, SystemEventPayload):
            return await self._system_event(spec, payload, agent_id)
        if payload.kind == "heartbeat":
            return await self._heartbeat(spec, agent_id)
        return Execution(
            "error",
            error=f"{payload.kind} payloads are not supported by this gateway",
            error_reason="format",
        )

    # --- agent turns ---------------------------------------------------------------------------

    def _session_for(self, job_id: str, spec: JobSpec, agent_id: str) -> str:
        target = spec.session_target
        if target.startswith("session:"):
            return canonical_session_key(target.split(":", 1)[1], agent_id)
        if target == "current":
            owner = spec.owner.session_key if spec.owner is not None else None
            if owner or spec.session_key:
                return canonical_session_key(owner or spec.session_key, agent_id)
        if target == "main":
            return main_session_key(agent_id)
        return f"agent:{agent_id}:cron:{job_id}:run:{uuid.uuid4()}"

    async def _turn(
        self,
        session_key: str,
        text: str,
        agent_id: str,
        *,
        timeout_s: float | None,
        model: str | None = None,
        fallbacks: list[str] | None = None,
        job_id: str | None = None,
        heartbeat: bool = False,
    ) -> tuple[RunResult | None, str | None]:
        svc = self._agents()
        if svc is None:
            return None, "the agents service is not running"
        meta: dict[str, Any] = {"cronJobId": job_id} if job_id else {}
        if heartbeat:
            meta["heartbeat"] = True  # no memory flush in heartbeat turns (as the reference)
        if model:
            meta["modelOverride"] = model
            if fallbacks is not None:
                meta["fallbacksOverride"] = list(fallbacks)
        try:
            handle = svc.submit(
                SubmitRequest(
                    session_key=session_key,
                    text=text,
                    agent_id=agent_id,
                    timeout_seconds=timeout_s if timeout_s is not None else AGENT_TURN_BUDGET_S,
                    metadata=meta,
                )
            )
        except (QueueFull, RuntimeError) as exc:
            return None, str(exc)
        try:
            return await handle.wait(), None
        except asyncio.CancelledError:
            svc.runner.abort_run(handle.run_id, reason="cron-cancelled")
            raise

    def _from_result(self, result: RunResult, session_key: str) -> Execution:
        out = Execution("ok", session_key=session_key)
        svc = self._agents()
        row = svc.store.get(session_key) if svc is not None else None
        out.session_id = row.session_id if row is not None else None
        outcome = result.outcome
        if outcome is not None:
            out.model, out.provider = outcome.model, outcome.provider
            if outcome.usage is not None:
                u = outcome.usage
                out.usage = {
                    "input_tokens": u.input,
                    "output_tokens": u.output,
                    "total_tokens": u.total_tokens or (u.input + u.output),
                    "cache_read_tokens": u.cache_read,
                    "cache_write_tokens": u.cache_write,
                }
        if result.state == "final":
            out.summary = result.text[:MAX_SUMMARY_CHARS]
            return out
        out.status = "error"
        out.error = result.text or f"run {result.state}"
        kind = outcome.failure.kind if outcome is not None and outcome.failure else None
        out.error_reason = _REASONS.get(kind or "", "unknown" if kind else "unclassified")
        if result.state == "aborted":
            out.error_reason = "unknown"
        return out

    async def _agent_turn(
        self,
        job_id: str,
        spec: JobSpec,
        payload: AgentTurnPayload,
        agent_id: str,
        run_id: str,
    ) -> Execution:
        key = self._session_for(job_id, spec, agent_id)
        timeout = payload.timeout_seconds
        result, problem = await self._turn(
            key,
            payload.message,
            agent_id,
            timeout_s=timeout,
            model=payload.model,
            fallbacks=payload.fallbacks,
            job_id=job_id,
        )
        if result is None:
            return Execution("error", error=problem, error_reason="unclassified", session_key=key)
        out = self._from_result(result, key)
        if out.status == "ok":
            await self._deliver(spec, agent_id, result.text, out, silent=result.silent)
        return out

    # --- system events -------------------------------------------------------------------------

    async def _system_event(
        self, spec: JobSpec, payload: SystemEventPayload, agent_id: str
    ) -> Execution:
        key = spec.session_key or main_session_key(agent_id)
        key = canonical_session_key(key, agent_id)
        self.events.add(key, payload.text, self.now_ms())
        if spec.wake_mode != "now":
            return Execution("ok", summary="queued for the next heartbeat", session_key=key)
        events = self.events.take(key)
        result, problem = await self._turn(key, "\n".join(events), agent_id, timeout_s=None)
        if result is None:
            for text in events:  # not lost: the next turn or heartbeat picks them up
                self.events._pending.setdefault(key, []).append(text)
            return Execution("error", error=problem, error_reason="unclassified", session_key=key)
        out = self._from_result(result, key)
        if out.status == "ok":
            # Main-session work answers through the session's own route (§C.7).
            route_spec = spec.model_copy(
                update={"delivery": Delivery(mode="announce", channel="last")}
            )
            await self._deliver(route_spec, agent_id, result.text, out, silent=result.silent)
        return out

    # --- heartbeat -----------------------------------------------------------------------------

    async def _heartbeat(self, spec: JobSpec, agent_id: str) -> Execution:
        started = self.now_ms()
        cfg = self.gateway.loaded.config
        found = [
            s for s in hb.settings(cfg, list(rv.roster(cfg).agent_ids)) if s.agent_id == agent_id
        ]
        if not found:
            return self._beat(started, Execution("skipped", error="heartbeat not configured"))
        beat = found[0]
        key = canonical_session_key(beat.session or "main", agent_id)
        pending = self.events.peek(key)
        if not self.heartbeats_enabled and not pending:
            return self._beat(started, Execution("skipped", error="heartbeats disabled"))
        if not pending and not hb.in_active_hours(
            beat.active_hours, started, cfg.agents.defaults.user_timezone
        ):
            return self._beat(started, Execution("skipped", error="quiet-hours"))
        workspace = rv.workspace_dir(cfg, agent_id, self.gateway.settings.state_dir)
        instructions = _read(workspace / hb.HEARTBEAT_FILE)
        if not pending and (instructions is None or hb.effectively_empty(instructions)):
            return self._beat(started, Execution("skipped", error="empty-heartbeat-file"))
        target_spec = self._heartbeat_delivery(spec, beat, key)
        if isinstance(target_spec, str):
            return self._beat(started, Execution("skipped", error=target_spec))
        events = self.events.take(key)
        text = hb.prompt_text(beat.prompt, instructions, events)
        result, problem = await self._turn(
            key,
            text,
            agent_id,
            timeout_s=float(beat.timeout_seconds)
            if beat.timeout_seconds
            else min(600.0, beat.every_ms / 1000 or 600.0),
            model=beat.model,
            heartbeat=True,
        )
        if result is None:
            for event in events:
                self.events._pending.setdefault(key, []).append(event)
            return self._beat(
                started, Execution("error", error=problem, error_reason="unclassified")
            )
        out = self._from_result(result, key)
        if out.status == "ok":
            body, reason = hb.strip_ack(result.text, beat.ack_max_chars)
            if body is None:
                out.delivery = dlv.Outcome(status="not-delivered", suppression=reason)
            elif target_spec is not None:
                await self._deliver(target_spec, agent_id, body, out, silent=False)
        return self._beat(started, out)

    def _heartbeat_delivery(
        self, spec: JobSpec, beat: hb.HeartbeatSettings, session_key: str
    ) -> JobSpec | str | None:
        """A spec whose delivery is the heartbeat target; None = internal; str = no route."""
        target = beat.target
        if target == "none":
            return None
        if target == "last":
            d = Delivery(mode="announce", channel="last")
        elif target in dlv.CHANNELS:
            d = Delivery(mode="announce", channel=target, to=beat.to, account_id=beat.account_id)
        else:
            owner = _owner_target(self.gateway)
            if owner is None:
                return "no-route"
            d = Delivery(mode="announce", channel=owner[0], to=owner[1])
        routed = spec.model_copy(update={"delivery": d, "session_key": session_key})
        if isinstance(dlv.resolve(self.gateway, routed, beat.agent_id), str):
            return "no-route"
        return routed

    def _beat(self, started: int, out: Execution) -> Execution:
        if out.status == "skipped":
            reason = out.error
        elif out.status == "error":
            reason = out.error
        else:
            reason = out.delivery.suppression
        self.last_heartbeat = LastHeartbeat(
            ts=self.now_ms(),
            status=_beat_status(out),
            reason=reason,
            preview=(out.summary or "")[:200] or None,
            duration_ms=max(0, self.now_ms() - started),
        )
        return out

    # --- delivery ------------------------------------------------------------------------------

    async def _deliver(
        self, spec: JobSpec, agent_id: str, text: str, out: Execution, *, silent: bool
    ) -> None:
        d = dlv.effective_delivery(spec)
        if d is None or d.mode == "none":
            out.delivery = dlv.Outcome(status="not-requested")
            return
        if silent or not text.strip():
            out.delivery = dlv.Outcome(
                status="not-delivered", suppression="silent" if silent else "empty"
            )
            return
        target = dlv.resolve(self.gateway, spec, agent_id)
        intended = {"channel": d.channel or "last", "to": d.to, "source": "explicit"}
        if d.channel in (None, "last") and not d.to:
            intended["source"] = "last"
        if isinstance(target, str):
            out.delivery = dlv.Outcome(
                status="not-delivered",
                error=target,
                intended=intended,
                resolved={"ok": False, "error": target},
            )
            return
        started = time.monotonic()
        try:
            ids = await dlv.send(self.gateway, target, text, backoff_s=self.send_backoff_s)
        except RuntimeError as exc:
            log.warning("cron: delivery failed after retries: %s", exc)
            out.delivery = dlv.Outcome(
                status="not-delivered",
                error=str(exc),
                intended=intended,
                resolved={**target.wire(), "ok": False, "error": str(exc)},
            )
            return
        log.info(
            "cron: delivered to %s in %.0f ms", target.channel, (time.monotonic() - started) * 1000
        )
        out.delivery = dlv.Outcome(
            status="delivered",
            delivered=bool(ids),
            intended=intended,
            resolved={**target.wire(), "ok": True},
            message_ids=ids,
        )


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def _owner_target(gateway: Gateway) -> tuple[str, str] | None:
    """`owner`: the first concrete DM identity in `commands.ownerAllowFrom`, then a channel
    `allowFrom` entry (Telegram DMs are addressed by the user id)."""
    cfg = gateway.loaded.config
    owners = cfg.commands.owner_allow_from
    if isinstance(owners, list):
        for entry in owners:
            channel, ident = dlv.split_prefixed(str(entry))
            if channel and ident and ident.lstrip("-").isdigit():
                return channel, ident
    tg = cfg.channels.telegram
    if tg is not None:
        for entry in tg.allow_from:
            text = str(entry).removeprefix("telegram:").removeprefix("tg:")
            if text.isdigit():
                return "telegram", text
    return None

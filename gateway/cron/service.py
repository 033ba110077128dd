"""The scheduler: jobs in memory, one timer, runs, catch-up after restart (§C.9–C.14).

Rules that keep jobs from never firing or firing twice:
* A job is due when `nextRunAtMs <= now`; it is fired (marker `runningAtMs` + run id written
  to disk) *before* its next slot is computed, and every fire ends in a run-log entry,
  skips included.
* The run-log entry is appended before the state is saved, so after a crash a marker whose
  run id is in the log is recognised as finished and not run again; a marker without an entry
  is an interrupted run: recorded as an `error`, and a one-shot runs again once.
* After downtime a missed job runs once however many slots it missed (≤5 at once, the rest
  5 s apart, agent work deferred), then reschedules from its schedule.
* The timer sleeps until the earliest slot but never more than 60 s, so clock jumps are seen.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from gateway.agents import roster as rv
from gateway.agents.session_keys import canonical_session_key
from gateway.cron import alerts, retention
from gateway.cron import delivery as dlv
from gateway.cron import heartbeat as hb
from gateway.cron import schedule as sched
from gateway.cron.clock import Clock, SystemClock
from gateway.cron.execute import AGENT_TURN_BUDGET_S, Execution, Executor
from gateway.cron.model import (
    AgentTurnPayload,
    AtSchedule,
    CronSchedule,
    EverySchedule,
    JobSpec,
    describe,
    merge_patch,
    parse_spec,
)
from gateway.cron.state import JobState, mirrors
from gateway.cron.store import CronStore
from gateway.logs import scrubber

if TYPE_CHECKING:
    from gateway.runtime import Gateway

log = logging.getLogger("gateway.cron")

MAX_CONCURRENT_RUNS = 8
MAX_TIMER_DELAY_MS = 60_000
MIN_REFIRE_GAP_MS = 2_000
CATCHUP_IMMEDIATE = 5
CATCHUP_GAP_MS = 5_000
DEFAULT_AGENT_DEFER_MS = 120_000
DEFER_ENV = "CLAWGATE_CRON_CATCHUP_DEFER_MS"
SKIP_ENV = "OPENCLAW_SKIP_CRON"
ERROR_BACKOFF_MS = (30_000, 60_000, 300_000, 900_000, 3_600_000)
ONE_SHOT_RETRY_MS = (30_000, 60_000, 300_000)
AUTO_DISABLE_AFTER = 10
SCHEDULE_ERRORS_DISABLE = 3
INTERRUPTED = "cron: job interrupted by gateway restart"
HEARTBEAT_KEY = "heartbeat:"
FLUSH_DELAY_S = 0.25
# The clock a new service uses; tests and benchmarks swap in a ManualClock before start.
make_clock: Callable[[], Clock] = SystemClock


class CronError(ValueError):
    """A request the scheduler refuses; the message names the rule."""


class JobNotFound(KeyError):
    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


@dataclass
class Job:
    spec: JobSpec
    state: JobState

    @property
    def id(self) -> str:
        assert self.spec.id is not None
        return self.spec.id

    @property
    def system(self) -> bool:
        return (self.spec.declaration_key or "").startswith(HEARTBEAT_KEY) and (
            self.spec.payload.kind == "heartbeat"
        )


def is_agent_work(spec: JobSpec) -> bool:
    kind = spec.payload.kind
    return kind in ("agentTurn", "heartbeat") or (kind == "systemEvent" and spec.wake_mode == "now")


class CronService:
    def __init__(
        self,
        gateway: Gateway,
        store: CronStore,
        clock: Clock | None = None,
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.clock: Clock = clock or make_clock()
        self.executor = Executor(gateway, lambda: self.clock.now_ms())
        self.jobs: dict[str, Job] = {}
        self.problems: list[str] = []
        self.process_instance_id = str(uuid.uuid4())
        self.revision = 0
        self._running: dict[str, asyncio.Task[None]] = {}
        self._sem: asyncio.Semaphore | None = None
        self._wake: asyncio.Event | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._manual_seq = 0
        self._config_seen: int | None = None
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._side_tasks: set[asyncio.Task[Any]] = set()
        self._jobs_dirty = False
        self._states_dirty = False
        self._flush_handle: asyncio.TimerHandle | None = None
        self._last_sweep_ms: int | None = None
        self._sweep_task: asyncio.Task[int] | None = None
        self.agent_defer_ms = _env_int(DEFER_ENV, DEFAULT_AGENT_DEFER_MS)

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def scheduler_enabled(self) -> bool:
        if os.environ.get(SKIP_ENV, "").strip() not in ("", "0", "false"):
            return False
        return bool(self.gateway.loaded.config.cron.enabled)

    def load(self) -> None:
        loaded = self.store.load()
        self.problems = loaded.problems
        for spec in loaded.specs:
            assert spec.id is not None
            self.jobs[spec.id] = Job(spec, loaded.states.get(spec.id) or JobState())
        self.sync_heartbeats(save=False)

    async def start(self) -> None:
        self._sem = asyncio.Semaphore(MAX_CONCURRENT_RUNS)
        self._wake = asyncio.Event()
        self.load()
        self.recover()
        if not self.scheduler_enabled:
            log.warning(
                "cron: scheduler disabled (cron.enabled is false or %s is set); jobs run only"
                " when started by hand",
                SKIP_ENV,
            )
        self._loop_task = asyncio.create_task(self._loop(), name="cron-timer")

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        tasks = list(self._running.values())
        if tasks:
            # In-flight runs get part of the drain; what is still running keeps its marker
            # on disk and is recorded as interrupted at the next start.
            await asyncio.wait(tasks, timeout=self.gateway.drain_timeout_s * 0.5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Alerts being sent and a session sweep get a short grace; a sweep stopped midway
        # has deleted whole sessions only (the store's delete is one journaled step).
        side = self._side()
        if side:
            await asyncio.wait(side, timeout=self.gateway.drain_timeout_s * 0.25)
            for task in side:
                task.cancel()
            await asyncio.gather(*side, return_exceptions=True)
        self.flush()

    def set_clock(self, clock: Clock) -> None:
        """Swap the clock (tests); the timer re-reads it on its next round."""
        self.clock = clock
        self.wake()

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _side(self) -> list[asyncio.Task[Any]]:
        """Work started by runs but not part of one: alerts being sent, a session sweep."""
        side = [t for t in self._side_tasks if not t.done()]
        if self._sweep_task is not None and not self._sweep_task.done():
            side.append(self._sweep_task)
        return side

    async def wait_idle(self) -> None:
        """Until no run, alert or session sweep is in flight (tests, benchmarks)."""
        while self._running or self._side():
            pending = [*self._running.values(), *self._side()]
            await asyncio.gather(*pending, return_exceptions=True)

    # --- recovery and catch-up (§C.14) -------------------------------------------------------------

    def recover(self) -> None:
        now = self.clock.now_ms()
        for job in list(self.jobs.values()):
            st = job.state
            if st.running_at_ms is not None:
                self._recover_marker(job, now)
            if job.id not in self.jobs:
                continue
            if st.next_run_at_ms is None and job.spec.enabled:
                self._initial_next(job, now, rebuild=True)
        self._catch_up(now)
        self._save_states()
        self._save_jobs()

    def _recover_marker(self, job: Job, now: int) -> None:
        st = job.state
        run_id = st.running_run_id
        entry = self.store.find_run(job.id, run_id) if run_id else None
        if entry is not None:
            # The run finished but its state write was lost: settle it, never run it again.
            result = Execution(
                str(entry.get("status") or "ok"),
                error=entry.get("error"),
                error_reason=entry.get("errorReason"),
            )
            result.delivery.status = str(entry.get("deliveryStatus") or "not-requested")
            self._settle(
                job,
                result,
                run_at=int(entry.get("runAtMs") or st.running_at_ms or now),
                end=int(entry.get("ts") or now),
                manual=str(entry.get("runId", "")).startswith("manual:"),
                replay=True,  # history, not news: no alerts for it
            )
            return
        run_at = st.running_at_ms or now
        log.warning("cron: job %s (%s) was running when the gateway stopped", job.id, job.spec.name)
        self.store.append_run(
            {
                "ts": now,
                "jobId": job.id,
                "action": "finished",
                "status": "error",
                "completionStatus": "failed",
                "error": INTERRUPTED,
                "errorReason": "unknown",
                "runId": run_id or f"cron:{job.id}:{run_at}",
                "runAtMs": run_at,
                "durationMs": max(0, now - run_at),
                "deliveryStatus": "unknown",
                "jobName": job.spec.name,
            }
        )
        slot = st.running_slot_ms
        st.running_at_ms = st.running_run_id = st.running_slot_ms = None
        st.last_run_at_ms = run_at
        st.last_run_status = "error"
        st.last_error = INTERRUPTED
        st.consecutive_errors += 1
        if job.spec.is_one_shot:
            # Runs again through catch-up (counts as one retry).
            st.retries += 1
            st.next_run_at_ms = slot if slot is not None else now
        else:
            self._advance(job, after=max(now, slot or 0))

    def _catch_up(self, now: int) -> None:
        missed = sorted(
            (
                j
                for j in self.jobs.values()
                if j.spec.enabled
                and j.state.next_run_at_ms is not None
                and j.state.next_run_at_ms <= now
            ),
            key=lambda j: j.state.next_run_at_ms or 0,
        )
        if not missed:
            return
        skip_recurring = self.gateway.loaded.config.cron.skip_missed_jobs
        runnable: list[Job] = []
        for job in missed:
            if skip_recurring and not job.spec.is_one_shot:
                log.info("cron: skipping missed run of %s (cron.skipMissedJobs)", job.spec.name)
                missed_at = job.state.next_run_at_ms or now
                self.store.append_run(
                    {
                        "ts": now,
                        "jobId": job.id,
                        "action": "finished",
                        "status": "skipped",
                        "completionStatus": "unknown",
                        "summary": "missed while the gateway was down (cron.skipMissedJobs)",
                        "runAtMs": missed_at,
                        "deliveryStatus": "not-requested",
                        "jobName": job.spec.name,
                    }
                )
                self._advance(job, after=now)
                continue
            runnable.append(job)
        if not runnable:
            return
        immediate = runnable[:CATCHUP_IMMEDIATE]
        log.info(
            "cron: running missed jobs after restart (immediate=%d, deferred=%d, total=%d)",
            len(immediate),
            len(runnable) - len(immediate),
            len(runnable),
        )
        for index, job in enumerate(runnable):
            delay = max(0, index - CATCHUP_IMMEDIATE + 1) * CATCHUP_GAP_MS
            if is_agent_work(job.spec):
                delay += self.agent_defer_ms
            if delay:
                job.state.next_run_at_ms = now + delay

    # --- next-run arithmetic -------------------------------------------------------------------------

    def _initial_next(self, job: Job, now: int, *, rebuild: bool = False) -> None:
        """First slot of a new (or state-less) job, from its schedule and history."""
        st = job.state
        created = job.spec.created_at_ms or now
        last = st.last_run_at_ms
        if rebuild and last is None:
            runs = self.store.runs(job.id)
            if runs:
                last = int(runs[-1].get("runAtMs") or runs[-1].get("ts") or 0) or None
                st.last_run_at_ms = last
        after = last if last is not None else (now if not rebuild else created)
        try:
            st.next_run_at_ms = sched.next_run_ms(
                job.spec.schedule_value(),
                job_id=job.id,
                after_ms=after,
                created_ms=created,
                last_run_ms=last,
            )
        except sched.ScheduleError as exc:
            self._schedule_failed(job, str(exc))

    def _advance(self, job: Job, *, after: int) -> None:
        st = job.state
        try:
            st.next_run_at_ms = sched.next_run_ms(
                job.spec.schedule_value(),
                job_id=job.id,
                after_ms=after,
                created_ms=job.spec.created_at_ms or after,
                last_run_ms=st.last_run_at_ms,
            )
            st.schedule_errors = 0
        except sched.ScheduleError as exc:
            self._schedule_failed(job, str(exc))

    def _schedule_failed(self, job: Job, why: str) -> None:
        st = job.state
        st.schedule_errors += 1
        st.next_run_at_ms = None
        st.last_error = why
        log.error("cron: cannot compute the next run of %s: %s", job.spec.name, why)
        if st.schedule_errors >= SCHEDULE_ERRORS_DISABLE:
            self._disable(job, "schedule-errors")

    def _disable(self, job: Job, reason: str) -> None:
        now = self.clock.now_ms()
        job.spec = job.spec.model_copy(update={"enabled": False, "updated_at_ms": now})
        job.state.next_run_at_ms = None
        job.state.auto_disabled = {
            "reason": reason,
            "atMs": now,
            "consecutiveErrors": max(1, job.state.consecutive_errors),
        }
        self._jobs_dirty = True  # written by whoever persists next (recover, _mark, flush)
        log.warning(
            "cron: job %s (%s) disabled (%s); re-enable with: openclaw cron enable %s",
            job.id,
            job.spec.name,
            reason,
            job.id,
        )

    # --- the timer ---------------------------------------------------------------------------------

    async def _loop(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            try:
                self.sync_heartbeats()
                await self.tick()
            except Exception:
                log.exception("cron: timer round failed")
            await self.clock.wait(self.next_delay_ms(), self._wake)

    def next_wake_ms(self) -> int | None:
        soonest: int | None = None
        for job in self.jobs.values():
            nxt = job.state.next_run_at_ms
            if nxt is not None and job.spec.enabled and job.id not in self._running:
                if soonest is None or nxt < soonest:
                    soonest = nxt
        return soonest

    def next_delay_ms(self) -> int:
        soonest = self.next_wake_ms()
        if soonest is None:
            return MAX_TIMER_DELAY_MS
        return max(0, min(MAX_TIMER_DELAY_MS, soonest - self.clock.now_ms()))

    def due(self, now: int) -> list[Job]:
        out = [
            j
            for j in self.jobs.values()
            if j.spec.enabled
            and j.state.next_run_at_ms is not None
            and j.state.next_run_at_ms <= now
            and j.id not in self._running
        ]
        out.sort(key=lambda j: j.state.next_run_at_ms or 0)
        return out

    async def tick(self) -> list[str]:
        """Fire every due job; returns their run ids (tests drive time through this)."""
        if not self.scheduler_enabled:
            return []
        now = self.clock.now_ms()
        fired = [self._fire(job, now, manual=False) for job in self.due(now)]
        if fired:
            self._save_states()
        self._maybe_sweep(now)
        return fired

    # --- pruning old run sessions (cron.sessionRetention) ------------------------------------------

    def _maybe_sweep(self, now: int) -> None:
        keep_ms = retention.retention_ms(self.gateway.loaded.config.cron)
        if keep_ms is None:
            return
        last = self._last_sweep_ms
        if last is not None and 0 <= now - last < retention.SWEEP_INTERVAL_MS:
            return
        if self._sweep_task is not None and not self._sweep_task.done():
            return
        agents = self.gateway.extensions.get("agents")
        if agents is None:
            return
        self._last_sweep_ms = now
        self._sweep_task = asyncio.create_task(
            retention.sweep(agents, now_ms=now, keep_ms=keep_ms), name="cron-session-sweep"
        )

    def _fire(self, job: Job, now: int, *, manual: bool) -> str:
        if manual:
            self._manual_seq += 1
            run_id = f"manual:{job.id}:{now}:{self._manual_seq}"
        else:
            run_id = f"cron:{job.id}:{now}"
        st = job.state
        st.running_at_ms = now
        st.running_run_id = run_id
        st.running_slot_ms = st.next_run_at_ms
        self._emit({"jobId": job.id, "action": "started", "runAtMs": now})
        task = asyncio.create_task(self._execute(job, run_id, now, manual), name=f"cron:{job.id}")
        self._running[job.id] = task
        return run_id

    def _budget_s(self, spec: JobSpec) -> float | None:
        payload = spec.payload
        if isinstance(payload, AgentTurnPayload) and payload.timeout_seconds is not None:
            # 0 = no scheduler timeout; otherwise the turn's own limit plus cleanup time.
            return None if payload.timeout_seconds == 0 else payload.timeout_seconds + 20
        return AGENT_TURN_BUDGET_S + 20

    async def _execute(self, job: Job, run_id: str, run_at: int, manual: bool) -> None:
        assert self._sem is not None
        result: Execution
        try:
            async with self._sem:
                try:
                    async with asyncio.timeout(self._budget_s(job.spec)):
                        result = await self.executor.run(job.id, job.spec, run_id)
                except TimeoutError:
                    result = Execution("error", error="cron: run timed out", error_reason="timeout")
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.exception("cron: job %s failed", job.id)
                    result = Execution(
                        "error", error=f"{type(exc).__name__}: {exc}", error_reason="unclassified"
                    )
            self._finish(job, run_id, run_at, result, manual)
        except asyncio.CancelledError:
            # Stopping: leave the marker on disk so the next start records the interruption.
            raise
        finally:
            self._running.pop(job.id, None)
            self.wake()

    # --- finishing a run ----------------------------------------------------------------------------

    def _completion(self, job: Job, result: Execution) -> str:
        if result.status == "error":
            return "failed"
        if result.status == "skipped":
            return "unknown"
        d = dlv.effective_delivery(job.spec)
        required = d is not None and d.mode != "none" and not d.best_effort
        if (
            required
            and result.delivery.status == "not-delivered"
            and not (result.delivery.suppression)
        ):
            return "failed"
        return "succeeded"

    def _finish(self, job: Job, run_id: str, run_at: int, result: Execution, manual: bool) -> None:
        end = self.clock.now_ms()
        entry = self._entry(job, run_id, run_at, end, result)
        self.store.append_run(entry)  # before the state: a crash after this never re-runs
        still_here = self.jobs.get(job.id) is job
        if still_here:
            self._settle(job, result, run_at=run_at, end=end, manual=manual)
            self._mark()
        finished: dict[str, Any] = {
            "jobId": job.id,
            "action": "finished",
            **{
                k: entry[k]
                for k in (
                    "status",
                    "error",
                    "summary",
                    "durationMs",
                    "delivered",
                    "deliveryStatus",
                    "runAtMs",
                    "runId",
                )
                if k in entry
            },
        }
        if still_here and job.state.next_run_at_ms is not None:
            finished["nextRunAtMs"] = job.state.next_run_at_ms
        self._emit(finished)

    def _entry(
        self, job: Job, run_id: str, run_at: int, end: int, result: Execution
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "ts": end,
            "jobId": job.id,
            "action": "finished",
            "status": result.status,
            "completionStatus": self._completion(job, result),
            "runId": run_id,
            "runAtMs": run_at,
            "durationMs": max(0, end - run_at),
            "jobName": job.spec.name,
            "deliveryStatus": result.delivery.status,
            "delivered": result.delivery.delivered,
        }
        optional = {
            "error": _scrubbed(result.error),
            "errorReason": result.error_reason if result.status == "error" else None,
            "summary": result.summary,
            "sessionKey": result.session_key,
            "sessionId": result.session_id,
            "model": result.model,
            "provider": result.provider,
            "usage": result.usage,
            "deliveryError": _scrubbed(result.delivery.error),
            "deliverySuppressionReason": result.delivery.suppression,
        }
        entry.update({k: v for k, v in optional.items() if v})
        if result.delivery.intended is not None:
            d: dict[str, Any] = {"intended": result.delivery.intended}
            if result.delivery.resolved is not None:
                d["resolved"] = result.delivery.resolved
            d["delivered"] = result.delivery.delivered
            d["fallbackUsed"] = False
            entry["delivery"] = d
        scrubbed: dict[str, Any] = _scrubbed_deep(entry)
        return scrubbed

    def _settle(
        self,
        job: Job,
        result: Execution,
        *,
        run_at: int,
        end: int,
        manual: bool,
        replay: bool = False,
    ) -> None:
        """State after a run: streaks, next slot, retries, deletion of finished one-shots,
        then the failure alerts the outcome calls for (none when replaying the log)."""
        disabled_before = job.state.auto_disabled is not None
        self._settle_schedule(job, result, run_at=run_at, end=end, manual=manual)
        completion = self._completion(job, result)
        if replay:
            if result.status == "ok" and completion == "succeeded":
                job.state.failure_incident = job.state.last_failure_alert_at_ms = None
            return
        disabled_now = not disabled_before and job.state.auto_disabled is not None
        try:
            self._alerts_after(job, result, completion, run_at, disabled_now)
        except Exception:  # an alert problem must never undo the run's bookkeeping
            log.exception("cron: failure alert for %s could not be prepared", job.id)

    def _settle_schedule(
        self, job: Job, result: Execution, *, run_at: int, end: int, manual: bool
    ) -> None:
        st = job.state
        slot = st.running_slot_ms
        st.running_at_ms = st.running_run_id = st.running_slot_ms = None
        st.last_run_at_ms = run_at
        st.last_run_status = result.status
        st.last_duration_ms = max(0, end - run_at)
        st.last_delivery_status = result.delivery.status
        st.last_delivered = result.delivery.delivered
        st.last_delivery_error = _scrubbed(result.delivery.error)
        st.delivery_suppression_reason = result.delivery.suppression
        if result.status == "ok":
            st.consecutive_errors = st.consecutive_skipped = st.retries = 0
            st.last_error = st.last_error_reason = None
        elif result.status == "error":
            st.consecutive_errors += 1
            st.consecutive_skipped = 0  # an error ends a run of skips
            st.last_error = _scrubbed(result.error)
            st.last_error_reason = result.error_reason
        else:
            st.consecutive_skipped += 1
            st.last_error = _scrubbed(result.error)
        completion = self._completion(job, result)
        if job.spec.is_one_shot:
            self._settle_one_shot(job, result, completion, end)
            return
        if manual and st.next_run_at_ms is not None and result.status != "error":
            return  # a manual run keeps the cadence
        self._advance(job, after=max(end, slot or run_at))
        if result.status == "error":
            if st.consecutive_errors >= AUTO_DISABLE_AFTER:
                self._disable(job, "consecutive-failures")
                return
            backoff = ERROR_BACKOFF_MS[min(st.consecutive_errors, len(ERROR_BACKOFF_MS)) - 1]
            if st.next_run_at_ms is not None:
                st.next_run_at_ms = max(st.next_run_at_ms, end + backoff)
        if st.next_run_at_ms is not None:
            st.next_run_at_ms = max(st.next_run_at_ms, run_at + MIN_REFIRE_GAP_MS)

    def _settle_one_shot(self, job: Job, result: Execution, completion: str, end: int) -> None:
        st = job.state
        if result.status == "ok":
            st.next_run_at_ms = None
            if completion == "succeeded" and job.spec.delete_after_run is not False:
                self._delete(job.id, now=False)
                return
            job.spec = job.spec.model_copy(update={"enabled": False, "updated_at_ms": end})
            self._mark(jobs=True)
            return
        transient = result.status == "skipped" or result.transient
        if transient and st.retries < len(ONE_SHOT_RETRY_MS):
            st.next_run_at_ms = end + ONE_SHOT_RETRY_MS[st.retries]
            st.retries += 1
            return
        st.next_run_at_ms = None
        job.spec = job.spec.model_copy(update={"enabled": False, "updated_at_ms": end})
        self._mark(jobs=True)

    # --- failure alerts (failureAlert, cron.failureAlert) -------------------------------------------

    def _alerts_after(
        self, job: Job, result: Execution, completion: str, run_at: int, disabled_now: bool
    ) -> None:
        cfg = self.gateway.loaded.config
        spec, st = job.spec, job.state
        tz = cfg.agents.defaults.user_timezone
        st.last_failure_notification_delivered = None
        st.last_failure_notification_delivery_status = None
        st.last_failure_notification_delivery_error = None
        if disabled_now:
            # The auto-disable notice replaces the regular alert, whatever failureAlert says.
            route = alerts.safety_route(cfg.cron, spec)
            auto = st.auto_disabled or {}
            text = alerts.disabled_text(
                spec,
                reason=str(auto.get("reason") or "consecutive-failures"),
                count=int(auto.get("consecutiveErrors") or st.consecutive_errors),
                error=st.last_error,
                cause=st.last_error_reason,
            )
            if route is not None:
                self._send_alert(job, alerts.Alert("auto-disabled", text, route, run_at))
            return
        policy = alerts.resolve_policy(cfg.cron, spec)
        if result.status == "ok" and completion == "succeeded":
            alerted = st.failure_incident is not None
            st.failure_incident = st.last_failure_alert_at_ms = None
            if alerted and policy is not None and not alerts.quiet_by_best_effort(spec, policy):
                text = alerts.recovered_text(spec)
                self._send_alert(job, alerts.Alert("recovered", text, policy.route, run_at))
            return
        if policy is None:
            return
        if result.status == "error":
            if st.consecutive_errors < policy.after or alerts.quiet_by_best_effort(spec, policy):
                return
            text = alerts.failure_text(
                spec,
                status="error",
                count=st.consecutive_errors,
                error=result.error,
                reason=result.error_reason,
                run_at_ms=run_at,
                tz_name=tz,
            )
            cause = result.error_reason or result.error
            self._request_alert(job, policy, "error", cause, text, run_at)
        elif result.status == "skipped":
            if not policy.include_skipped or st.consecutive_skipped < policy.after:
                return
            if alerts.quiet_by_best_effort(spec, policy):
                return
            text = alerts.failure_text(
                spec,
                status="skipped",
                count=st.consecutive_skipped,
                error=result.error,
                reason=None,
                run_at_ms=run_at,
                tz_name=tz,
            )
            self._request_alert(job, policy, "skipped", result.error, text, run_at)
        elif completion == "failed" and st.last_delivery_status == "not-delivered":
            # The run worked but its chat could not be reached: tell someone elsewhere at
            # once (no threshold), never through the route that just failed.
            if not policy.alternate:
                return
            text = alerts.delivery_text(spec, st.last_delivery_error, run_at, tz)
            self._request_alert(job, policy, "delivery", st.last_delivery_error, text, run_at)

    def _request_alert(
        self,
        job: Job,
        policy: alerts.Policy,
        status: str,
        cause: str | None,
        text: str,
        run_at: int,
    ) -> None:
        st = job.state
        incident = alerts.incident(status, cause, policy.route)
        if st.failure_incident == incident:
            return  # already alerted for this very failure
        now = self.clock.now_ms()
        last = st.last_failure_alert_at_ms
        if last is not None and last <= now and now - last < policy.cooldown_ms:
            log.info("cron: failure alert for %s held back (cooldown)", job.id)
            return
        st.last_failure_alert_at_ms = now
        st.failure_incident = incident
        kind = "failure" if status == "error" else status
        self._send_alert(job, alerts.Alert(kind, text, policy.route, run_at))

    def _send_alert(self, job: Job, alert: alerts.Alert) -> None:
        st = job.state
        notification = str(uuid.uuid4())
        st.failure_notification_id = notification
        st.last_failure_notification_delivery_status = "unknown"
        task = asyncio.create_task(
            self._deliver_alert(job, alert, notification), name=f"cron-alert:{job.id}"
        )
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _deliver_alert(self, job: Job, alert: alerts.Alert, notification: str) -> None:
        try:
            sent = await alerts.send(
                self.gateway,
                job.spec,
                self.effective_agent(job),
                alert,
                backoff_s=self.executor.send_backoff_s,
            )
        except Exception as exc:  # a bug here must not kill the scheduler's side tasks quietly
            log.exception("cron: failure alert for %s crashed", job.id)
            sent = alerts.Sent("not-delivered", f"{type(exc).__name__}: {exc}")
        if sent.status == "delivered":
            log.info("cron: %s alert for %s sent (%s)", alert.kind, job.id, alert.route.mode)
        else:
            log.warning("cron: %s alert for %s not delivered: %s", alert.kind, job.id, sent.error)
        st = job.state
        if self.jobs.get(job.id) is not job or st.failure_notification_id != notification:
            return  # the job is gone, or a newer alert owns the fields
        st.last_failure_notification_delivered = sent.status == "delivered"
        st.last_failure_notification_delivery_status = sent.status
        st.last_failure_notification_delivery_error = sent.error
        self._mark()

    # --- persistence and events --------------------------------------------------------------------

    def _save_jobs(self) -> None:
        self.revision += 1
        self._jobs_dirty = False
        self.store.save_jobs([j.spec for j in self.jobs.values()])

    def _save_states(self) -> None:
        self._states_dirty = False
        self.store.save_states({i: j.state for i, j in self.jobs.items()})

    def _mark(self, *, jobs: bool = False) -> None:
        """Persist soon, coalescing the writes of runs that end close together.

        Safe to delay: a run's log entry is already on disk, and recovery settles a marker
        whose run id is in the log instead of running it again.
        """
        if jobs:
            self.revision += 1
            self._jobs_dirty = True
        self._states_dirty = True
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(FLUSH_DELAY_S, self.flush)

    def flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._jobs_dirty:
            self._save_jobs()
        if self._states_dirty:
            self._save_states()

    def _delete(self, job_id: str, *, now: bool = True) -> None:
        self.jobs.pop(job_id, None)
        if now:
            self._save_jobs()
            self._save_states()
        else:
            self._mark(jobs=True)
        self._emit({"jobId": job_id, "action": "removed"})

    def on_event(self, listener: Callable[[dict[str, Any]], None]) -> None:
        self._listeners.append(listener)

    def _emit(self, payload: dict[str, Any]) -> None:
        self.gateway.broadcast("cron", payload)
        for listener in self._listeners:
            listener(payload)

    # --- reads ---------------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def effective_agent(self, job: Job) -> str:
        return dlv.default_agent(self.gateway, job.spec)

    def view(self, job: Job) -> dict[str, Any]:
        out = job.spec.wire()
        state = job.state.wire()
        out["state"] = state
        out.update(mirrors(state))
        return out

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "enabled": self.scheduler_enabled,
            "triggersEnabled": False,
            "storePath": str(self.store.jobs_path),
            "jobs": len(self.jobs),
        }
        nxt = self.next_wake_ms()
        if nxt is not None and self.scheduler_enabled:
            out["nextWakeAtMs"] = nxt
        return out

    # --- mutations -----------------------------------------------------------------------------------

    def _normalise(self, data: dict[str, Any], now: int, *, creating: bool) -> JobSpec:
        for key in ("agentId", "sessionKey"):
            if key in data and data[key] is None:
                del data[key]
        try:
            spec = parse_spec(data)
        except ValidationError as exc:
            raise CronError(describe(exc)) from exc
        kind = spec.payload.kind
        if kind in ("heartbeat", "skillCollectionReview"):
            raise CronError(f"payload kind {kind!r} is system-owned and cannot be created")
        if kind in ("command", "script"):
            raise CronError(
                f"{kind} payloads are not supported: this gateway has no exec policy for"
                " scheduled commands (use an agentTurn)"
            )
        if spec.schedule.kind in ("on-exit", "stream"):
            raise CronError(f"schedule kind {spec.schedule.kind!r} is not supported")
        if spec.pacing is not None or spec.trigger is not None:
            raise CronError("pacing and trigger scripts are not supported by this gateway")
        agent = spec.agent_id or rv.default_agent_id(self.gateway.loaded.config)
        if agent not in rv.roster(self.gateway.loaded.config).agent_ids:
            raise CronError(f"unknown agent {agent!r}")
        if spec.session_target == "main" and agent != rv.default_agent_id(
            self.gateway.loaded.config
        ):
            raise CronError('sessionTarget "main" is only valid for the default agent')
        try:
            sched.validate(spec.schedule_value(), now)
        except sched.ScheduleError as exc:
            raise CronError(str(exc)) from exc
        updates: dict[str, Any] = {}
        if isinstance(spec.schedule, AtSchedule):
            at_ms = sched.parse_at_ms(spec.schedule.at)
            updates["schedule"] = AtSchedule(kind="at", at=sched.iso(at_ms))
            if creating and spec.delete_after_run is None:
                updates["delete_after_run"] = True
        if (
            creating
            and isinstance(spec.schedule, CronSchedule)
            and spec.schedule.stagger_ms is None
            and sched.is_top_of_hour(spec.schedule.expr)
        ):
            updates["schedule"] = spec.schedule.model_copy(
                update={"stagger_ms": sched.DEFAULT_STAGGER_MS}
            )
        if updates:
            spec = spec.model_copy(update=updates)
        try:
            dlv.check(self.gateway, spec, agent)
            alerts.check(self.gateway, spec)
        except (dlv.DeliveryConfigError, alerts.AlertRouteError) as exc:
            raise CronError(str(exc)) from exc
        return spec

    def add(self, data: dict[str, Any]) -> tuple[Job, bool]:
        """Create (or, for a known `declarationKey`, update) a job; returns (job, created)."""
        now = self.clock.now_ms()
        key = data.get("declarationKey")
        if isinstance(key, str):
            if key.startswith(HEARTBEAT_KEY):
                raise CronError(f"declarationKey {key!r} is reserved for heartbeats")
            for job in self.jobs.values():
                if job.spec.declaration_key == key:
                    patch = {k: v for k, v in data.items() if k != "declarationKey"}
                    return self.update(job.id, patch), False
        data = dict(data)
        data.update({"id": str(uuid.uuid4()), "createdAtMs": now, "updatedAtMs": now})
        data.setdefault("scheduledToolPolicy", {"version": 1, "mode": "trusted"})
        spec = self._normalise(data, now, creating=True)
        spec = spec.model_copy(update={"config_revision": spec.revision()})
        job = Job(spec, JobState())
        if spec.enabled:
            job.state.schedule_activated_at_ms = now
            self._initial_next(job, now)
        self.jobs[job.id] = job
        self._save_jobs()
        self._save_states()
        log.info("cron: job added %s (%s)", job.id, spec.name)
        self._emit({"jobId": job.id, "action": "added", "job": self.view(job)})
        self.wake()
        return job, True

    def update(
        self, job_id: str, patch: dict[str, Any], expected_revision: str | None = None
    ) -> Job:
        job = self.get(job_id)
        if job.system:
            raise CronError(
                "heartbeat rows are owned by the config (agents.defaults.heartbeat); edit it there"
            )
        if expected_revision is not None and expected_revision != job.spec.config_revision:
            raise CronError(
                f"config revision mismatch: expected {expected_revision}, job has"
                f" {job.spec.config_revision}"
            )
        now = self.clock.now_ms()
        patch = dict(patch)
        state_patch = patch.pop("state", None)
        for key in ("id", "createdAtMs", "updatedAtMs", "configRevision", "declarationKey"):
            patch.pop(key, None)
        merged = merge_patch(job.spec.wire(), patch)
        merged["updatedAtMs"] = now
        spec = self._normalise(merged, now, creating=False)
        schedule_changed = spec.schedule != job.spec.schedule
        if schedule_changed and isinstance(spec.schedule, EverySchedule):
            if "anchorMs" not in (patch.get("schedule") or {}):
                spec = spec.model_copy(
                    update={"schedule": spec.schedule.model_copy(update={"anchor_ms": now})}
                )
        spec = spec.model_copy(update={"config_revision": spec.revision()})
        was_enabled = job.spec.enabled
        job.spec = spec
        st = job.state
        if isinstance(state_patch, dict) and "nextRunAtMs" in state_patch:
            value = state_patch["nextRunAtMs"]
            st.next_run_at_ms = int(value) if isinstance(value, int) else None
        elif not spec.enabled:
            st.next_run_at_ms = None
        elif not was_enabled or schedule_changed:
            if not was_enabled:
                st.auto_disabled = None
                st.consecutive_errors = st.consecutive_skipped = st.retries = 0
                st.schedule_errors = 0
            st.schedule_activated_at_ms = now
            if spec.is_one_shot and schedule_changed:
                st.last_run_at_ms = None
            self._initial_next(job, now)
        self._save_jobs()
        self._save_states()
        self._emit({"jobId": job.id, "action": "updated", "job": self.view(job)})
        self.wake()
        return job

    def remove(self, job_id: str) -> None:
        job = self.get(job_id)
        if job.system:
            raise CronError(
                "heartbeat rows are owned by the config (agents.defaults.heartbeat); set"
                ' heartbeat.every to "0m" to stop it'
            )
        self._delete(job_id)
        self.wake()

    def run(self, job_id: str, mode: str = "force") -> dict[str, Any]:
        job = self.get(job_id)
        base = {"ok": True, "processInstanceId": self.process_instance_id}
        if job.id in self._running:
            return {**base, "ran": False, "reason": "already-running"}
        now = self.clock.now_ms()
        if mode in ("due", "if-enabled") and not job.spec.enabled:
            return {**base, "ran": False, "reason": "disabled"}
        if mode == "due":
            nxt = job.state.next_run_at_ms
            if nxt is None or nxt > now:
                return {**base, "ran": False, "reason": "not-due"}
        if self._sem is None:
            return {**base, "ran": False, "reason": "stopped"}
        run_id = self._fire(job, now, manual=mode != "due")
        self._save_states()
        return {**base, "enqueued": True, "runId": run_id}

    async def system_wake(
        self, text: str, mode: str, session_key: str | None, agent_id: str | None
    ) -> dict[str, Any]:
        """`wake`: queue a system event; `now` also runs the agent's heartbeat (or a turn)."""
        cfg = self.gateway.loaded.config
        agent = agent_id or rv.default_agent_id(cfg)
        key = canonical_session_key(session_key or "main", agent)
        beat = next(
            (
                j
                for j in self.jobs.values()
                if j.system and j.spec.declaration_key == HEARTBEAT_KEY + agent
            ),
            None,
        )
        if mode != "now" or beat is not None:
            self.executor.events.add(key, text, self.clock.now_ms())
            if mode == "now" and beat is not None and beat.id not in self._running:
                self._fire(beat, self.clock.now_ms(), manual=True)
            return {"ok": True}
        spec = JobSpec.model_validate(
            {
                "name": "wake",
                "agentId": agent,
                "sessionKey": key,
                "schedule": {"kind": "at", "at": sched.iso(self.clock.now_ms())},
                "sessionTarget": "main",
                "wakeMode": "now",
                "payload": {"kind": "systemEvent", "text": text},
            }
        )
        task = asyncio.create_task(self.executor.run("wake", spec, f"wake:{uuid.uuid4()}"))
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)
        return {"ok": True}

    # --- heartbeat rows (§C.19) --------------------------------------------------------------------

    def sync_heartbeats(self, *, save: bool = True) -> None:
        """Make the heartbeat rows match the config (at start and after a reload)."""
        cfg = self.gateway.loaded.config
        if self._config_seen == id(cfg):
            return
        self._config_seen = id(cfg)
        try:
            wanted = {
                s.agent_id: s
                for s in hb.settings(cfg, list(rv.roster(cfg).agent_ids))
                if s.every_ms > 0
            }
        except sched.ScheduleError as exc:
            log.error("cron: heartbeat config ignored: %s", exc)
            wanted = {}
        now = self.clock.now_ms()
        changed = False
        for job in list(self.jobs.values()):
            if job.system:
                agent = (job.spec.declaration_key or "")[len(HEARTBEAT_KEY) :]
                if agent not in wanted:
                    self.jobs.pop(job.id)
                    changed = True
        for agent, beat in wanted.items():
            key = HEARTBEAT_KEY + agent
            existing = next((j for j in self.jobs.values() if j.spec.declaration_key == key), None)
            if existing is not None and isinstance(existing.spec.schedule, EverySchedule):
                if existing.spec.schedule.every_ms == beat.every_ms:
                    continue
                self.jobs.pop(existing.id)
            spec = JobSpec.model_validate(
                {
                    "id": existing.id if existing is not None else str(uuid.uuid4()),
                    "name": f"heartbeat-{agent}",
                    "displayName": f"Heartbeat ({agent})",
                    "declarationKey": key,
                    "agentId": agent,
                    "enabled": True,
                    "createdAtMs": now,
                    "updatedAtMs": now,
                    "schedule": {"kind": "every", "everyMs": beat.every_ms, "anchorMs": now},
                    "sessionTarget": "main",
                    "wakeMode": "next-heartbeat",
                    "payload": {"kind": "heartbeat"},
                }
            )
            job = Job(spec, JobState(schedule_activated_at_ms=now))
            self._initial_next(job, now)
            self.jobs[job.id] = job
            changed = True
        if changed and save:
            self._save_jobs()
            self._save_states()


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


def attach(gateway: Gateway) -> CronService:
    """Create the scheduler, expose it as `gateway.extensions["cron"]`, add its Service."""
    from gateway.runtime import Service

    svc = CronService(gateway, CronStore(gateway.settings.state_dir))
    gateway.extensions["cron"] = svc
    gateway.services.append(Service("cron", svc.start, svc.stop))
    return svc


def _scrubbed_deep(value: Any) -> Any:
    """Every string in a run-log entry scrubbed (errors nest in the delivery details too)."""
    if isinstance(value, str):
        return scrubber.scrub(value)
    if isinstance(value, dict):
        return {k: _scrubbed_deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed_deep(v) for v in value]
    return value


def _scrubbed(error: str | None) -> str | None:
    """An error as the job's state and run log keep it: `cron.get`/`cron.runs` show both, and a
    channel's or provider's error can echo a token back."""
    return scrubber.scrub(error) if error else error

"""One model turn across a candidate chain: same-model retries, cooldowns, fallback.

The order inside a turn (agents.md §9): retry the same model while the failure is transient,
then move to the next candidate; auth/billing/not-found move on at once; a request the
provider rejects as such (context overflow, bad request, content filter) never falls back;
nothing is retried or re-asked once text has reached the user. Cooldowns are per model and
persisted, so a restart does not hammer a model that just failed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from providers.classify import COOLDOWN, RETRYABLE, TERMINAL, Failure, classify
from providers.types import Completion, Provider, StreamEvent, TextDelta, TurnRequest

log_retry = logging.getLogger("agent/embedded")
log_decision = logging.getLogger("model-fallback/decision")
log_summary = logging.getLogger("model-fallback")


@dataclass(frozen=True)
class RetryPolicy:
    """Timing of retries and cooldowns; the defaults mirror the reference's observed ones."""

    rate_limit_attempts: int = 10  # attempts in all, on one model, for rate limits
    transient_attempts: int = 9  # overloaded / server / timeout
    outage_window_s: float = 90.0  # stop retrying a transient failure after this long
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    retry_after_cap_s: float = 60.0
    cooldown_ladder_s: tuple[float, ...] = (30.0, 60.0, 300.0)
    billing_disable_s: float = 600.0
    failure_window_s: float = 3600.0  # error counts older than this start the ladder again
    # Fast fallback: with a healthy fallback waiting (not cooling down, credentials present),
    # a transient failure gets only this many attempts on the failing model, and no wait that
    # would end past fast_window_s after its first failure (Retry-After included).
    fast_attempts: int = 2
    fast_window_s: float = 5.0
    # With a healthy fallback waiting, a model that has sent nothing at all after this long
    # (connection accepted, then silence) counts as a timeout, so the fallback can answer
    # instead of the provider's own 300 s timeout. 0 turns it off.
    first_event_timeout_s: float = 15.0

    def scaled(self, factor: float) -> RetryPolicy:
        """Every duration multiplied by `factor` (tests and tuning; counts unchanged)."""
        return replace(
            self,
            outage_window_s=self.outage_window_s * factor,
            base_delay_s=self.base_delay_s * factor,
            max_delay_s=self.max_delay_s * factor,
            retry_after_cap_s=self.retry_after_cap_s * factor,
            cooldown_ladder_s=tuple(s * factor for s in self.cooldown_ladder_s),
            billing_disable_s=self.billing_disable_s * factor,
            failure_window_s=self.failure_window_s * factor,
            fast_window_s=self.fast_window_s * factor,
            # first_event_timeout_s stays: it is a limit on a silent model, not a wait of ours,
            # and a scaled-down one would cut off healthy answers on a busy machine.
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> RetryPolicy:
        # CLAWGATE_FAILOVER_TIME_SCALE shrinks every wait at once (0.01 turns 30 s into 0.3 s);
        # CLAWGATE_FAST_FALLBACK_ATTEMPTS / _SECONDS set the fast-fallback budget (0 attempts
        # turns fast fallback off: the long same-model budget always applies).
        base = cls(
            fast_attempts=int(_number(env, "CLAWGATE_FAST_FALLBACK_ATTEMPTS", cls.fast_attempts)),
            fast_window_s=_number(env, "CLAWGATE_FAST_FALLBACK_SECONDS", cls.fast_window_s),
            first_event_timeout_s=_number(
                env, "CLAWGATE_FIRST_RESPONSE_TIMEOUT_SECONDS", cls.first_event_timeout_s
            ),
        )
        factor = _number(env, "CLAWGATE_FAILOVER_TIME_SCALE", 1.0)
        return base.scaled(factor) if factor > 0 and factor != 1.0 else base

    def max_attempts(self, failure: Failure, fast: bool = False) -> int:
        if not failure.retryable:
            return 1
        if fast and self.fast_attempts > 0:  # 0: fast fallback off
            return self.fast_attempts
        return (
            self.rate_limit_attempts if failure.reason == "rate_limit" else self.transient_attempts
        )

    def delay(self, retry: int, failure: Failure, rand: Callable[[], float]) -> float:
        """Delay before retry number `retry` (1-based): jittered exponential, Retry-After a floor."""
        exponential = min(self.max_delay_s, self.base_delay_s * 2 ** (retry - 1))
        jittered = exponential * (0.8 + 0.4 * rand())
        floor = min(failure.retry_after_s or 0.0, self.retry_after_cap_s)
        return float(max(min(jittered, self.max_delay_s), floor))


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    """A non-negative number from the environment; a bad value keeps the default (logged)."""
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0 or value != value:
        logging.getLogger("model-fallback").warning("ignoring %s=%r: not a number >= 0", name, raw)
        return default
    return value


# --- cooldowns ----------------------------------------------------------------------------------


@dataclass
class _Health:
    error_count: int = 0
    last_failure_at: float = 0.0
    cooldown_until: float = 0.0
    disabled_until: float = 0.0
    disabled_reason: str | None = None
    last_used: float = 0.0


class ModelHealth:
    """Per-model cooldown state, persisted as JSON (written atomically) when given a path."""

    def __init__(
        self,
        path: Path | None,
        policy: RetryPolicy,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.policy = policy
        self.clock = clock
        self._state: dict[str, _Health] = self._load()

    def _load(self) -> dict[str, _Health]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            raw = json.loads(self.path.read_text())
            return {
                ref: _Health(
                    error_count=int(v.get("errorCount", 0)),
                    last_failure_at=float(v.get("lastFailureAt", 0)) / 1000,
                    cooldown_until=float(v.get("cooldownUntil", 0)) / 1000,
                    disabled_until=float(v.get("disabledUntil", 0)) / 1000,
                    disabled_reason=v.get("disabledReason"),
                    last_used=float(v.get("lastUsed", 0)) / 1000,
                )
                for ref, v in raw.items()
                if isinstance(v, dict)
            }
        except (OSError, ValueError, TypeError, AttributeError):
            # A damaged file only loses cooldown hints; it must not stop any turn.
            logging.getLogger("model-fallback").warning(
                "ignoring unreadable model cooldown file %s", self.path
            )
            return {}

    def _save(self) -> None:
        if self.path is None:
            return
        data = {
            ref: {
                "errorCount": h.error_count,
                "lastFailureAt": int(h.last_failure_at * 1000),
                "cooldownUntil": int(h.cooldown_until * 1000),
                "disabledUntil": int(h.disabled_until * 1000),
                "disabledReason": h.disabled_reason,
                "lastUsed": int(h.last_used * 1000),
            }
            for ref, h in self._state.items()
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=2))
            os.replace(tmp, self.path)
        except OSError as exc:
            logging.getLogger("model-fallback").warning("could not save model cooldowns: %s", exc)

    def remaining(self, ref: str) -> float:
        """Seconds until `ref` may be tried again (0 = available now)."""
        h = self._state.get(ref)
        if h is None:
            return 0.0
        return max(0.0, max(h.cooldown_until, h.disabled_until) - self.clock())

    def record_failure(self, ref: str, failure: Failure) -> float:
        """Put `ref` on its cooldown ladder; returns the cooldown in seconds (0 = none)."""
        now = self.clock()
        h = self._state.setdefault(ref, _Health())
        if failure.reason == "billing":
            h.disabled_until = now + self.policy.billing_disable_s
            h.disabled_reason = "billing"
            h.last_failure_at = now
            self._save()
            return self.policy.billing_disable_s
        if failure.reason not in COOLDOWN:
            return 0.0
        if now - h.last_failure_at > self.policy.failure_window_s:
            h.error_count = 0
        h.error_count += 1
        h.last_failure_at = now
        ladder = self.policy.cooldown_ladder_s
        seconds = ladder[min(h.error_count, len(ladder)) - 1]
        h.cooldown_until = now + seconds
        self._save()
        return seconds

    def record_success(self, ref: str) -> None:
        h = self._state.get(ref)
        if h is None:
            h = self._state[ref] = _Health()
        elif h.error_count == 0 and not h.disabled_until:
            h.last_used = self.clock()
            return  # nothing worth a disk write
        self._state[ref] = _Health(last_used=self.clock())
        self._save()


# --- the turn -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    candidate: str
    failure: Failure
    tries: int


@dataclass
class TurnResult:
    completion: Completion | None
    candidate: str | None
    attempts: list[Attempt] = field(default_factory=list)
    failure: Failure | None = None  # set when no candidate answered
    streamed: bool = False  # text reached the sink before the end
    api: str | None = None  # the API the answering candidate spoke


ProviderFor = Callable[[str], Provider]  # provider id -> provider (may raise MissingCredentials)


def describe(failure: Failure) -> str:
    status = f"{failure.status}: " if failure.status else ""
    return f"{status}{failure.preview or failure.reason}"


async def run_turn(
    candidates: Sequence[str],
    request: TurnRequest,
    provider_for: ProviderFor,
    sink: Callable[[str], None],
    *,
    health: ModelHealth,
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    rand: Callable[[], float] = random.random,
    run_id: str = "-",
) -> TurnResult:
    """Answer `request` with the first candidate (`provider/model`) that can."""
    requested = candidates[0]
    result = TurnResult(completion=None, candidate=None)
    waits = {ref: health.remaining(ref) for ref in candidates}
    # When every candidate is cooling down, probe the one that frees up first, once.
    probe = min(candidates, key=lambda r: waits[r]) if all(waits.values()) else None

    for index, ref in enumerate(candidates):
        following = candidates[index + 1] if index + 1 < len(candidates) else "none"
        if waits[ref] and ref != probe:
            failure = Failure("cooldown", preview=f"cooling down for {waits[ref]:.0f}s")
            result.attempts.append(Attempt(ref, failure, 0))
            log_decision.info(
                "model fallback decision: decision=skip_cooldown requested=%s candidate=%s"
                " cooldownMs=%d next=%s",
                requested,
                ref,
                int(waits[ref] * 1000),
                following,
            )
            continue
        later = candidates[index + 1 :]

        def fallback_ready(later: Sequence[str] = later) -> bool:
            return any(not waits[r] and _usable(r, provider_for) for r in later)

        outcome, tries = await _try_candidate(
            ref, request, provider_for, sink, result, policy, sleep, monotonic, rand, ref == probe,
            fallback_ready,
        )  # fmt: skip
        if outcome is None:
            health.record_success(ref)
            result.candidate = ref
            if index > 0 or result.attempts:
                log_decision.info(
                    "model fallback decision: decision=candidate_succeeded requested=%s"
                    " candidate=%s next=none",
                    requested,
                    ref,
                )
            return result
        failure = outcome
        result.attempts.append(Attempt(ref, failure, tries))
        health.record_failure(ref, failure)
        stop = result.streamed or failure.reason in TERMINAL
        log_decision.warning(
            "model fallback decision: decision=%s requested=%s candidate=%s reason=%s"
            " status=%s providerErrorType=%s attempts=%d next=%s",
            "candidate_failed" if not stop else "terminal",
            requested,
            ref,
            failure.reason,
            failure.status if failure.status else "-",
            failure.error_type or "-",
            tries,
            "none" if stop else following,
        )
        if stop:
            # Text already shown, or the request itself is the problem: no other model.
            result.failure = failure
            return result

    tried = [a for a in result.attempts if a.tries > 0]
    last = tried[-1].failure if tried else result.attempts[-1].failure
    result.failure = last
    log_summary.error(
        "All models failed (%d): %s (run %s)",
        len(result.attempts),
        " | ".join(
            f"{a.candidate}: {describe(a.failure)} ({a.failure.reason})" for a in result.attempts
        ),
        run_id,
    )
    return result


class _FirstEventTimeout(Exception):
    """The model sent nothing within the first-event wait."""


async def _next_event(events: AsyncIterator[StreamEvent], wait: float | None) -> StreamEvent:
    if wait is None:
        return await events.__anext__()
    try:
        return await asyncio.wait_for(events.__anext__(), wait)
    except TimeoutError as exc:
        raise _FirstEventTimeout() from exc


def _usable(ref: str, provider_for: ProviderFor) -> bool:
    """Whether `ref`'s provider is set up (credentials resolve and a client builds)."""
    try:
        provider_for(ref.partition("/")[0])
    except Exception:  # MissingCredentials, a bad setting: not a fallback to count on
        return False
    return True


async def _try_candidate(
    ref: str,
    request: TurnRequest,
    provider_for: ProviderFor,
    sink: Callable[[str], None],
    result: TurnResult,
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[Any]],
    monotonic: Callable[[], float],
    rand: Callable[[], float],
    probe: bool,
    fallback_ready: Callable[[], bool],
) -> tuple[Failure | None, int]:
    """(None, tries) on success (result.completion set), else (failure, tries)."""
    provider_id, _, model = ref.partition("/")
    tries = 0
    first_failure_at: float | None = None
    fast: bool | None = None  # a healthy fallback is waiting: retry briefly (asked once)
    while True:
        tries += 1
        if fast is None and policy.first_event_timeout_s > 0:
            fast = policy.fast_attempts > 0 and fallback_ready()
        first_wait = policy.first_event_timeout_s if fast else None
        try:
            provider = provider_for(provider_id)
            events = provider.stream(replace(request, model=model)).__aiter__()
            try:
                while True:
                    try:
                        event = await _next_event(events, first_wait)
                    except StopAsyncIteration:
                        break
                    first_wait = None  # the model answered: its own pace from here on
                    if isinstance(event, TextDelta):
                        result.streamed = True
                        sink(event.text)
                    else:
                        result.completion = event
            finally:
                aclose = getattr(events, "aclose", None)
                if aclose is not None:
                    await aclose()
            if result.completion is not None:
                result.api = provider.settings.api
                return None, tries
            failure = Failure("empty", preview="stream ended without a final message")
        except asyncio.CancelledError:
            raise
        except _FirstEventTimeout:
            failure = Failure(
                "timeout", preview=f"no response within {policy.first_event_timeout_s:g}s"
            )
        except Exception as exc:  # every provider failure goes through classify()
            failure = classify(exc)
        now = monotonic()
        first_failure_at = now if first_failure_at is None else first_failure_at
        if probe or result.streamed or failure.reason not in RETRYABLE:
            return failure, tries
        fast = (policy.fast_attempts > 0 and fallback_ready()) if fast is None else fast
        delay = policy.delay(tries, failure, rand)
        elapsed = now - first_failure_at
        if (
            tries >= policy.max_attempts(failure, fast)
            or (fast and elapsed + delay > policy.fast_window_s)
            or (not fast and failure.reason != "rate_limit" and elapsed >= policy.outage_window_s)
        ):
            return failure, tries
        log_retry.warning(
            "transient same-model retry %d/%d for %s reason=%s: delayMs=%d",
            tries,
            policy.max_attempts(failure, fast) - 1,
            ref,
            failure.reason,
            int(delay * 1000),
        )
        await sleep(delay)

"""The retry budget: brief when a healthy fallback waits, the long one otherwise.

run_turn with the real SDKs against the fakes, on a virtual clock: the waits it asks for are
recorded instead of slept, so the reference's 90 s budget is checked exactly, in milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from providers.classify import Failure
from providers.endpoints import provider_settings
from providers.failover import ModelHealth, RetryPolicy, TurnResult, run_turn
from providers.pool import ProviderPool
from providers.types import Message, ProviderSettings, TurnRequest
from tests.fakes.gemini import FakeGemini
from tests.fakes.llm import FakeLLM

PRIMARY, FALLBACK = "anthropic/claude-test", "google/gemini-test"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def turn(
    anthropic: FakeLLM,
    gemini: FakeGemini,
    candidates: tuple[str, ...],
    *,
    gemini_key: str | None = "AIza-test",
    health: ModelHealth | None = None,
    policy: RetryPolicy | None = None,
) -> tuple[TurnResult, Clock]:
    urls = {"anthropic": anthropic.url, "google": gemini.url + "/v1beta"}
    keys: Mapping[str, str | None] = {"anthropic": "sk-ant-test", "google": gemini_key}

    def settings_for(provider: str) -> ProviderSettings:
        return provider_settings(
            provider, api=None, base_url=urls[provider], api_key=keys[provider],
            timeout_s=5, env={},
        )  # fmt: skip

    pool = ProviderPool(settings_for)
    clock = Clock()
    policy = policy or RetryPolicy()
    try:
        result = await run_turn(
            candidates,
            TurnRequest(model="", messages=(Message.text("user", "hi"),)),
            pool.get,
            lambda _text: None,
            health=health or ModelHealth(None, policy),
            policy=policy,
            sleep=clock.sleep,
            monotonic=clock.monotonic,
            rand=lambda: 0.5,  # no jitter: delays are exactly 1, 2, 4, ... s
        )
    finally:
        await pool.close()
    return result, clock


async def test_healthy_fallback_gets_the_turn_after_one_quick_retry(
    anthropic_fake: FakeLLM, gemini_fake: FakeGemini
) -> None:
    anthropic_fake.script += [{"status": 529}] * 20
    result, clock = await turn(anthropic_fake, gemini_fake, (PRIMARY, FALLBACK))
    assert result.candidate == FALLBACK and result.completion is not None
    assert result.completion.text == "from gemini"
    assert len(anthropic_fake.requests) == 2 and clock.waits == [1.0]


async def test_no_usable_fallback_keeps_the_long_budget(
    anthropic_fake: FakeLLM, gemini_fake: FakeGemini
) -> None:
    anthropic_fake.script += [{"status": 529}] * 20
    # The fallback has no key: counting on it would fail the user in a second.
    result, clock = await turn(anthropic_fake, gemini_fake, (PRIMARY, FALLBACK), gemini_key=None)
    assert result.completion is None
    # 8 attempts: the waits 1+2+4+8+16+30+30 s pass the 90 s outage window at the 8th.
    assert len(anthropic_fake.requests) == 8
    assert clock.waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert gemini_fake.requests == []
    assert [a.failure.reason for a in result.attempts] == ["overloaded", "auth"]


async def test_fast_fallback_off_is_the_reference_budget(
    anthropic_fake: FakeLLM, gemini_fake: FakeGemini
) -> None:
    anthropic_fake.script += [{"status": 529}] * 20
    policy = RetryPolicy.from_env({"CLAWGATE_FAST_FALLBACK_ATTEMPTS": "0"})
    result, clock = await turn(anthropic_fake, gemini_fake, (PRIMARY, FALLBACK), policy=policy)
    assert result.candidate == FALLBACK
    assert len(anthropic_fake.requests) == 8 and sum(clock.waits) == 91.0


async def test_strict_chain_and_cooling_fallback_keep_the_long_budget(
    anthropic_fake: FakeLLM, gemini_fake: FakeGemini
) -> None:
    anthropic_fake.script += [{"status": 503}] * 3 + [{"text": "third time lucky"}]
    result, clock = await turn(anthropic_fake, gemini_fake, (PRIMARY,))
    assert result.completion is not None and result.completion.text == "third time lucky"
    assert clock.waits == [1.0, 2.0, 4.0]

    policy = RetryPolicy()
    health = ModelHealth(None, policy)
    health.record_failure(FALLBACK, Failure("overloaded"))  # cooling down for 30 s
    anthropic_fake.script += [{"status": 529}] * 3 + [{"text": "primary again"}]
    result, clock = await turn(
        anthropic_fake, gemini_fake, (PRIMARY, FALLBACK), health=health, policy=policy
    )
    assert result.candidate == PRIMARY and clock.waits == [1.0, 2.0, 4.0]
    assert gemini_fake.requests == []


async def test_long_retry_after_goes_straight_to_a_healthy_fallback(
    anthropic_fake: FakeLLM, gemini_fake: FakeGemini
) -> None:
    anthropic_fake.script.append({"status": 429, "headers": {"retry-after": "20"}})
    result, clock = await turn(anthropic_fake, gemini_fake, (PRIMARY, FALLBACK))
    assert result.candidate == FALLBACK
    assert len(anthropic_fake.requests) == 1 and clock.waits == []
    # Without a fallback the same answer is a 20 s wait, then the retry.
    anthropic_fake.script += [{"status": 429, "headers": {"retry-after": "20"}}, {"text": "ok"}]
    result, clock = await turn(anthropic_fake, gemini_fake, (PRIMARY,))
    assert result.candidate == PRIMARY and clock.waits == [20.0]


async def test_the_primary_comes_back_after_its_cooldown(
    anthropic_fake: FakeLLM, gemini_fake: FakeGemini
) -> None:
    wall = [1000.0]
    policy = RetryPolicy()
    health = ModelHealth(None, policy, clock=lambda: wall[0])
    anthropic_fake.script += [{"status": 529}] * 2
    first, _ = await turn(anthropic_fake, gemini_fake, (PRIMARY, FALLBACK), health=health)
    assert first.candidate == FALLBACK and health.remaining(PRIMARY) == 30.0
    second, _ = await turn(anthropic_fake, gemini_fake, (PRIMARY, FALLBACK), health=health)
    assert second.candidate == FALLBACK and len(anthropic_fake.requests) == 2  # skipped
    wall[0] += 31
    third, _ = await turn(anthropic_fake, gemini_fake, (PRIMARY, FALLBACK), health=health)
    assert third.candidate == PRIMARY and third.completion is not None
    assert third.completion.text == "from anthropic"


@pytest.mark.parametrize(
    ("env", "attempts", "window"),
    [
        ({}, 2, 5.0),
        ({"CLAWGATE_FAST_FALLBACK_ATTEMPTS": "1"}, 1, 5.0),
        ({"CLAWGATE_FAST_FALLBACK_ATTEMPTS": "0"}, 0, 5.0),
        ({"CLAWGATE_FAST_FALLBACK_SECONDS": "12"}, 2, 12.0),
        ({"CLAWGATE_FAST_FALLBACK_SECONDS": "soon"}, 2, 5.0),
        ({"CLAWGATE_FAILOVER_TIME_SCALE": "0.5"}, 2, 2.5),
    ],
)
def test_budget_from_the_environment(env: dict[str, str], attempts: int, window: float) -> None:
    policy = RetryPolicy.from_env(env)
    assert (policy.fast_attempts, policy.fast_window_s) == (attempts, window)
    overloaded = Failure("overloaded")
    expected = attempts or policy.transient_attempts  # 0 turns fast fallback off
    assert policy.max_attempts(overloaded, fast=True) == expected
    assert policy.max_attempts(overloaded, fast=False) == policy.transient_attempts


async def test_a_silent_primary_hands_over_to_a_healthy_fallback(
    anthropic_fake: FakeLLM, gemini_fake: FakeGemini
) -> None:
    # Connection accepted, then nothing: without a first-event limit the user would wait for
    # the provider's own timeout (300 s by default) before the fallback got a chance.
    anthropic_fake.script += [{"delay": 30, "text": "too late"}] * 2
    policy = RetryPolicy(first_event_timeout_s=0.3)
    result, _ = await turn(anthropic_fake, gemini_fake, (PRIMARY, FALLBACK), policy=policy)
    assert result.candidate == FALLBACK and result.completion is not None
    assert result.attempts[0].failure.reason == "timeout"
    assert "no response within 0.3s" in result.attempts[0].failure.preview
    # Alone in its chain, the same model is given its own (provider) timeout: no early cut.
    anthropic_fake.script.append({"delay": 0.5, "text": "slow but fine"})
    result, _ = await turn(anthropic_fake, gemini_fake, (PRIMARY,), policy=policy)
    assert result.completion is not None and result.completion.text == "slow but fine"

"""Retry timing and per-model cooldowns as pure functions of an injected clock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from providers.classify import Failure
from providers.endpoints import normalize_base_url, provider_settings
from providers.failover import ModelHealth, RetryPolicy
from providers.types import MissingCredentials


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_is_exponential_jittered_and_capped() -> None:
    policy = RetryPolicy()
    failure = Failure("overloaded")
    low = [policy.delay(n, failure, lambda: 0.0) for n in range(1, 9)]
    high = [policy.delay(n, failure, lambda: 1.0) for n in range(1, 9)]
    assert low[:3] == pytest.approx([0.8, 1.6, 3.2])
    assert high[:3] == pytest.approx([1.2, 2.4, 4.8])
    assert max(high) == 30.0  # cap


def test_retry_after_is_a_floor_capped_at_sixty_seconds() -> None:
    policy = RetryPolicy()
    assert policy.delay(1, Failure("rate_limit", retry_after_s=12), lambda: 0.0) == 12
    assert policy.delay(1, Failure("rate_limit", retry_after_s=3600), lambda: 0.0) == 60


def test_attempt_budgets() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts(Failure("rate_limit")) == 10
    assert policy.max_attempts(Failure("overloaded")) == 9
    assert policy.max_attempts(Failure("auth")) == 1
    assert policy.max_attempts(Failure("not_found")) == 1


def test_cooldown_ladder_escalates_and_resets_after_success(tmp_path: Path) -> None:
    clock = Clock()
    health = ModelHealth(tmp_path / "h.json", RetryPolicy(), clock)
    ref = "anthropic/claude"
    assert [health.record_failure(ref, Failure("rate_limit")) for _ in range(4)] == [
        30,
        60,
        300,
        300,
    ]
    assert health.remaining(ref) == 300
    clock.now += 301
    assert health.remaining(ref) == 0
    health.record_success(ref)
    assert health.record_failure(ref, Failure("overloaded")) == 30


def test_ladder_restarts_after_the_failure_window(tmp_path: Path) -> None:
    clock = Clock()
    health = ModelHealth(None, RetryPolicy(), clock)
    health.record_failure("m/a", Failure("server"))
    health.record_failure("m/a", Failure("server"))
    clock.now += 3601
    assert health.record_failure("m/a", Failure("server")) == 30


def test_billing_disables_for_ten_minutes_and_not_found_not_at_all(tmp_path: Path) -> None:
    clock = Clock()
    health = ModelHealth(None, RetryPolicy(), clock)
    assert health.record_failure("m/a", Failure("billing")) == 600
    assert health.remaining("m/a") == 600
    assert health.record_failure("m/b", Failure("not_found")) == 0
    assert health.remaining("m/b") == 0


def test_cooldowns_are_per_model_and_persist(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "agents" / "model-health.json"
    ModelHealth(path, RetryPolicy(), clock).record_failure("openai/a", Failure("rate_limit"))
    again = ModelHealth(path, RetryPolicy(), clock)
    assert again.remaining("openai/a") == 30
    assert again.remaining("openai/b") == 0  # a sibling model of the same provider is free
    assert json.loads(path.read_text())["openai/a"]["errorCount"] == 1


def test_a_damaged_cooldown_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "model-health.json"
    path.write_text("{not json")
    assert ModelHealth(path, RetryPolicy()).remaining("x/y") == 0


def test_time_scale_from_env() -> None:
    policy = RetryPolicy.from_env({"CLAWGATE_FAILOVER_TIME_SCALE": "0.5"})
    assert policy.cooldown_ladder_s == (15, 30, 150) and policy.rate_limit_attempts == 10
    assert RetryPolicy.from_env({"CLAWGATE_FAILOVER_TIME_SCALE": "bogus"}) == RetryPolicy()


def test_base_url_normalisation() -> None:
    assert normalize_base_url("openai-completions", "http://h:1") == "http://h:1/v1"
    assert normalize_base_url("openai-completions", "http://h:1/v1/") == "http://h:1/v1"
    assert normalize_base_url("openai-completions", "http://h:1/proxy/v1") == "http://h:1/proxy/v1"
    assert normalize_base_url("anthropic-messages", "http://h:1/v1") == "http://h:1"
    assert normalize_base_url("anthropic-messages", "http://h:1") == "http://h:1"


def test_credentials_resolution_names_the_env_var_and_never_a_value() -> None:
    env = {"OPENAI_API_KEY": "sk-from-env"}
    settings = provider_settings(
        "openai", api=None, base_url=None, api_key=None, timeout_s=None, env=env
    )
    assert settings.api_key == "sk-from-env" and "sk-from-env" not in repr(settings)
    token = provider_settings(
        "anthropic", api=None, base_url=None, api_key=None, timeout_s=None,
        env={"ANTHROPIC_OAUTH_TOKEN": "oat-123456"},
    )  # fmt: skip
    assert token.bearer_token == "oat-123456" and token.api_key is None
    try:
        provider_settings(
            "anthropic", api=None, base_url=None, api_key=None, timeout_s=None, env={}
        )
    except MissingCredentials as exc:
        assert "ANTHROPIC_API_KEY" in str(exc)
    else:
        raise AssertionError("expected MissingCredentials")


def test_startup_names_models_without_credentials() -> None:
    from gateway.cli import credential_problems
    from gateway.config.models import OpenClawConfig

    config = OpenClawConfig.model_validate(
        {
            "agents": {
                "defaults": {
                    "model": {"primary": "anthropic/claude-x", "fallbacks": ["openai/gpt-y"]}
                }
            },
            "models": {"providers": {"openai": {"apiKey": {"source": "env", "id": "MY_OPENAI"}}}},
        }
    )
    problems = credential_problems(config, {"ANTHROPIC_API_KEY": "sk-ant-123456"})
    assert len(problems) == 1 and problems[0].startswith("model openai/gpt-y:")
    assert "MY_OPENAI" in problems[0]
    env = {"ANTHROPIC_API_KEY": "sk-ant-123456", "MY_OPENAI": "sk-oai-123456"}
    assert credential_problems(config, env) == []
    assert all("sk-" not in p for p in problems)

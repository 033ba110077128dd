"""Every failover path, end to end: WebSocket chat.send → real SDKs → fake model servers.

Retry and cooldown durations are scaled down (see conftest); attempt counts are the real ones.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.llm import FakeLLM
from tests.harness import chat, connected, final_text, live_gateway

PRIMARY = "anthropic/claude-test"
FALLBACK = "openai/gpt-test"


def config(anthropic: FakeLLM, openai: FakeLLM, **provider_extra: Any) -> dict[str, Any]:
    return {
        "models": {
            "providers": {
                "anthropic": {"baseUrl": anthropic.url, "apiKey": "sk-ant-test", **provider_extra},
                "openai": {"baseUrl": openai.url + "/v1", "apiKey": "sk-oai-test"},
            }
        },
        "agents": {"defaults": {"model": {"primary": PRIMARY, "fallbacks": [FALLBACK]}}},
    }


def log_lines(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == name]


async def test_overloaded_primary_falls_back_and_the_turn_survives_a_restart(
    tmp_path: Path,
    anthropic_fake: FakeLLM,
    openai_fake: FakeLLM,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    anthropic_fake.script += [{"status": 529}] * 20
    openai_fake.script.append({"text": "answer from the fallback"})
    cfg = config(anthropic_fake, openai_fake)
    async with live_gateway(tmp_path, cfg) as live, connected(live) as client:
        events = await chat(client, "hello?")
    assert final_text(events) == "answer from the fallback"
    deltas = [e for e in events if e["state"] == "delta"]
    assert deltas and deltas[0]["deltaText"] == "answer "  # streamed, not delivered at once
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # Overloaded with a healthy fallback waiting: one quick same-model retry, then the fallback.
    tries = len(anthropic_fake.requests)
    assert tries == 2
    assert len(openai_fake.requests) == 1
    assert all(r["body"]["model"] == "claude-test" for r in anthropic_fake.requests)
    assert openai_fake.requests[0]["body"]["model"] == "gpt-test"
    assert openai_fake.requests[0]["body"]["messages"][-1] == {"role": "user", "content": "hello?"}
    decisions = log_lines(caplog, "model-fallback/decision")
    assert any(
        f"decision=candidate_failed requested={PRIMARY} candidate={PRIMARY} reason=overloaded" in d
        and f"next={FALLBACK}" in d
        for d in decisions
    ), decisions
    assert any(
        f"decision=candidate_succeeded requested={PRIMARY} candidate={FALLBACK}" in d
        for d in decisions
    )
    retries = log_lines(caplog, "agent/embedded")
    assert len(retries) == tries - 1
    assert retries[0].startswith(f"transient same-model retry 1/1 for {PRIMARY} reason=overloaded")

    # A new gateway on the same state dir returns the turn from the transcript.
    async with live_gateway(tmp_path, cfg) as live, connected(live) as client:
        history = await client.call("chat.history", {"sessionKey": "main"})
    texts = [
        (m["role"], m["content"] if isinstance(m["content"], str) else m["content"][0]["text"])
        for m in history["messages"]
    ]
    assert texts == [("user", "hello?"), ("assistant", "answer from the fallback")]
    assert history["messages"][1]["provider"] == "openai"


async def test_rate_limit_then_success_retries_the_same_model(
    tmp_path: Path, anthropic_fake: FakeLLM, openai_fake: FakeLLM
) -> None:
    anthropic_fake.script += [
        {"status": 429, "headers": {"retry-after": "0"}},
        {"text": "second try"},
    ]
    async with live_gateway(tmp_path, config(anthropic_fake, openai_fake)) as live:
        async with connected(live) as client:
            events = await chat(client, "hi")
    assert final_text(events) == "second try"
    assert len(anthropic_fake.requests) == 2
    assert openai_fake.requests == []
    # SDK retries are off: each attempt is ours, one HTTP request each.
    assert all(
        r["headers"].get("x-stainless-retry-count", "0") == "0" for r in anthropic_fake.requests
    )


async def test_rate_limit_honours_retry_after_as_a_minimum(
    tmp_path: Path, anthropic_fake: FakeLLM, openai_fake: FakeLLM
) -> None:
    # retry-after 100 s, scaled by 1/1000 as every duration is here: at least 0.1 s apart.
    anthropic_fake.script += [
        {"status": 429, "headers": {"retry-after-ms": "100000"}},
        {"text": "ok"},
    ]
    cfg = config(anthropic_fake, openai_fake)
    cfg["agents"]["defaults"]["model"]["fallbacks"] = []  # no fallback: the long budget
    async with live_gateway(tmp_path, cfg) as live:
        async with connected(live) as client:
            await chat(client, "hi")
    first, second = anthropic_fake.requests
    # Retry-After is capped at 60 s (scaled: 0.06 s) and is a floor for the delay.
    assert second["at"] - first["at"] >= 0.06
    assert openai_fake.requests == []


async def test_auth_failure_skips_to_the_fallback_without_retrying(
    tmp_path: Path, anthropic_fake: FakeLLM, openai_fake: FakeLLM
) -> None:
    anthropic_fake.script.append({"status": 401})
    async with live_gateway(tmp_path, config(anthropic_fake, openai_fake)) as live:
        async with connected(live) as client:
            events = await chat(client, "hi")
    assert final_text(events) == "from openai"
    assert len(anthropic_fake.requests) == 1
    assert len(openai_fake.requests) == 1


async def test_missing_key_counts_as_auth_and_falls_back(
    tmp_path: Path, anthropic_fake: FakeLLM, openai_fake: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(anthropic_fake, openai_fake)
    del cfg["models"]["providers"]["anthropic"]["apiKey"]
    async with live_gateway(tmp_path, cfg) as live, connected(live) as client:
        events = await chat(client, "hi")
    assert final_text(events) == "from openai"
    assert anthropic_fake.requests == []
    assert any(
        "ANTHROPIC_API_KEY" in r.getMessage() or "reason=auth" in r.getMessage()
        for r in caplog.records
    )


async def test_timeout_is_retried_then_falls_back(
    tmp_path: Path, anthropic_fake: FakeLLM, openai_fake: FakeLLM
) -> None:
    anthropic_fake.script += [{"delay": 1.0}] * 9  # leftovers are never popped
    cfg = config(anthropic_fake, openai_fake, timeoutSeconds=0.2)
    async with live_gateway(tmp_path, cfg) as live, connected(live) as client:
        events = await chat(client, "hi", timeout=30)
    assert final_text(events) == "from openai"
    assert len(anthropic_fake.requests) >= 2  # a timeout is transient: retried first
    assert len(openai_fake.requests) == 1


async def test_all_candidates_fail_with_a_friendly_message_and_one_summary_line(
    tmp_path: Path,
    anthropic_fake: FakeLLM,
    openai_fake: FakeLLM,
    caplog: pytest.LogCaptureFixture,
) -> None:
    anthropic_fake.script.append({"status": 401})
    openai_fake.script.append({"status": 404})
    async with live_gateway(tmp_path, config(anthropic_fake, openai_fake)) as live:
        async with connected(live) as client:
            events = await chat(client, "hi")
            history = await client.call("chat.history", {"sessionKey": "main"})
    error = events[-1]
    assert error["state"] == "error"
    assert error["errorMessage"] == (
        "The selected model was not found by the provider. Check the model id or choose a"
        " different model."
    )
    assert "fake 404" not in error["errorMessage"]  # never the raw provider error
    assert error["errorDetail"]["provider"] == "openai"
    assert error["errorDetail"]["httpStatus"] == 404
    summaries = log_lines(caplog, "model-fallback")
    assert len(summaries) == 1
    assert summaries[0].startswith(
        f"All models failed (2): {PRIMARY}: 401: fake 401 (auth) | {FALLBACK}: 404: fake 404 (not_found)"
    )
    assert "sk-ant-test" not in summaries[0]
    assert history["messages"][0]["role"] == "user"


async def test_context_overflow_never_falls_back(
    tmp_path: Path, anthropic_fake: FakeLLM, openai_fake: FakeLLM
) -> None:
    anthropic_fake.script.append({"status": 413})
    async with live_gateway(tmp_path, config(anthropic_fake, openai_fake)) as live:
        async with connected(live) as client:
            events = await chat(client, "hi")
    assert events[-1]["state"] == "error"
    assert events[-1]["errorMessage"].startswith("Context overflow")
    assert len(anthropic_fake.requests) == 1
    assert openai_fake.requests == []


async def test_no_fallback_once_text_has_streamed(
    tmp_path: Path, anthropic_fake: FakeLLM, openai_fake: FakeLLM
) -> None:
    anthropic_fake.script.append(
        {"text": "partial answer here", "stream_error": "overloaded_error"}
    )
    async with live_gateway(tmp_path, config(anthropic_fake, openai_fake)) as live:
        async with connected(live) as client:
            events = await chat(client, "hi")
    assert events[0]["state"] == "delta"
    assert events[-1]["state"] == "error"
    assert events[-1]["errorDetail"]["failoverReason"] == "overloaded"
    assert len(anthropic_fake.requests) == 1  # no retry either: the user saw text
    assert openai_fake.requests == []


async def test_cooldown_skips_the_primary_then_recovers_to_it(
    tmp_path: Path,
    anthropic_fake: FakeLLM,
    openai_fake: FakeLLM,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    # 3/100 scale: first cooldown 30 s → 0.9 s, long enough to observe a skipped turn.
    monkeypatch.setenv("CLAWGATE_FAILOVER_TIME_SCALE", "0.03")
    anthropic_fake.script += [{"status": 529}] * 9
    async with live_gateway(tmp_path, config(anthropic_fake, openai_fake)) as live:
        async with connected(live) as client:
            assert final_text(await chat(client, "one")) == "from openai"
            tries = len(anthropic_fake.requests)
            anthropic_fake.script.clear()  # the primary is healthy again
            # Second turn inside the cooldown: primary skipped without a request.
            assert final_text(await chat(client, "two")) == "from openai"
            assert len(anthropic_fake.requests) == tries
            assert any(
                "decision=skip_cooldown" in m for m in log_lines(caplog, "model-fallback/decision")
            )
            state = (tmp_path / "agents" / "model-health.json").read_text()
            assert PRIMARY in state  # persisted, so a restart keeps it
            await _wait_cooldown(live.gateway, PRIMARY)
            # Cooldown over: the primary answers again (fallback is turn-local).
            assert final_text(await chat(client, "three")) == "from anthropic"
    assert len(anthropic_fake.requests) == tries + 1
    assert len(openai_fake.requests) == 2


async def _wait_cooldown(gateway: Any, ref: str) -> None:
    import asyncio

    turns = gateway.extensions["agents"]._model_turn
    for _ in range(200):
        remaining = turns.health.remaining(ref)
        if remaining == 0:
            return
        await asyncio.sleep(remaining + 0.01)
    raise AssertionError("cooldown never ended")


async def test_openai_responses_api_streams(
    tmp_path: Path, anthropic_fake: FakeLLM, openai_fake: FakeLLM
) -> None:
    cfg = config(anthropic_fake, openai_fake)
    cfg["models"]["providers"]["openai"]["api"] = "openai-responses"
    cfg["agents"]["defaults"]["model"] = {"primary": FALLBACK}
    openai_fake.script.append({"text": "responses api answer"})
    async with live_gateway(tmp_path, cfg) as live, connected(live) as client:
        events = await chat(client, "hi")
    assert final_text(events) == "responses api answer"
    assert openai_fake.requests[0]["path"] == "/v1/responses"
    assert openai_fake.requests[0]["body"]["stream"] is True
    assert [e["deltaText"] for e in events if e["state"] == "delta"][:1] == ["responses "]


async def test_keys_come_from_the_environment(
    tmp_path: Path, anthropic_fake: FakeLLM, openai_fake: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(anthropic_fake, openai_fake)
    del cfg["models"]["providers"]["anthropic"]["apiKey"]
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env")
    async with live_gateway(tmp_path, cfg) as live, connected(live) as client:
        assert final_text(await chat(client, "hi")) == "from anthropic"
    headers = anthropic_fake.requests[0]["headers"]
    assert "sk-ant-from-env" in (headers.get("x-api-key", "") + headers.get("authorization", ""))


async def test_anthropic_subscription_token_goes_in_the_authorization_header(
    tmp_path: Path, anthropic_fake: FakeLLM, openai_fake: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(anthropic_fake, openai_fake)
    del cfg["models"]["providers"]["anthropic"]["apiKey"]
    monkeypatch.setenv("ANTHROPIC_OAUTH_TOKEN", "oauth-token-123456")
    async with live_gateway(tmp_path, cfg) as live, connected(live) as client:
        await chat(client, "hi")
    headers = anthropic_fake.requests[0]["headers"]
    assert headers.get("authorization") == "Bearer oauth-token-123456"
    assert "x-api-key" not in headers

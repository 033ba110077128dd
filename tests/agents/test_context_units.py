"""Context window resolution, budget, estimates, history view, caching breakpoints, prices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.agents import context as ctx
from gateway.agents import pricing
from gateway.agents.history import compacted_view, dm_history_limit
from gateway.agents.store import SessionStore
from gateway.agents.usage import UsageIndex, totals_of
from gateway.agents.usage_report import UsageQueryError, resolve_period, resolve_tz
from gateway.config.models import OpenClawConfig
from providers.caching import add_cache_breakpoints
from providers.classify import Failure


def cfg(raw: dict[str, Any]) -> OpenClawConfig:
    return OpenClawConfig.model_validate(raw)


def provider(models: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"models": {"providers": {"anthropic": {"models": models, **extra}}}}


def test_window_order_config_builtin_default_and_legacy_cap() -> None:
    assert ctx.resolve_window(cfg({}), "anthropic/claude-haiku-4-5").tokens == 200_000
    assert ctx.resolve_window(cfg({}), "anthropic/claude-sonnet-4-6").tokens == 1_000_000
    assert ctx.resolve_window(cfg({}), "openai/gpt-5.5").tokens == 272_000
    assert ctx.resolve_window(cfg({}), "google/gemini-2.5-pro").tokens == 1_048_576
    unknown = ctx.resolve_window(cfg({}), "local/llama")
    assert (unknown.tokens, unknown.source) == (200_000, "default")
    configured = ctx.resolve_window(
        cfg(provider([{"id": "claude-haiku-4-5", "contextWindow": 32_000}])),
        "anthropic/claude-haiku-4-5",
    )
    assert configured.tokens == 32_000
    assert configured.source == "models.providers.anthropic.models[claude-haiku-4-5].contextWindow"
    # contextTokens caps, clamped to the native window
    capped = ctx.resolve_window(
        cfg(provider([{"id": "m", "contextWindow": 50_000, "contextTokens": 90_000}])),
        "anthropic/m",
    )
    assert capped.tokens == 50_000
    legacy = ctx.resolve_window(
        cfg({"agents": {"defaults": {"contextTokens": 16_000}}}), "anthropic/claude-haiku-4-5"
    )
    assert (legacy.tokens, legacy.source) == (16_000, "agents.defaults.contextTokens")


def test_reserve_threshold_and_a_window_too_small_for_the_prompt_names_the_key() -> None:
    window = ctx.Window(32_000, "models.providers.anthropic.models[m].contextWindow")
    budget = ctx.budget(window, 1_000)
    assert (budget.reserve, budget.threshold, budget.hard_limit) == (8_000, 24_000, 28_000)
    assert ctx.budget(ctx.Window(200_000, "builtin"), 0).reserve == 20_000
    with pytest.raises(ctx.ContextConfigError, match=r"models\.providers\.anthropic\.models\[m\]"):
        ctx.budget(window, 25_000)
    with pytest.raises(ctx.ContextConfigError, match="minimum"):
        ctx.budget(ctx.Window(3_000, "agents.defaults.contextTokens"), 10)


def test_projection_uses_reported_usage_then_estimates_what_follows() -> None:
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "x" * 400},
        {"role": "assistant", "content": "y" * 40, "usage": {"totalTokens": 1_000}},
        {"role": "user", "content": "z" * 400},
    ]
    measured = ctx.project(history, "s" * 40, "new" * 40)
    assert measured.measured and measured.tokens > 1_000
    assert measured.ratio > 1  # the provider counted more than chars/4
    # Usage reported before the latest compaction is stale: estimates only.
    pinned = [
        {"role": "user", "content": "summary", "compactionSummary": True, "timestamp": 10**13}
    ]
    stale = ctx.project([*pinned, {**history[1], "timestamp": 5}], "", "hi")
    assert not stale.measured


def test_compacted_view_pins_the_summary_and_keeps_from_first_kept() -> None:
    events: list[dict[str, Any]] = [
        {"type": "message", "id": "a", "message": {"role": "user", "content": "old"}},
        {"type": "message", "id": "b", "message": {"role": "user", "content": "kept"}},
        {"type": "compaction", "id": "c", "summary": "S", "firstKeptEntryId": "b",
         "timestamp": "2026-01-01T00:00:00.000Z"},
        {"type": "message", "id": "d", "message": {"role": "assistant", "content": "new"}},
    ]  # fmt: skip
    pinned, kept = compacted_view(events)
    assert "<summary>\nS\n</summary>" in pinned[0]["content"]
    assert [e["id"] for e in kept] == ["b", "d"]


def test_history_limit_keeps_the_pinned_summary(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    key = "agent:main:telegram:direct:42"
    agent = store.for_key(key)
    agent.ensure(key)
    for i in range(5):
        agent.append_messages(key, [{"role": "user", "content": f"q{i}"}])
        agent.append_messages(key, [{"role": "assistant", "content": f"a{i}"}])
    row = agent.get(key)
    assert row is not None
    agent.transcript(row.session_id).append("compaction", summary="S", firstKeptEntryId=None)
    agent.append_messages(key, [{"role": "user", "content": "q5"}])
    agent.append_messages(key, [{"role": "assistant", "content": "a5"}])
    agent.append_messages(key, [{"role": "user", "content": "q6"}])
    history = store.model_history(key, max_user_turns=1)
    assert history[0]["compactionSummary"] is True
    assert [m["content"] for m in history[1:]] == ["q6"]


def test_dm_history_limit_resolution() -> None:
    config = cfg(
        {"channels": {"telegram": {"dmHistoryLimit": 7, "dms": {"42": {"historyLimit": 3}}}}}
    )
    assert dm_history_limit(config, "agent:main:telegram:direct:42", "telegram") == 3
    assert dm_history_limit(config, "agent:main:telegram:direct:9", "telegram") == 7
    assert dm_history_limit(config, "agent:main:direct:9", "telegram") == 7  # per-peer
    assert dm_history_limit(config, "agent:main:main", "telegram") is None
    assert dm_history_limit(config, "agent:main:telegram:group:1", "telegram") is None


def test_cache_breakpoints_mark_system_newest_and_previous_user_message() -> None:
    body = {
        "system": "sys",
        "messages": [
            {"role": "user", "content": "q1"},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "q2"},
        ],
    }
    before = json.dumps(body)
    out = add_cache_breakpoints(body)
    assert json.dumps(body) == before  # the input is not mutated
    assert out["system"][0]["cache_control"] == {"type": "ephemeral"}
    marked = [i for i, m in enumerate(out["messages"]) if "cache_control" in m["content"][-1]]
    assert marked == [0, 2]
    # Unmarked messages take the same block form, so the prefix is byte-stable next turn.
    assert out["messages"][1] == {"role": "assistant", "content": [{"type": "text", "text": "a1"}]}


def test_cost_uses_config_overrides_then_the_catalog_and_reports_unpriced() -> None:
    counts = pricing.Counts(input=1_000_000, output=1_000_000, cache_read=1_000_000)
    catalog = pricing.cost(cfg({}), "anthropic", "claude-haiku-4-5", counts)
    assert catalog is not None and catalog["input"] == 1.0 and catalog["output"] == 5.0
    override = cfg(provider([{"id": "claude-haiku-4-5", "cost": {"input": 2}}]))
    priced = pricing.cost(override, "anthropic", "claude-haiku-4-5", counts)
    assert priced is not None and priced["input"] == 2.0 and priced["output"] == 5.0
    assert priced["total"] == pytest.approx(2.0 + 5.0 + 0.1)
    assert pricing.cost(cfg({}), "local", "no-such-model-xyz", counts) is None
    free = cfg(
        {
            "models": {
                "providers": {"local": {"models": [{"id": "m", "cost": {"input": 0, "output": 0}}]}}
            }
        }
    )
    assert pricing.cost(free, "local", "m", counts) == {
        "input": 0.0, "output": 0.0, "cacheRead": 0.0, "cacheWrite": 0.0, "total": 0.0,
    }  # fmt: skip


def test_overflow_wordings_of_other_providers_are_recognised() -> None:
    import anthropic
    import httpx2 as httpx  # the transport the installed anthropic SDK is typed against

    from providers.classify import classify

    for text in (
        "input exceeds the maximum number of tokens",
        "Context size has been exceeded.",
        "prompt is too long: 9000 tokens > 8000 maximum",
    ):
        response = httpx.Response(400, request=httpx.Request("POST", "http://x"))
        body = {"type": "error", "error": {"type": "invalid_request_error", "message": text}}
        exc = anthropic.BadRequestError(text, response=response, body=body)
        assert classify(exc) == Failure(
            "context_overflow", status=400, error_type="invalid_request_error", preview=text
        )


def test_usage_index_is_rebuilt_when_corrupt_and_survives_new(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    key = "agent:main:main"
    agent = store.for_key(key)
    agent.ensure(key)
    usage = {"input": 100, "output": 10, "cacheRead": 0, "cacheWrite": 0, "totalTokens": 110}
    reply = {"role": "assistant", "content": "a", "provider": "anthropic", "model": "m"}
    agent.append_messages(key, [{"role": "user", "content": "q"}, {**reply, "usage": usage}])
    store.reset(key, "new")
    agent.append_messages(key, [{"role": "user", "content": "q"}, {**reply, "usage": usage}])
    config = cfg(provider([{"id": "m", "cost": {"input": 1, "output": 5}}]))
    index = UsageIndex(tmp_path, lambda: config)
    index.refresh()
    first = totals_of(r for _, r in index.records())
    assert (first.input, first.output) == (200, 20)
    assert first.total_cost == pytest.approx(2 * (100 + 50) / 1e6)
    assert len(index.session_ids_for_key(key)) == 2
    index.path.write_text("{not json")
    again = UsageIndex(tmp_path, lambda: config)
    again.refresh()
    assert totals_of(r for _, r in again.records()).to_wire() == first.to_wire()
    # Appended bytes are read incrementally.
    agent.append_messages(key, [{**reply, "usage": usage}])
    again.refresh()
    assert totals_of(r for _, r in again.records()).input == 300


def test_usage_period_parameters() -> None:
    with pytest.raises(UsageQueryError, match="together"):
        resolve_period(start_date="2026-01-01")
    with pytest.raises(UsageQueryError, match="after"):
        resolve_period(start_date="2026-02-01", end_date="2026-01-01")
    assert len(resolve_period(range_="7d").days) == 7
    assert len(resolve_period().days) == 30
    with pytest.raises(UsageQueryError, match="between"):
        resolve_tz("specific", None, "UTC+15")
    assert resolve_tz("specific", None, "UTC-5:30").utcoffset(None) is not None

"""The per-reply usage footer's modes and lines (gateway/agents/usage_footer.py), plus the
chat path end to end: `/usage` over chat.send, the `final` chat event, `sessions.list` and
`sessions.patch` against a real gateway and the fake model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.agents import pricing
from gateway.agents.runner import RunOutcome, Usage
from gateway.agents.store import SessionRow, SessionStore
from gateway.agents.usage_footer import (
    BarFacts,
    TurnFigures,
    configured_mode,
    effective_mode,
    figures_of,
    footer,
    meter,
    normalize_mode,
    sum_usage,
    tokens_line,
    turn_footer,
    with_footer,
)
from gateway.config.models import OpenClawConfig
from tests.fakes.llm import FakeLLM
from tests.harness import chat, connected, final_text, live_gateway

NBSP = "\xa0"


def cfg(**messages: Any) -> OpenClawConfig:
    return OpenClawConfig.model_validate(
        {
            "models": {
                "providers": {
                    "openai": {
                        "baseUrl": "http://127.0.0.1:9/v1",
                        "models": [
                            {"id": "gpt-test", "contextWindow": 100_000, "cost": PRICE},
                            {"id": "gpt-free", "contextWindow": 100_000},
                        ],
                    }
                }
            },
            "agents": {"defaults": {"model": {"primary": "openai/gpt-test"}}},
            "messages": messages,
        }
    )


PRICE = {"input": 2, "output": 10}  # USD per 1M tokens


def row(choice: str | None = None) -> SessionRow:
    r = SessionRow(key="agent:main:main", session_id="s", session_started_at=1, updated_at=1)
    if choice is not None:
        r.extra["responseUsage"] = choice
    return r


def figures(**kw: Any) -> TurnFigures:
    base: dict[str, Any] = dict(
        input=0, output=0, cache_read=0, cache_write=0, cost_usd=None, prompt_tokens=None
    )
    return TurnFigures(**{**base, **kw})


def test_words_and_precedence() -> None:
    assert [normalize_mode(w) for w in ("on", "YES", "tok", "full", "session", "0", "x")] == [
        "tokens",
        "tokens",
        "tokens",
        "full",
        "full",
        "off",
        None,
    ]
    assert configured_mode(cfg(), "telegram") == "off"
    per_channel = cfg(responseUsage={"default": "on", "discord": "full"})
    assert configured_mode(per_channel, "discord") == "full"
    assert configured_mode(per_channel, "telegram") == "tokens"  # `default`, `on` = tokens
    # The session's choice wins, an explicit off included; no choice → the default.
    assert effective_mode(row("off"), per_channel, "discord") == "off"
    assert effective_mode(row(), per_channel, "discord") == "full"
    assert effective_mode(row("tokens"), cfg(), None) == "tokens"


def test_tokens_line_counts_and_cache() -> None:
    assert tokens_line(figures(input=1234, output=56)) == "Usage: 1.2k in / 56 out"
    line = tokens_line(figures(input=80, output=900, cache_read=14_820, cache_write=1290))
    assert line == "Usage: 80 in / 900 out · cache 15k cached / 1.3k new"
    assert tokens_line(figures()) is None  # nothing reported: no line
    # Never a cost in this mode, even when the turn has one.
    assert "$" not in (tokens_line(figures(input=5, output=5, cost_usd=1.5)) or "")


def test_meter_cells() -> None:
    assert meter(0) == "⠐⠐⠐⠐⠐"
    assert meter(40) == "⣿⣿⠐⠐⠐"
    assert meter(35) == "⣿⣧⠐⠐⠐"  # 1.75 cells: one full, a ¾ cell
    assert meter(100) == "⣿⣿⣿⣿⣿"
    assert meter(250) == "⣿⣿⣿⣿⣿"  # clamped


def test_full_bar_with_and_without_cost() -> None:
    facts = BarFacts(provider="anthropic", model="claude-haiku-4-5", context_window=32_000)
    spent = figures(input=11_000, output=300, cost_usd=0.0116, prompt_tokens=11_200)
    assert footer("full", spent, facts, "telegram") == (
        f"anthropic🤖haiku45🐌{NBSP}| 📚[⣿⣧⠐⠐⠐]32k{NBSP}💰0.0116"
    )
    unpriced = figures(input=11_000, output=300, cost_usd=None, prompt_tokens=11_200)
    line = footer("full", unpriced, facts, "telegram")
    assert line is not None and "💰" not in line and line.endswith("32k")
    # A recorded zero is a real price, shown as such.
    assert (footer("full", figures(input=1, cost_usd=0.0), facts, None) or "").endswith("0.0000")
    fell_back = BarFacts(provider="openai", model="gpt-x", emoji="🦊", fallback_used=True)
    assert footer("full", spent, fell_back, None) == f"openai🦊gpt-x🔄🐌{NBSP}💰0.0116"
    discord = footer("full", spent, facts, "discord") or ""
    assert discord.startswith("-# -\n-# anthropic🤖haiku45")
    assert footer("off", spent, facts, None) is None
    assert footer("full", figures(), facts, None) is None  # nothing counted, nothing priced


def test_turn_sums_and_unpriced_calls() -> None:
    priced = Usage(input=100, output=10, cost={"total": 0.5})
    free = Usage(input=50, output=5, cost=None)
    assert sum_usage([priced, priced]) == (200, 20, 0, 0, 1.0)
    assert sum_usage([priced, free])[4] is None  # one unpriced call: no cost at all
    outcome = RunOutcome(
        text="x",
        usage=Usage(input=300, output=7, cache_read=700, cost=None),
        turn_usage=Usage(input=900, output=20, cache_read=700, cost={"total": 0.25}),
        provider="openai",
        model="gpt-test",
    )
    got = figures_of(outcome)
    assert got is not None
    assert (got.input, got.output, got.cost_usd) == (900, 20, 0.25)
    assert got.prompt_tokens == 1000  # the last call's prompt: 300 new + 700 cached


def test_turn_footer_reads_the_session_and_config() -> None:
    config = cfg()
    spent = pricing.Counts(40_000, 500)
    outcome = RunOutcome(
        text="x",
        usage=Usage(
            input=40_000, output=500, cost=pricing.cost(config, "openai", "gpt-test", spent)
        ),
        provider="openai",
        model="gpt-test",
    )
    assert turn_footer(config, row(), outcome, agent_id="main", channel="telegram") is None
    assert (
        turn_footer(config, row("tokens"), outcome, agent_id="main", channel="telegram")
        == "Usage: 40k in / 500 out"
    )
    assert turn_footer(config, row("full"), outcome, agent_id="main", channel="telegram") == (
        f"openai🤖gpt-test🐌{NBSP}| 📚[⣿⣿⠐⠐⠐]100k{NBSP}💰0.0850"
    )
    nothing = RunOutcome(text="x", provider="openai", model="gpt-test")  # no usage reported
    assert turn_footer(config, row("full"), nothing, agent_id="main", channel=None) is None


def test_with_footer_joins_on_its_own_line() -> None:
    assert with_footer("hello", "Usage: 1 in / 1 out") == "hello\nUsage: 1 in / 1 out"
    assert with_footer("hello\n", "U") == "hello\nU"
    assert with_footer("hello", None) == "hello"


# --- the chat path, end to end ---------------------------------------------------------------


def chat_config(llm: FakeLLM, **messages: Any) -> dict[str, Any]:
    return {
        "gateway": {"mode": "local"},
        "models": {
            "providers": {
                "openai": {
                    "baseUrl": llm.url + "/v1",
                    "apiKey": "sk-test",
                    "models": [{"id": "gpt-test", "contextWindow": 100_000, "cost": PRICE}],
                }
            }
        },
        "agents": {"defaults": {"model": {"primary": "openai/gpt-test"}}},
        "messages": messages,
    }


async def test_chat_final_carries_the_footer_and_the_transcript_does_not(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    (tmp_path / "workspace").mkdir()
    (tmp_path / "workspace" / "plan.txt").write_text("ship on tuesday\n")
    fake_llm.script += [
        {"text": "plain", "usage": {"prompt_tokens": 10, "completion_tokens": 2}},
        # A tool step, then the answer: the footer sums both calls.
        {
            "tool_calls": [{"name": "read", "arguments": {"path": "plan.txt"}}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 20},
        },
        {"text": "tuesday", "usage": {"prompt_tokens": 1100, "completion_tokens": 30}},
    ]
    async with live_gateway(tmp_path, chat_config(fake_llm)) as live, connected(live) as client:
        assert final_text(await chat(client, "hi")) == "plain"  # off by default
        assert final_text(await chat(client, "/usage full")) == "⚙️ Usage footer: full."
        answered = final_text(await chat(client, "when do we ship?"))
        history = await client.call("chat.history", {"sessionKey": "main"})
        listed = await client.call("sessions.list", {})
    cost = (2100 * 2 + 50 * 10) / 1_000_000  # both calls, priced one by one
    assert answered == f"tuesday\nopenai🤖gpt-test🐌{NBSP}| 📚[⠐⠐⠐⠐⠐]100k{NBSP}💰{cost:.4f}"
    texts = [
        "".join(b.get("text", "") for b in m["content"] if isinstance(b, dict))
        for m in history["messages"]
        if m["role"] == "assistant"
    ]
    assert texts[-1] == "tuesday"  # the transcript keeps the model's own text
    main = next(s for s in listed["sessions"] if s["key"] == "agent:main:main")
    assert main["responseUsage"] == "full" and main["effectiveResponseUsage"] == "full"


async def test_usage_command_cycles_persists_and_resets(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script += [
        {"text": "one", "usage": {"prompt_tokens": 1234, "completion_tokens": 56}},
        {"text": "two", "usage": {"prompt_tokens": 1234, "completion_tokens": 56}},
        {"text": "three", "usage": {"prompt_tokens": 1234, "completion_tokens": 56}},
    ]
    # Webchat defaults to tokens here; a session's explicit off must still win.
    config = chat_config(fake_llm, responseUsage={"default": "off", "webchat": "tokens"})
    async with live_gateway(tmp_path, config) as live, connected(live) as client:
        assert final_text(await chat(client, "one")) == "one\nUsage: 1.2k in / 56 out"
        replies = [final_text(await chat(client, "/usage")) for _ in range(3)]
        assert replies == [
            "⚙️ Usage footer: full.",  # cycled from the effective mode (tokens)
            "⚙️ Usage footer: off.",
            "⚙️ Usage footer: tokens.",
        ]
        assert final_text(await chat(client, "/usage off")) == "⚙️ Usage footer: off."
        await chat(client, "/new")  # the choice survives a new session
        assert final_text(await chat(client, "two")) == "two"
        assert final_text(await chat(client, "/usage sometimes")).startswith("⚙️ Usage: /usage")
        assert final_text(await chat(client, "/usage reset")) == (
            "⚙️ Usage footer: reset to default."
        )
        assert final_text(await chat(client, "three")) == "three\nUsage: 1.2k in / 56 out"
        await chat(client, "/usage full")
        cost = final_text(await chat(client, "/usage cost"))
    assert cost.startswith("💸 Usage cost")
    # On disk as the reference keeps it: the row's `responseUsage`.
    on_disk = SessionStore(tmp_path).get("agent:main:main")
    assert on_disk is not None and on_disk.extra["responseUsage"] == "full"


async def test_sessions_patch_sets_only_response_usage(tmp_path: Path, fake_llm: FakeLLM) -> None:
    async with live_gateway(tmp_path, chat_config(fake_llm)) as live:
        async with connected(live) as client:
            methods = client.hello["features"]["methods"]  # type: ignore[attr-defined]
            on = await client.call("sessions.patch", {"key": "main", "responseUsage": "on"})
            other = await client.request("sessions.patch", {"key": "main", "label": "x"})
            bad = await client.request("sessions.patch", {"key": "main", "responseUsage": "loud"})
            listed = await client.call("sessions.list", {})
            cleared = await client.call("sessions.patch", {"key": "main", "responseUsage": None})
        async with connected(live, scopes=["operator.read", "operator.write"]) as writer:
            refused = await writer.request(
                "sessions.patch", {"key": "main", "responseUsage": "full"}
            )
    assert "sessions.patch" not in methods  # partial: the Control UI must not start using it
    assert on["ok"] is True and on["key"] == "agent:main:main"
    assert on["entry"]["responseUsage"] == "tokens"  # `on` means tokens
    assert on["resolved"] == {"modelProvider": "openai", "model": "gpt-test"}
    assert other["error"]["code"] == "INVALID_REQUEST" and "label" in other["error"]["message"]
    assert bad["error"]["code"] == "INVALID_REQUEST" and "responseUsage" in bad["error"]["message"]
    main = next(s for s in listed["sessions"] if s["key"] == "agent:main:main")
    assert main["responseUsage"] == "tokens"
    assert "responseUsage" not in cleared["entry"]
    assert cleared["entry"]["effectiveResponseUsage"] == "off"
    assert refused["error"]["code"] == "FORBIDDEN"  # operator.admin, as the reference asks

from __future__ import annotations

import pytest

from gateway.agents.commands import (
    NEW_SESSION_REPLY,
    RESET_REPLY,
    Command,
    ModelFacts,
    StatusFacts,
    format_help,
    format_model,
    format_status,
    parse_command,
    parse_reset_trigger,
    reset_reply,
)

ROWS: list[tuple[str, tuple[str, ...] | None, Command | None]] = [
    ("/new", None, Command("new", "", "/new")),
    ("/NEW", None, Command("new", "", "/new")),
    ("  /new  ", None, Command("new", "", "/new")),
    ("/reset", None, Command("reset", "", "/reset")),
    ("/Reset please summarise X", None, Command("reset", "please summarise X", "/reset")),
    ("/new what is 2+2?", None, Command("new", "what is 2+2?", "/new")),
    ("/new\nmultiline\ntext", None, Command("new", "multiline\ntext", "/new")),
    ("/newsletter", None, None),
    ("/resetting", None, None),
    ("hello /new", None, None),
    ("new", None, None),
    ("/clear", ("/clear",), Command("new", "", "/clear")),
    ("/new", ("/clear",), None),
    ("/RESET now", ("/reset", "/reset-all"), Command("reset", "now", "/reset")),
    ("/reset-all", ("/reset", "/reset-all"), Command("new", "", "/reset-all")),
    ("/stop", None, Command("stop", "", "/stop")),
    ("/STOP now", None, Command("stop", "now", "/stop")),
    ("/status", None, Command("status", "", "/status")),
    ("/model", None, Command("model", "", "/model")),
    ("/model opus", None, Command("model", "opus", "/model")),
    ("/model\nopus", None, Command("model", "opus", "/model")),
    ("/help", None, Command("help", "", "/help")),
    ("/statusbar", None, None),
    ("/unknown", None, None),
    ("", None, None),
    ("just chatting", None, None),
]


@pytest.mark.parametrize(("text", "triggers", "expected"), ROWS)
def test_parse_command(
    text: str, triggers: tuple[str, ...] | None, expected: Command | None
) -> None:
    if triggers is None:
        assert parse_command(text) == expected
    else:
        assert parse_command(text, triggers) == expected


def test_reset_replies() -> None:
    new = parse_reset_trigger("/new")
    reset = parse_reset_trigger("/reset")
    follow = parse_reset_trigger("/new tell me a joke")
    assert new and reset and follow
    assert reset_reply(new) == NEW_SESSION_REPLY
    assert reset_reply(reset) == RESET_REPLY
    assert follow.runs_turn_after and reset_reply(follow) is None


def test_status_text() -> None:
    text = format_status(
        StatusFacts(
            agent_id="main",
            agent_name="Claw",
            session_key="agent:main:main",
            session_id="abc",
            model_ref="anthropic/claude-haiku-4-5",
            fallbacks=("openai/gpt-5.4",),
            session_started_at=1795475523535,
            updated_at=1795475530578,
            message_count=4,
            input_tokens=10,
            output_tokens=5,
            total_tokens=15,
            queued=2,
            running=True,
            version="0.1.0",
        )
    )
    for fragment in (
        "clawgate status 0.1.0",
        "Agent: main (Claw)",
        "Session: agent:main:main",
        "Session id: abc (started 2026-11-23 23:12 UTC)",
        "Model: anthropic/claude-haiku-4-5 (fallbacks: openai/gpt-5.4)",
        "in 10 · out 5 · total 15",
        "Messages: 4 · Run: running · Queued: 2",
        "Queue mode: followup",
    ):
        assert fragment in text
    bare = format_status(StatusFacts(agent_id="main", session_key="k", model_ref=""))
    assert "Tokens" not in bare and "Session id: - (started -)" in bare


def test_model_text() -> None:
    facts = ModelFacts(
        current="anthropic/claude-haiku-4-5",
        fallbacks=("openai/gpt-5.4",),
        aliases={"opus": "anthropic/claude-opus-5"},
    )
    listing = format_model(facts)
    assert listing.splitlines()[0] == "Current model: anthropic/claude-haiku-4-5"
    assert "Fallbacks: openai/gpt-5.4" in listing
    assert "opus → anthropic/claude-opus-5" in listing
    switch = format_model(facts, "opus")
    assert "not supported yet" in switch.splitlines()[0]
    assert "Current model: anthropic/claude-haiku-4-5" in switch


def test_help_lists_triggers() -> None:
    text = format_help(("/new", "/reset"))
    assert "/new, /reset" in text and "/stop" in text and "/status" in text

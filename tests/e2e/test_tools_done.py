"""Issue 13, done means: the agent acts with the real tools, from Telegram and through the
reference CLI, and `exec` is the owner's alone and never shows a secret."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.agents import roster as rv
from tests.compat.conftest import GatewayProcess, ThreadedFakeLLM, _stop, start_gateway
from tests.compat.reference import Reference, run_openclaw
from tests.e2e.conftest import GROUP, OWNER, SECRETS, config, to_chat
from tests.e2e.script import Turn, call, responder, turn_of
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram
from tests.harness import live_gateway

NOTE = "- buy oat milk\n- call the plumber about the leak\n"


def note_then_read(turn: Turn) -> dict[str, Any]:
    """ "write a note …, then read it back": write, read, then quote what read returned."""
    if "notes/todo.md" not in turn.user:
        return {"text": "ok"}
    if not turn.steps:
        return call("write", path="notes/todo.md", content=NOTE)
    if len(turn.steps) == 1:
        return call("read", path="notes/todo.md")
    return {"text": f"Your note says:\n{turn.steps[-1][2]}"}


PROBES = (
    "env",
    "cat /proc/self/environ | tr '\\0' '\\n'",
    "cat /proc/$PPID/environ | tr '\\0' '\\n'",
)


def probe_secrets(turn: Turn) -> dict[str, Any]:
    """A model that tries every way to print the environment, then echoes what it got."""
    if "exec" not in turn.tools:
        return {"text": "I cannot run commands here."}
    if len(turn.steps) < len(PROBES):
        return call("exec", command=PROBES[len(turn.steps)])
    return {"text": "\n".join(r for _, _, r in turn.steps)}


def sent_texts(tg: FakeTelegram, chat: int) -> str:
    return "\n".join(str(c.get("text", "")) for c in tg.calls("sendMessage") if to_chat(chat)(c))


async def test_telegram_note_round_trip_with_real_tools(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_llm.responder = responder(note_then_read)
    cfg = config(fake_llm, fake_tg)
    async with live_gateway(tmp_path, cfg) as live:
        runner = live.gateway.extensions["channels"].get("telegram").runner
        await runner.wait_for_status(lambda s: s.connected)
        fake_tg.text_update("write a note to notes/todo.md with my todos, then read it back")
        reply = await fake_tg.wait_for("sendMessage", to_chat(OWNER), timeout=15)
        workspace = rv.workspace_dir(live.gateway.loaded.config, "main", tmp_path)
    assert (workspace / "notes" / "todo.md").read_text() == NOTE
    assert [name for name, _, _ in turn_of(fake_llm.bodies[-1]).steps] == ["write", "read"]
    assert "buy oat milk" in reply["text"] and "call the plumber" in reply["text"]


async def test_exec_for_the_owner_never_shows_a_secret_and_not_for_a_group_stranger(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_llm.responder = responder(probe_secrets)
    # A group where anyone may talk to the bot: Eve is a stranger there.
    groups = {str(GROUP): {"requireMention": False, "allowFrom": ["*"]}}
    cfg = config(fake_llm, fake_tg, {"groups": groups})
    async with live_gateway(tmp_path, cfg) as live:
        runner = live.gateway.extensions["channels"].get("telegram").runner
        await runner.wait_for_status(lambda s: s.connected)
        fake_tg.text_update("show me your environment")
        owner_reply = await fake_tg.wait_for("sendMessage", to_chat(OWNER), timeout=15)
        owner_tools = fake_llm.bodies[-1]
        fake_tg.text_update(
            "run env for me", chat_id=GROUP, user_id=9001, chat_type="supergroup", first_name="Eve"
        )
        group_reply = await fake_tg.wait_for("sendMessage", to_chat(GROUP), timeout=15)
        stranger_tools = fake_llm.bodies[-1]
    # exec ran for the owner: the environment listing came back (PATH, HOME …) …
    assert "PATH=" in owner_reply["text"]
    assert "exec" in [t["function"]["name"] for t in owner_tools["tools"]]
    # … with no secret in it, nor in anything sent to the model or to the chats.
    everything = json.dumps(fake_llm.bodies) + sent_texts(fake_tg, OWNER)
    for secret in SECRETS:
        assert secret not in everything
    assert "OPENAI_API_KEY" not in owner_reply["text"]
    # The group stranger is not offered exec (nor write/edit).
    offered = [t["function"]["name"] for t in stranger_tools.get("tools") or ()]
    assert not {"exec", "process", "write", "edit"} & set(offered)
    assert group_reply["text"] == "I cannot run commands here."


def cli_call(gw: GatewayProcess, method: str, params: dict[str, Any]) -> Any:
    args = ["gateway", "call", method, "--json", "--params", json.dumps(params)]
    result = run_openclaw([*args, "--url", gw.url, "--token", gw.token])
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


@pytest.mark.compat
def test_reference_cli_sees_the_real_write_and_read(
    reference: Reference, tmp_path: Path, threaded_llm: ThreadedFakeLLM
) -> None:
    threaded_llm.fake.responder = responder(note_then_read)
    gw = start_gateway(tmp_path, config(threaded_llm.fake))
    try:
        message = "write a note to notes/todo.md, then read it back"
        params = {"sessionKey": "main", "message": message, "idempotencyKey": "e2e-note"}
        assert cli_call(gw, "chat.send", params) == {"runId": "e2e-note", "status": "started"}
        deadline = time.monotonic() + 15
        while True:
            history = cli_call(gw, "chat.history", {"sessionKey": "main"})["messages"]
            if len(history) >= 6 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        _stop(gw.proc)
    assert [m["role"] for m in history] == [
        "user", "assistant", "toolResult", "assistant", "toolResult", "assistant",
    ]  # fmt: skip
    calls = [m["content"][-1] for m in (history[1], history[3])]
    assert [(c["type"], c["name"]) for c in calls] == [("toolCall", "write"), ("toolCall", "read")]
    assert calls[0]["arguments"] == {"path": "notes/todo.md", "content": NOTE}
    assert all(m["isError"] is False for m in (history[2], history[4]))
    answer = "".join(b["text"] for b in history[5]["content"] if b["type"] == "text")
    assert "buy oat milk" in answer and "call the plumber" in answer
    assert (gw.state_dir / "workspace" / "notes" / "todo.md").read_text() == NOTE

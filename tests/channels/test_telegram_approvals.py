"""Exec approvals as Telegram inline buttons to the owner (tools.md §3.4): real
python-telegram-bot ↔ fake Bot API ↔ real gateway ↔ fake model calling `exec`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from channels.approvals import GONE, NOT_AUTHORIZED
from gateway.agents.tools.approvals import broker
from tests.channels.conftest import gateway_config, telegram_gateway
from tests.fakes.llm import FakeLLM, tool_results
from tests.fakes.telegram import FakeTelegram
from tests.harness import LiveGateway, connected

OWNER = 42
STRANGER = 99
ASK = {"exec": {"mode": "ask"}}


def _config(tg: FakeTelegram, llm: FakeLLM, **telegram: Any) -> dict[str, Any]:
    section = {"dmPolicy": "allowlist", "allowFrom": [OWNER], **telegram}
    return gateway_config(tg, llm, section, tools=ASK)


def _script(llm: FakeLLM, command: str) -> None:
    llm.script += [
        {"tool_calls": [{"name": "exec", "arguments": {"command": command}}]},
        {"text": "all done"},
    ]


async def _prompt(tg: FakeTelegram, chat: int = OWNER) -> tuple[int, dict[str, Any]]:
    """The approval prompt sent to `chat`: its message id and its sendMessage params."""
    sent = await tg.wait_for(
        "sendMessage",
        lambda p: p.get("chat_id") == str(chat) and "reply_markup" in p,
        timeout=10,
    )
    mid = next(m for (c, m), text in tg.messages.items() if c == str(chat) and text == sent["text"])
    return mid, sent


def _buttons(sent: dict[str, Any]) -> list[tuple[str, str]]:
    row = sent["reply_markup"]["inline_keyboard"][0]
    return [(b["text"], b["callback_data"]) for b in row]


async def _answer(tg: FakeTelegram, update_id: int) -> str:
    """The answerCallbackQuery text for the press pushed as `update_id`."""
    query_id = next(u["callback_query"]["id"] for u in tg.updates if u["update_id"] == update_id)
    got = await tg.wait_for(
        "answerCallbackQuery", lambda p: p.get("callback_query_id") == query_id, timeout=5
    )
    return str(got.get("text"))


async def _final(tg: FakeTelegram, llm: FakeLLM) -> list[dict[str, Any]]:
    await tg.wait_for("sendMessage", lambda p: p["text"] == "all done", timeout=10)
    return tool_results(llm.bodies[-1])


def _found(root: Path, name: str) -> list[Path]:
    return list(root.rglob(name))


def _pending(live: LiveGateway) -> int:
    return len(broker(live.gateway).pending)


async def test_owner_allows_once_from_the_buttons(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    _script(fake_llm, "echo approved-$((40 + 2))")
    async with telegram_gateway(tmp_path, _config(fake_tg, fake_llm)) as live:
        fake_tg.text_update("run it", user_id=OWNER, chat_id=OWNER)
        mid, sent = await _prompt(fake_tg)
        assert "echo approved-$((40 + 2))" in sent["text"] and "cwd:" in sent["text"]
        (allow_label, allow), (deny_label, _deny) = _buttons(sent)
        assert (allow_label, deny_label) == ("Allow once", "Deny")
        # Someone else's press resolves nothing.
        stranger = fake_tg.press_update(mid, allow, chat_id=OWNER, user_id=STRANGER)
        assert await _answer(fake_tg, stranger) == NOT_AUTHORIZED
        assert _pending(live) == 1 and len(fake_llm.bodies) == 1
        owner = fake_tg.press_update(mid, allow, chat_id=OWNER, user_id=OWNER)
        assert await _answer(fake_tg, owner) == "Allowed once."
        results = await _final(fake_tg, fake_llm)
        assert [r["text"].strip() for r in results] == ["approved-42"]
        edit = await fake_tg.wait_for("editMessageText", lambda p: int(p["message_id"]) == mid)
        assert edit["text"].startswith("✅ Allowed once by <code>telegram:42</code>")
        assert "reply_markup" not in edit  # the buttons are gone
        again = fake_tg.press_update(mid, allow, chat_id=OWNER, user_id=OWNER)
        assert await _answer(fake_tg, again) == GONE
        assert _pending(live) == 0


async def test_owner_denies_and_the_model_gets_the_denial(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    _script(fake_llm, "touch denied-file")
    async with telegram_gateway(tmp_path, _config(fake_tg, fake_llm)):
        fake_tg.text_update("make a file", user_id=OWNER, chat_id=OWNER)
        mid, sent = await _prompt(fake_tg)
        deny = _buttons(sent)[1][1]
        press = fake_tg.press_update(mid, deny, chat_id=OWNER, user_id=OWNER)
        assert await _answer(fake_tg, press) == "Denied."
        (result,) = await _final(fake_tg, fake_llm)
        assert "user-denied" in result["text"] and "touch denied-file" in result["text"]
        edit = await fake_tg.wait_for("editMessageText", lambda p: int(p["message_id"]) == mid)
        assert edit["text"].startswith("❌ Denied by <code>telegram:42</code>")
    assert not _found(tmp_path, "denied-file")  # the command never ran


async def test_unanswered_prompt_expires_as_denied(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    _script(fake_llm, "echo never")
    async with telegram_gateway(tmp_path, _config(fake_tg, fake_llm)) as live:
        broker(live.gateway).timeout_ms = 400
        fake_tg.text_update("run it", user_id=OWNER, chat_id=OWNER)
        mid, sent = await _prompt(fake_tg)
        (result,) = await _final(fake_tg, fake_llm)
        assert "timeout" in result["text"]
        edit = await fake_tg.wait_for("editMessageText", lambda p: int(p["message_id"]) == mid)
        assert edit["text"].startswith("⌛ Expired")
        late = fake_tg.press_update(mid, _buttons(sent)[0][1], chat_id=OWNER, user_id=OWNER)
        assert await _answer(fake_tg, late) == GONE


async def test_group_turn_prompts_in_the_owner_dm_not_the_group(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    _script(fake_llm, "echo from-group")
    group = {"-100777": {"requireMention": False, "tools": {"allow": ["exec"]}}}
    cfg = _config(fake_tg, fake_llm, groupPolicy="open", groups=group, groupAllowFrom=["*"])
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update(
            "run it in the group", user_id=STRANGER, chat_id=-100777, chat_type="supergroup"
        )
        mid, sent = await _prompt(fake_tg, chat=OWNER)
        allow = _buttons(sent)[0][1]
        assert not [
            p
            for p in fake_tg.calls("sendMessage")
            if p["chat_id"] == "-100777" and "reply_markup" in p
        ]
        # The group member who asked cannot approve their own command.
        own = fake_tg.press_update(mid, allow, chat_id=OWNER, user_id=STRANGER)
        assert await _answer(fake_tg, own) == NOT_AUTHORIZED
        press = fake_tg.press_update(mid, allow, chat_id=OWNER, user_id=OWNER)
        assert await _answer(fake_tg, press) == "Allowed once."
        results = await _final(fake_tg, fake_llm)
        assert [r["text"].strip() for r in results] == ["from-group"]


async def test_undeliverable_prompt_without_an_operator_is_denied_at_once(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    _script(fake_llm, "echo unreachable")
    group = {"-100777": {"requireMention": False, "tools": {"allow": ["exec"]}}}
    cfg = _config(fake_tg, fake_llm, groupPolicy="open", groups=group, groupAllowFrom=["*"])
    async with telegram_gateway(tmp_path, cfg) as live:
        # The owner never opened a DM with the bot: Telegram refuses the prompt.
        fake_tg.fail_next("sendMessage", 403, "Forbidden: bot can't initiate conversation")
        fake_tg.text_update("run it", user_id=STRANGER, chat_id=-100777, chat_type="supergroup")
        (result,) = await _final(fake_tg, fake_llm)
        assert "no-route" in result["text"]
        assert _pending(live) == 0


async def test_answer_from_the_control_ui_updates_the_telegram_prompt(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    _script(fake_llm, "echo via-ui")
    async with (
        telegram_gateway(tmp_path, _config(fake_tg, fake_llm)) as live,
        connected(live, caps=["exec-approvals"]) as op,
    ):
        fake_tg.text_update("run it", user_id=OWNER, chat_id=OWNER)
        mid, _sent = await _prompt(fake_tg)
        (entry,) = await op.call("exec.approval.list")
        await op.call("exec.approval.resolve", {"id": entry["id"], "decision": "allow-once"})
        results = await _final(fake_tg, fake_llm)
        assert [r["text"].strip() for r in results] == ["via-ui"]
        edit = await fake_tg.wait_for("editMessageText", lambda p: int(p["message_id"]) == mid)
        assert edit["text"].startswith("✅ Allowed once by")

"""End to end: real python-telegram-bot ↔ fake Bot API ↔ real gateway ↔ fake model."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.channels.conftest import gateway_config, telegram_gateway
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import BOT, FakeTelegram
from tests.harness import ROOT, connected, gateway_env

BOT_NAME = BOT["username"]


def sent_to(chat: int):  # type: ignore[no-untyped-def]
    return lambda p: p.get("chat_id") == str(chat)


def user_text(llm: FakeLLM) -> str:
    """The last user message the model received (OpenAI chat shape)."""
    messages = llm.bodies[-1]["messages"]
    content = [m for m in messages if m["role"] == "user"][-1]["content"]
    return content if isinstance(content, str) else " ".join(c.get("text", "") for c in content)


async def test_open_dm_gets_agent_reply_with_typing(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_llm.script.append({"text": "Hello **there**"})
    cfg = gateway_config(fake_tg, fake_llm, {"dmPolicy": "open", "allowFrom": ["*"]})
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("hi bot")
        reply = await fake_tg.wait_for("sendMessage", sent_to(42), timeout=10)
    assert reply["text"] == "Hello <b>there</b>" and reply["parse_mode"] == "HTML"
    assert "reply_parameters" not in reply  # replyToMode off
    menu = fake_tg.calls("setMyCommands")
    assert [c["command"] for c in menu[0]["commands"]][:2] == ["new", "reset"]
    typing = fake_tg.calls("sendChatAction")
    assert typing and typing[0]["action"] == "typing"
    assert user_text(fake_llm).endswith("hi bot")


async def test_pairing_then_cli_approval_admits_next_message(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_llm.script.append({"text": "welcome aboard"})
    cfg = gateway_config(fake_tg, fake_llm)  # dmPolicy defaults to pairing
    async with telegram_gateway(tmp_path, cfg) as live:
        fake_tg.text_update("let me in", user_id=555, chat_id=555)
        pairing = await fake_tg.wait_for("sendMessage", sent_to(555))
        assert "Your Telegram user id: 555" in pairing["text"]
        match = re.search(r"Pairing code:\s*<pre><code>([A-Z2-9]{8})</code></pre>", pairing["text"])
        assert match, pairing["text"]
        code = match.group(1)
        # A second message while pending gets no second code.
        fake_tg.text_update("hello?", user_id=555, chat_id=555)
        async with connected(live) as client:
            listed = await client.call("channels.pairing.list", {"channel": "telegram"})
            assert [r["requestId"] for r in listed["requests"]] == [code]
            assert listed["requests"][0]["senderId"] == "555"
        # The real CLI, in another process, while the gateway runs.
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "pairing",
            "approve",
            "telegram",
            code,
            env=gateway_env(tmp_path),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, out.decode()
        assert "555" in out.decode()
        fake_tg.text_update("now?", user_id=555, chat_id=555)
        reply = await fake_tg.wait_for(
            "sendMessage", lambda p: p["chat_id"] == "555" and p["text"] == "welcome aboard"
        )
    assert reply["parse_mode"] == "HTML"
    codes = [p for p in fake_tg.calls("sendMessage") if "Pairing code" in p["text"]]
    assert len(codes) == 1
    assert len(fake_llm.requests) == 1  # only the approved message reached the model


async def test_allowlist_and_disabled_dm_policies(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    cfg = gateway_config(fake_tg, fake_llm, {"dmPolicy": "allowlist", "allowFrom": ["tg:42"]})
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("stranger", user_id=77, chat_id=77)
        fake_tg.text_update("friend")
        await fake_tg.wait_for("sendMessage", sent_to(42))
    assert not [p for p in fake_tg.calls("sendMessage") if p["chat_id"] == "77"]
    assert len(fake_llm.requests) == 1


async def test_disabled_dms_and_open_group_sentinel(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    cfg = gateway_config(
        fake_tg,
        fake_llm,
        {"dmPolicy": "disabled", "groups": {"*": {"requireMention": False}}},
    )
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("dm is off")
        fake_tg.text_update("group works", chat_id=-100, user_id=7, chat_type="supergroup")
        await fake_tg.wait_for("sendMessage", sent_to(-100))
    assert [p["chat_id"] for p in fake_tg.calls("sendMessage")] == ["-100"]


async def test_group_mention_gate_and_pending_history(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_llm.script.append({"text": "group answer"})
    cfg = gateway_config(fake_tg, fake_llm, {"groups": {"-100": {}}, "replyToMode": "first"})
    group: dict[str, Any] = {"chat_id": -100, "chat_type": "supergroup"}
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("the sky is green today", user_id=7, first_name="Bob", **group)
        fake_tg.text_update("unlisted group", chat_id=-200, chat_type="group")
        text = f"@{BOT_NAME} what colour is the sky?"
        fake_tg.text_update(text, user_id=8, entities=fake_tg.mention_entities(text), **group)
        reply = await fake_tg.wait_for("sendMessage", sent_to(-100))
    assert reply["text"] == "group answer"
    assert reply["reply_parameters"]["message_id"]  # replyToMode first
    prompt = user_text(fake_llm)
    assert "Bob: the sky is green today" in prompt
    assert "[Current message - respond to this]" in prompt
    assert "unlisted group" not in prompt
    assert len(fake_llm.requests) == 1


async def test_commands_in_dm_and_group(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    cfg = gateway_config(
        fake_tg, fake_llm, {"dmPolicy": "open", "allowFrom": ["*"], "groups": {"*": {}}}
    )
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("/new")
        await fake_tg.wait_for("sendMessage", lambda p: p["text"] == "✅ New session started.")
        fake_tg.text_update("/help")
        await fake_tg.wait_for("sendMessage", lambda p: p["text"].startswith("Commands:"))
        fake_tg.text_update(f"/status@{BOT_NAME}", chat_id=-100, chat_type="supergroup")
        status = await fake_tg.wait_for("sendMessage", sent_to(-100))
        fake_tg.text_update("/status@other_bot", chat_id=-100, chat_type="supergroup")
        fake_tg.text_update("/whoami", user_id=42)
        await fake_tg.wait_for("sendMessage", lambda p: "user id: 42" in p["text"])
    assert "clawgate status" in status["text"]
    assert "agent:main:telegram:group:-100" in status["text"]
    assert len([p for p in fake_tg.calls("sendMessage") if p["chat_id"] == "-100"]) == 1
    assert fake_llm.requests == []  # commands never reach the model


async def test_long_reply_is_chunked_without_breaking_fences(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    code = "\n".join(f"value_{i} = {i} * 2  # <{i}>" for i in range(300))
    long_text = "Intro paragraph.\n\n```python\n" + code + "\n```\n\nDone & dusted."
    fake_llm.script.append({"text": long_text})
    cfg = gateway_config(fake_tg, fake_llm, {"dmPolicy": "open", "allowFrom": ["*"]})
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("write code")
        await fake_tg.wait_for("sendMessage", lambda p: p["text"].endswith("Done &amp; dusted."))
    pieces = [p["text"] for p in fake_tg.calls("sendMessage")]
    assert len(pieces) >= 3
    assert all(len(p) <= 4000 for p in pieces)
    assert all(p.count("<pre>") == p.count("</pre>") for p in pieces)
    joined = "\n".join(pieces)
    assert all(f"value_{i} = {i} * 2  # &lt;{i}&gt;" in joined for i in range(300))


async def test_html_parse_error_falls_back_to_plain_text(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    fake_llm.script.append({"text": "**bold** & more"})
    fake_tg.fail_next(
        "sendMessage", 400, "Bad Request: can't parse entities: Unsupported start tag"
    )
    cfg = gateway_config(fake_tg, fake_llm, {"dmPolicy": "open", "allowFrom": ["*"]})
    with caplog.at_level(logging.WARNING):
        async with telegram_gateway(tmp_path, cfg):
            fake_tg.text_update("hi")
            plain = await fake_tg.wait_for("sendMessage", lambda p: "parse_mode" not in p)
    assert plain["text"] == "bold & more"
    assert "degrade=plain-fallback:html-parse" in caplog.text


async def test_send_retries_after_429_and_failure_text(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_tg.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    fake_llm.script.append({"text": "after the limit"})
    fake_llm.script.append({"status": 400})  # a non-retryable provider error
    cfg = gateway_config(fake_tg, fake_llm, {"dmPolicy": "open", "allowFrom": ["*"]})
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("one")
        await fake_tg.wait_for("sendMessage", lambda p: p["text"] == "after the limit")
        fake_tg.text_update("two")
        failure = await fake_tg.wait_for(
            "sendMessage", lambda p: p["text"] != "after the limit", timeout=15
        )
    statuses = [r["status"] for r in fake_tg.requests if r["method"] == "sendMessage"]
    assert statuses[:2] == [429, 200]
    assert "invalid_request_error" not in failure["text"]
    assert failure["text"].strip()


async def test_send_rpc_delivers_formatted_text(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    cfg = gateway_config(fake_tg, fake_llm)
    async with telegram_gateway(tmp_path, cfg) as live, connected(live) as client:
        res = await client.call(
            "send",
            {"to": "42", "message": "**note** <x>", "channel": "telegram", "idempotencyKey": "k1"},
        )
        again = await client.call(
            "send",
            {"to": "42", "message": "**note** <x>", "channel": "telegram", "idempotencyKey": "k1"},
        )
        # One channel running: it is the default target channel.
        implicit = await client.call("send", {"to": "42", "message": "x", "idempotencyKey": "k2"})
        unknown = await client.request(
            "send", {"to": "42", "message": "x", "channel": "discord", "idempotencyKey": "k3"}
        )
    sent = fake_tg.calls("sendMessage")
    assert [p["text"] for p in sent] == ["<b>note</b> &lt;x&gt;", "x"]
    assert res["messageId"] and res == again
    assert implicit["channel"] == "telegram"
    assert not unknown["ok"] and unknown["error"]["code"] == "NOT_FOUND"


async def test_conflict_409_backs_off_and_recovers(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    fake_tg.fail_next("getUpdates", 409, "Conflict: terminated by other getUpdates request")
    fake_tg.fail_next("getUpdates", 409, "Conflict: terminated by other getUpdates request")
    cfg = gateway_config(fake_tg, fake_llm, {"dmPolicy": "open", "allowFrom": ["*"]})
    with caplog.at_level(logging.WARNING):
        async with telegram_gateway(tmp_path, cfg) as live:
            fake_tg.text_update("still there?")
            await fake_tg.wait_for("sendMessage", sent_to(42))
            async with httpx.AsyncClient() as http:
                ready = await http.get(f"{live.http}/readyz")
    conflicts = [r for r in fake_tg.requests if r["method"] == "getUpdates" and r["status"] == 409]
    assert len(conflicts) == 2
    assert caplog.text.count("another process is polling this bot token (409 Conflict)") == 2
    assert ready.status_code == 200


async def test_bad_token_marks_account_failed_and_readyz_503(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = gateway_config(fake_tg, fake_llm, {"botToken": "999:WRONG"})
    with caplog.at_level(logging.ERROR):
        async with telegram_gateway(tmp_path, cfg, wait_connected=False) as live:
            runner = live.gateway.extensions["channels"].get("telegram").runner
            await runner.wait_for_status(lambda s: not s.running)
            async with httpx.AsyncClient() as http:
                ready = await http.get(f"{live.http}/readyz")
                alive = await http.get(f"{live.http}/healthz")
            async with connected(live) as client:
                status = await client.call("channels.status", {})
                health = await client.call("health")
    assert ready.status_code == 503 and "telegram:default" in ready.json()["failing"]
    assert alive.status_code == 200
    account = status["channelAccounts"]["telegram"][0]
    assert account["healthState"] == "failed" and "401" in account["lastError"]
    assert status["channelDefaultAccountId"] == {"telegram": "default"}
    assert health["channels"]["telegram"]["accounts"]["default"]["running"] is False
    assert caplog.text.count("getMe returned 401") == 1
    assert "999:WRONG" not in caplog.text
    assert [r["method"] for r in fake_tg.requests] == ["getMe"]  # no polling after a 401

"""More Telegram behaviour: inbound mapping, tokens, silent replies, reconnects, skip switch."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
from telegram import Chat, Message, MessageEntity, PhotoSize, User

from channels.pairing import PairingStore
from channels.telegram import MISSING_TOKEN_ERROR, TokenError, format_for_telegram, resolve_token
from channels.telegram.inbound import to_inbound
from channels.telegram_html import html_to_plain
from gateway.config.models import TelegramConfig
from tests.channels.conftest import gateway_config, telegram_gateway
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import BOT, FakeTelegram
from tests.harness import connected, gateway_env, live_gateway, run_process

ME = User(id=BOT["id"], first_name="Claw", is_bot=True, username=BOT["username"])
ANN = User(id=42, first_name="Ann", is_bot=False, username="ann")
GROUP = Chat(id=-100, type="supergroup", title="G")
NOW = dt.datetime.now(dt.UTC)


def msg(text: str | None = None, chat: Chat = GROUP, **kw: object) -> Message:
    return Message(message_id=5, date=NOW, chat=chat, from_user=ANN, text=text, **kw)  # type: ignore[arg-type]


def test_inbound_mapping() -> None:
    cmd = to_inbound(msg("/status@Claw_Test_Bot now"), bot=ME, account_id="default")
    assert cmd is not None and cmd.text == "/status now" and cmd.mentioned
    other = to_inbound(msg("/status@other_bot"), bot=ME, account_id="default")
    assert other is not None and other.text == "/status@other_bot" and not other.mentioned
    text = "hey @claw_test_bot look"
    mention = to_inbound(
        msg(text, entities=[MessageEntity("mention", offset=4, length=14)]),
        bot=ME,
        account_id="default",
    )
    assert mention is not None and mention.mentioned and mention.chat_type == "group"
    tm = to_inbound(
        msg("Claw hi", entities=[MessageEntity("text_mention", offset=0, length=4, user=ME)]),
        bot=ME,
        account_id="default",
    )
    assert tm is not None and tm.mentioned
    reply = to_inbound(
        msg("and?", reply_to_message=Message(1, NOW, GROUP, from_user=ME, text="earlier")),
        bot=ME,
        account_id="default",
    )
    assert reply is not None and reply.reply_to_bot and reply.reply_to_text == "earlier"
    photo = to_inbound(
        msg(None, photo=(PhotoSize("f", "u", 1, 1),), caption="look"), bot=ME, account_id="d"
    )
    assert photo is not None and photo.text == "look"
    assert [a.kind for a in photo.attachments] == ["image"]
    assert photo.text_with_placeholders == "<media:image> look"
    own = to_inbound(
        Message(6, NOW, GROUP, from_user=ME, text="mine"), bot=ME, account_id="default"
    )
    assert own is not None and own.from_self
    channel_post = to_inbound(msg("x", chat=Chat(id=-5, type="channel")), bot=ME, account_id="d")
    assert channel_post is None


def test_token_resolution(tmp_path: Path) -> None:
    env = {"TELEGRAM_BOT_TOKEN": "from-env", "MY_TOKEN": "from-ref"}
    assert resolve_token(TelegramConfig(), env) == "from-env"
    assert resolve_token(TelegramConfig.model_validate({"botToken": "inline"}), env) == "inline"
    ref = TelegramConfig.model_validate({"botToken": {"source": "env", "id": "MY_TOKEN"}})
    assert resolve_token(ref, env) == "from-ref"
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    cfg = TelegramConfig.model_validate({"tokenFile": str(token_file), "botToken": "inline"})
    assert resolve_token(cfg, env) == "from-file"
    link = tmp_path / "link"
    link.symlink_to(token_file)
    with pytest.raises(TokenError, match="regular file"):
        resolve_token(TelegramConfig.model_validate({"tokenFile": str(link)}), env)
    with pytest.raises(TokenError, match="UNSET_VAR"):
        resolve_token(
            TelegramConfig.model_validate({"botToken": {"source": "env", "id": "UNSET_VAR"}}), {}
        )
    assert resolve_token(TelegramConfig(), {}) is None


def test_format_for_telegram_measures_after_escaping() -> None:
    text = "if a < b && c > d then <tag> " * 400  # ~11k chars; escaping adds ~50 %
    pieces = format_for_telegram(text, 4000)
    assert len(pieces) >= 4
    assert all(len(p) <= 4000 for p in pieces)
    plain = " ".join(html_to_plain(p) for p in pieces)
    assert plain.split() == text.split()


async def test_missing_token_fails_account_but_gateway_serves(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    cfg = gateway_config(fake_tg, fake_llm)
    del cfg["channels"]["telegram"]["botToken"]
    async with telegram_gateway(tmp_path, cfg, wait_connected=False) as live:
        async with httpx.AsyncClient() as http:
            ready = await http.get(f"{live.http}/readyz")
        async with connected(live) as client:
            status = await client.call("channels.status", {"channel": "telegram"})
            summary = await client.call("status")
    assert ready.status_code == 503 and ready.json()["failing"] == ["telegram:default"]
    account = status["channelAccounts"]["telegram"][0]
    assert account["lastError"] == MISSING_TOKEN_ERROR and account["configured"] is False
    assert any("Telegram (default)" in line for line in summary["channelSummary"])
    assert fake_tg.requests == []


async def test_new_with_text_silent_reply_and_reply_to_bot(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_llm.script.extend([{"text": "fresh start answer"}, {"text": "NO_REPLY"}, {"text": "yes?"}])
    cfg = gateway_config(
        fake_tg, fake_llm, {"dmPolicy": "open", "allowFrom": ["*"], "groups": {"*": {}}}
    )
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("/new tell me something")
        await fake_tg.wait_for("sendMessage", lambda p: p["text"] == "fresh start answer")
        fake_tg.text_update("say nothing")
        bot_msg = {
            "message_id": 1,
            "date": 0,
            "chat": {"id": -100, "type": "supergroup"},
            "from": BOT,
            "text": "hi",
        }
        fake_tg.text_update(
            "replying", chat_id=-100, chat_type="supergroup", reply_to_message=bot_msg
        )
        await fake_tg.wait_for("sendMessage", lambda p: p["text"] == "yes?")
    texts = [p["text"] for p in fake_tg.calls("sendMessage")]
    assert texts == ["fresh start answer", "yes?"]  # NO_REPLY is never delivered
    assert "tell me something" in str(fake_llm.bodies[0]["messages"][-1])
    assert "[Replying to Claw: hi]" in str(fake_llm.bodies[2]["messages"][-1])


async def test_polling_survives_a_bad_gateway(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    cfg = gateway_config(fake_tg, fake_llm, {"dmPolicy": "open", "allowFrom": ["*"]})
    async with telegram_gateway(tmp_path, cfg) as live:
        runner = live.gateway.extensions["channels"].get("telegram").runner
        fake_tg.fail_next("getUpdates", 502, "Bad Gateway")
        await runner.wait_for_status(lambda s: not s.connected)
        await runner.wait_for_status(lambda s: s.connected)
        fake_tg.text_update("back?")
        await fake_tg.wait_for("sendMessage", lambda p: p["chat_id"] == "42")
        assert runner.status().reconnects == 1


async def test_skip_channels_env_and_offline_pairing_list(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    PairingStore(tmp_path).request("telegram", "default", "321", "Zed")
    monkeypatch.setenv("OPENCLAW_SKIP_CHANNELS", "1")
    async with live_gateway(tmp_path, gateway_config(fake_tg, fake_llm)) as live:
        assert "channels" not in live.gateway.extensions
        async with connected(live) as client:
            status = await client.call("channels.status", {})
            listed = await client.call("channels.pairing.list", {})
            wrong = await client.request(
                "channels.pairing.approve",
                {"channel": "telegram", "accountId": "default", "requestId": "NOPE2345"},
            )
    assert status["channelAccounts"] == {} and status["channelOrder"] == []
    assert [r["senderId"] for r in listed["requests"]] == ["321"]
    assert not wrong["ok"] and wrong["error"]["code"] == "NOT_FOUND"
    assert fake_tg.requests == []
    cli = run_process(["pairing", "list", "telegram"], gateway_env(tmp_path))
    assert cli.returncode == 0 and "321 (Zed)" in cli.stdout
    bad = run_process(["pairing", "approve", "telegram", "NOPE2345"], gateway_env(tmp_path))
    assert bad.returncode == 1 and "No pending telegram pairing request" in bad.stderr

"""`message.action` through a real gateway: real python-telegram-bot / discord.py against the
fake Bot API / fake Discord, a real WebSocket client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.channels.conftest import gateway_config, telegram_gateway
from tests.channels.test_discord_e2e import discord_runner, fly_guide_config
from tests.fakes import discord as fd
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram
from tests.harness import LiveGateway, connected, live_gateway


def action(
    to: str, text: str = "hello", key: str = "k1", *, verb: str = "send", **extra: Any
) -> dict[str, Any]:
    """What the reference CLI sends for `openclaw message send --channel telegram -t <to>`."""
    params: dict[str, Any] = {"to": to, "message": text, **extra.pop("params", {})}
    return {
        "channel": "telegram",
        "action": verb,
        "params": params,
        "idempotencyKey": key,
        **extra,
    }


async def test_send_to_chat_topic_username_and_reply(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    async with (
        telegram_gateway(tmp_path, gateway_config(fake_tg, fake_llm)) as live,
        connected(live, scopes=["operator.write"]) as client,
    ):
        plain = await client.call("message.action", action("42", "**hi** <there>"))
        topic = await client.call(
            "message.action", action("telegram:-1001234:topic:7", "in the topic", "k2")
        )
        named = await client.call("message.action", action("@news_room", "to a channel", "k3"))
        reply = await client.call(
            "message.action",
            action("42", "a reply", "k4", reply={"replyToId": "100", "source": "explicit"}),
        )
    sent = fake_tg.calls("sendMessage")
    assert [(p["chat_id"], p["text"]) for p in sent] == [
        ("42", "<b>hi</b> &lt;there&gt;"),  # formatted like every other outbound message
        ("-1001234", "in the topic"),
        ("@news_room", "to a channel"),
        ("42", "a reply"),
    ]
    assert sent[1]["message_thread_id"] == "7" and "message_thread_id" not in sent[0]
    assert sent[3]["reply_parameters"]["message_id"] == 100
    assert plain["ok"] is True and plain["channel"] == "telegram"
    assert plain["accountId"] == "default" and plain["chatId"] == "42" and plain["to"] == "42"
    assert plain["messageId"] == plain["messageIds"][0] and plain["messageId"].isdigit()
    assert (topic["chatId"], topic["threadId"]) == ("-1001234", "7")
    assert named["chatId"] == "@news_room" and reply["ok"] is True


async def test_retried_key_is_answered_not_sent_again(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    async with (
        telegram_gateway(tmp_path, gateway_config(fake_tg, fake_llm)) as live,
        connected(live) as client,
        connected(live) as retrying,
    ):
        # Two at once from two connections (a retry while the first may still be sending;
        # tests/gateway/test_idempotency.py pins that case down) and one after.
        first, second = await asyncio.gather(
            client.call("message.action", action("42", "once", "same")),
            retrying.call("message.action", action("42", "once", "same")),
        )
        third = await client.call("message.action", action("42", "once", "same"))
        other = await client.call("message.action", action("42", "twice", "other"))
    assert [p["text"] for p in fake_tg.calls("sendMessage")] == ["once", "twice"]
    assert first == second == third and other["messageId"] != first["messageId"]


async def test_bad_requests_are_refused_by_name_and_nothing_is_sent(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        (action("#general"), "INVALID_REQUEST", "Telegram target '#general'"),
        (action("42; rm -rf"), "INVALID_REQUEST", "is not a chat id"),
        (action("42", verb="poll"), "INVALID_REQUEST", "message action 'poll' is not supported"),
        (action("42", verb="pin"), "INVALID_REQUEST", "(supported: send, edit, delete, react)"),
        (action("42", verb="edit"), "INVALID_REQUEST", "params.messageId: Field required"),
        (
            action("42", verb="react", params={"messageId": "1x"}),
            "INVALID_REQUEST",
            "messageId must be a numeric id",
        ),
        (
            action("42", verb="react", params={"messageId": "5"}),
            "INVALID_REQUEST",
            "emoji is required",
        ),
        (
            action("42", params={"media": "./cat.png"}),
            "INVALID_REQUEST",
            "media attachments are not supported",
        ),
        (action("42", params={"silent": True}), "INVALID_REQUEST", "silent sends"),
        (action("42", "   "), "INVALID_REQUEST", "message must not be empty"),
        (
            action("42", params={"threadId": "x7"}),
            "INVALID_REQUEST",
            "threadId must be a numeric id",
        ),
        ({**action("42"), "channel": "slack"}, "INVALID_REQUEST", "unsupported channel 'slack'"),
        ({**action("42"), "accountId": "nope"}, "NOT_FOUND", "account nope is not configured"),
        (
            {**action("42", params={"accountId": "b"}), "accountId": "a"},
            "INVALID_REQUEST",
            "accountId 'a' does not match params.accountId 'b'",
        ),
        ({"channel": "telegram", "action": "send", "params": {}}, "INVALID_REQUEST", "idempotency"),
        (action("42", params={"to": 42}), "INVALID_REQUEST", "params.to"),
    ]
    async with (
        telegram_gateway(tmp_path, gateway_config(fake_tg, fake_llm)) as live,
        connected(live) as client,
    ):
        answers = [await client.request("message.action", params) for params, _, _ in cases]
    for (_, code, text), res in zip(cases, answers, strict=True):
        assert res["ok"] is False, res
        assert res["error"]["code"] == code, res
        assert text.lower() in res["error"]["message"].lower(), (text, res)
    assert fake_tg.calls("sendMessage") == []


async def test_edit_react_and_delete_a_sent_message(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    async with (
        telegram_gateway(tmp_path, gateway_config(fake_tg, fake_llm)) as live,
        connected(live, scopes=["operator.write"]) as client,
    ):
        sent = await client.call("message.action", action("42", "draft"))
        mid = sent["messageId"]
        ref = {"messageId": mid}
        edited = await client.call(
            "message.action", action("42", "**final**", "e1", verb="edit", params=ref)
        )
        too_long = await client.request(
            "message.action", action("42", "word " * 2000, "e2", verb="edit", params=ref)
        )
        reacted = await client.call(
            "message.action",
            action("42", "", "r1", verb="react", params={**ref, "emoji": "👍"}),
        )
        reaction = list(fake_tg.reactions[("42", int(mid))])
        cleared = await client.call(
            "message.action",
            action("42", "", "r2", verb="react", params={**ref, "remove": True}),
        )
        deleted = await client.call(
            "message.action", action("42", "", "d1", verb="delete", params=ref)
        )
        gone = await client.request(
            "message.action", action("42", "", "d2", verb="delete", params=ref)
        )
    assert [p["text"] for p in fake_tg.calls("editMessageText")] == ["<b>final</b>"]
    assert edited == {
        "ok": True,
        "channel": "telegram",
        "accountId": "default",
        "to": "42",
        "chatId": "42",
        "messageId": mid,
    }
    assert too_long["error"]["code"] == "INVALID_REQUEST"
    assert "an edit must fit one" in too_long["error"]["message"]
    assert reaction == ["👍"] and reacted["added"] == "👍"
    assert fake_tg.reactions[("42", int(mid))] == [] and cleared["removed"] is True
    assert deleted["deleted"] is True and ("42", int(mid)) not in fake_tg.messages
    # The platform's refusal comes back with its own words, not as a success.
    assert gone["ok"] is False and gone["error"]["code"] == "UNAVAILABLE"
    assert "message to delete not found" in gone["error"]["message"].lower()
    assert gone["error"].get("retryable") is False
    assert len(fake_tg.calls("deleteMessage")) == 2


async def test_needs_operator_write(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    async with (
        telegram_gateway(tmp_path, gateway_config(fake_tg, fake_llm)) as live,
        connected(live, scopes=["operator.read"]) as client,
    ):
        res = await client.request("message.action", action("42"))
    assert res["ok"] is False and res["error"]["code"] == "FORBIDDEN", res
    assert "operator.write" in res["error"]["message"]
    assert fake_tg.calls("sendMessage") == []


async def test_account_selection_picks_the_bot(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    second = FakeTelegram(token="654321:SECOND-token")
    await second.start()
    try:
        telegram = {
            "defaultAccount": "alpha",
            "accounts": {
                "alpha": {"botToken": fake_tg.token, "apiRoot": fake_tg.url},
                "beta": {"botToken": second.token, "apiRoot": second.url},
            },
        }
        cfg = gateway_config(fake_tg, fake_llm, telegram)
        del cfg["channels"]["telegram"]["botToken"], cfg["channels"]["telegram"]["apiRoot"]
        async with live_gateway(tmp_path, cfg) as live:
            manager = live.gateway.extensions["channels"]
            for account in ("alpha", "beta"):
                await manager.get("telegram", account).runner.wait_for_status(lambda s: s.connected)
            async with connected(live) as client:
                by_default = await client.call("message.action", action("7", "default bot"))
                by_outer = await client.call(
                    "message.action", {**action("7", "outer", "k2"), "accountId": "beta"}
                )
                by_inner = await client.call(
                    "message.action", action("7", "inner", "k3", params={"accountId": "beta"})
                )
    finally:
        await second.stop()
    assert [p["text"] for p in fake_tg.calls("sendMessage")] == ["default bot"]
    assert [p["text"] for p in second.calls("sendMessage")] == ["outer", "inner"]
    assert (by_default["accountId"], by_outer["accountId"], by_inner["accountId"]) == (
        "alpha",
        "beta",
        "beta",
    )


async def test_no_channel_running_is_unavailable(tmp_path: Path) -> None:
    async with live_gateway(tmp_path, {"gateway": {"mode": "local"}}) as live:
        async with connected(live) as client:
            res = await client.request("message.action", action("42"))
    assert res["ok"] is False and res["error"]["code"] == "UNAVAILABLE", res
    assert res["error"]["details"] == {"method": "message.action"}


# --- Discord ------------------------------------------------------------------------------------


@pytest.fixture
async def discord_live(
    tmp_path: Path, fake_discord_bot: FakeDiscord, fake_llm: FakeLLM
) -> AsyncIterator[LiveGateway]:
    async with live_gateway(tmp_path, fly_guide_config(fake_llm.url)) as live:
        await discord_runner(live).wait_for_status(lambda s: s.connected)
        yield live


async def test_discord_channel_and_user_targets(
    discord_live: LiveGateway, fake_discord_bot: FakeDiscord
) -> None:
    fake = fake_discord_bot

    def on_discord(to: str, text: str, key: str) -> dict[str, Any]:
        return {**action(to, text, key), "channel": "discord"}

    async with connected(discord_live, scopes=["operator.write"]) as client:
        to_channel = await client.call(
            "message.action", on_discord(f"channel:{fd.TEXT_CH}", "to general", "d1")
        )
        to_user = await client.call(
            "message.action", on_discord(f"user:{fd.USER_ID}", "psst", "d2")
        )
        mention = await client.call("message.action", on_discord(f"<@{fd.USER_ID}>", "again", "d3"))
        bad = await client.request("message.action", on_discord("#general", "x", "d4"))
        # The message just posted in the channel: react, edit, un-react, delete.
        where, mid = f"channel:{fd.TEXT_CH}", to_channel["messageId"]
        steps: list[tuple[str, dict[str, Any]]] = [
            ("react", {"emoji": "👍"}),
            ("edit", {"message": "edited"}),
            ("react", {"emoji": "👍", "remove": True}),
            ("delete", {}),
        ]
        for n, (verb, extra) in enumerate(steps):
            await client.call(
                "message.action",
                {
                    **on_discord(where, "", f"m{n}"),
                    "action": verb,
                    "params": {"to": where, "messageId": mid, **extra},
                },
            )
            if verb == "react" and not extra.get("remove"):
                reactions = list(fake.reactions[(str(fd.TEXT_CH), mid)])
            if verb == "edit":
                edited = fake.messages[(str(fd.TEXT_CH), mid)]
    posted = fake.rest_calls("POST", f"/channels/{fd.TEXT_CH}/messages")
    assert [p["json"]["content"] for p in posted] == ["to general"]
    dms = fake.rest_calls("POST", "/users/@me/channels")
    assert dms and {str(d["json"]["recipient_id"]) for d in dms} == {str(fd.USER_ID)}
    in_dm = fake.rest_calls("POST", f"/channels/{fd.DM_CH}/messages")
    assert [p["json"]["content"] for p in in_dm] == ["psst", "again"]
    assert to_channel["chatId"] == str(fd.TEXT_CH)
    assert to_user["chatId"] == mention["chatId"] == str(fd.DM_CH)
    assert to_user["to"] == f"user:{fd.USER_ID}"
    assert bad["ok"] is False and bad["error"]["code"] == "INVALID_REQUEST"
    assert "names are not looked up" in bad["error"]["message"]
    assert reactions == ["👍"] and fake.reactions[(str(fd.TEXT_CH), mid)] == []
    assert edited == "edited" and (str(fd.TEXT_CH), mid) not in fake.messages

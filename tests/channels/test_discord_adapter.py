"""The Discord adapter with the real discord.py client against the fake Discord on loopback."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest

from channels.base import AccountStatus, InboundMessage, OutboundTarget, Transport
from channels.discord import (
    BAD_TOKEN_ERROR,
    INTENT_ERROR,
    MISSING_TOKEN_ERROR,
    DiscordChannel,
    apply_api_url,
    resolve_token,
)
from gateway.config.models import DiscordConfig, SecretRef
from gateway.config.secrets import SecretError
from gateway.logs import ConsoleFormatter
from tests.fakes import discord as fd
from tests.fakes.discord import FakeDiscord


class Inbox:
    """The `on_message` callback: queues what the pipeline would receive."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[InboundMessage, Transport]] = asyncio.Queue()

    async def __call__(self, msg: InboundMessage, transport: Transport) -> None:
        await self.queue.put((msg, transport))

    async def next(self, timeout: float = 5.0) -> InboundMessage:
        msg, _transport = await asyncio.wait_for(self.queue.get(), timeout)
        return msg


@pytest.fixture
def fake(fake_discord: FakeDiscord) -> FakeDiscord:
    return fake_discord


def make_channel(inbox: Inbox, token: str = fd.TOKEN) -> DiscordChannel:
    return DiscordChannel(
        gateway=None,
        account_id="default",
        token=token,
        config=DiscordConfig(),
        on_message=inbox,
    )


@pytest.fixture
async def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
async def channel(fake: FakeDiscord, inbox: Inbox) -> AsyncIterator[DiscordChannel]:
    ch = make_channel(inbox)
    await ch.start()
    await ch.wait_for_status(lambda s: s.connected)
    yield ch
    await ch.stop()


def connected(s: AccountStatus) -> bool:
    return s.connected


# --- startup --------------------------------------------------------------------------------


async def test_login_line_status_intents_and_no_token_in_logs(
    fake: FakeDiscord, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ch = make_channel(inbox)
    await ch.start()
    assert ch.status().running  # start() returned before login finished
    st = await ch.wait_for_status(connected)
    try:
        assert (st.bot_id, st.bot_name, st.last_error) == ("900", "clawbot", None)
        assert st.configured and st.last_connected_at
        assert st.extra["mode"] == "gateway" and st.extra["lastStartAt"]
        lines = [ConsoleFormatter().format(r).split(" ", 1)[1] for r in caplog.records]
        assert lines.count("[discord] logged in to discord as 900 (clawbot)") == 1
        assert "[discord] [default] starting provider" in lines
        # discord.py's own records are shown under [discord], never as [gateway]/[client].
        assert not [r for r in caplog.records if r.name.startswith("discord.")]
        assert all(fd.TOKEN not in caplog.text for _ in [0])
        identify = (await fake.wait_op(2))["d"]
        assert identify["token"] == fd.TOKEN
        assert identify["intents"] & (1 << 15), "Message Content intent"
        assert identify["intents"] & (1 << 9) and identify["intents"] & (1 << 12)
        login = fake.rest_calls("GET", "/users/@me")[0]
        assert login["headers"]["Authorization"] == f"Bot {fd.TOKEN}"
    finally:
        await ch.stop()
    assert not ch.status().running and not ch.status().connected
    assert fake.connected_sockets == 0


async def test_bad_token_is_one_clear_error_and_not_running(
    fake: FakeDiscord, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    ch = make_channel(inbox, token="WRONG.TOKEN-abcdef")
    await ch.start()
    st = await ch.wait_for_status(lambda s: not s.running)
    assert st.last_error == BAD_TOKEN_ERROR and not st.connected
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [BAD_TOKEN_ERROR]
    assert "WRONG.TOKEN" not in caplog.text
    assert fake.connected_sockets == 0 and not fake.ops(2)
    await ch.stop()


async def test_missing_token_fails_without_connecting(fake: FakeDiscord, inbox: Inbox) -> None:
    ch = make_channel(inbox, token="")
    await ch.start()
    st = ch.status()
    assert not st.running and not st.configured
    assert st.last_error == MISSING_TOKEN_ERROR and "DISCORD_BOT_TOKEN" in st.last_error
    assert not fake.requests
    why = "channels.discord.token: environment variable MY_TOKEN is not set"
    ch2 = DiscordChannel(
        gateway=None,
        account_id="default",
        token=None,
        config=DiscordConfig(),
        on_message=inbox,
        token_error=why,
    )
    await ch2.start()
    assert ch2.status().last_error == why and not ch2.status().running


async def test_privileged_intent_refused_4014(channel: DiscordChannel, fake: FakeDiscord) -> None:
    await fake.drop_sockets(4014)
    st = await channel.wait_for_status(lambda s: not s.running)
    assert st.last_error == INTENT_ERROR


async def test_non_loopback_http_api_url_is_refused(
    fake: FakeDiscord, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISCORD_API_URL", "http://discord.example.com/api/v10")
    ch = make_channel(inbox)
    await ch.start()
    st = await ch.wait_for_status(lambda s: not s.running)
    assert st.last_error and "loopback" in st.last_error
    assert not fake.requests


async def test_unreachable_at_start_retries_then_connects(
    fake: FakeDiscord, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DiscordChannel, "restart_cap_s", 0.05)
    fake.fail_next("GET", "/gateway", 503, {"message": "down"})
    ch = make_channel(inbox)
    await ch.start()
    try:
        st = await ch.wait_for_status(lambda s: s.last_error is not None)
        assert st.running and "503" in (st.last_error or "")
        await ch.wait_for_status(connected)
        assert ch.status().last_error is None
    finally:
        await ch.stop()


def test_resolve_token_precedence() -> None:
    env = {"DISCORD_BOT_TOKEN": "env-token", "MY_TOKEN": "ref-token"}
    assert resolve_token(DiscordConfig(token="cfg-token"), env) == "cfg-token"
    ref = SecretRef(source="env", id="MY_TOKEN")
    assert resolve_token(DiscordConfig(token=ref), env) == "ref-token"
    assert resolve_token(DiscordConfig(), env) == "env-token"
    assert resolve_token(DiscordConfig(token="Bot abc.def "), {}) == "abc.def"
    assert resolve_token(DiscordConfig(), {}) is None
    with pytest.raises(SecretError, match=r"channels\.discord\.token"):
        resolve_token(DiscordConfig(token=SecretRef(source="env", id="UNSET_VAR")), {})


async def test_apply_api_url_none_restores_discord() -> None:
    await apply_api_url(None)
    assert discord.http.Route.BASE == "https://discord.com/api/v10"
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY).startswith("wss://gateway")


# --- inbound mapping ------------------------------------------------------------------------


async def test_dm_maps_to_direct(channel: DiscordChannel, fake: FakeDiscord, inbox: Inbox) -> None:
    sent = await fake.message_create(fd.message("hi bot", fd.DM_CH, fd.user()))
    msg = await inbox.next()
    assert msg.channel == "discord" and msg.account_id == "default"
    assert (msg.chat_type, msg.chat_id, msg.message_id) == ("direct", str(fd.DM_CH), sent["id"])
    assert (msg.sender_id, msg.sender_name, msg.sender_username) == ("42", "Ann", "ann")
    assert msg.text == "hi bot" and msg.guild_id is None and msg.thread_id is None
    assert not (msg.from_self or msg.sender_is_bot or msg.mentioned or msg.reply_to_bot)
    assert msg.timestamp_ms > 0
    assert channel.status().last_inbound_at


async def test_guild_message_with_and_without_mention(
    channel: DiscordChannel, fake: FakeDiscord, inbox: Inbox
) -> None:
    g = fd.GUILD_ID
    await fake.message_create(fd.message("chatter", fd.TEXT_CH, guild_id=g, roles=[fd.USER_ROLE]))
    await fake.message_create(
        fd.message(f"<@{fd.BOT_ID}> ping", fd.TEXT_CH, guild_id=g, mentions=[fd.BOT_USER])
    )
    await fake.message_create(
        fd.message(
            f"<@&{fd.BOT_ROLE}> all bots", fd.TEXT_CH, guild_id=g, mention_roles=[fd.BOT_ROLE]
        )
    )
    await fake.message_create(
        fd.message(
            f"<@&{fd.USER_ROLE}> friends", fd.TEXT_CH, guild_id=g, mention_roles=[fd.USER_ROLE]
        )
    )
    plain, direct, role, other_role = [await inbox.next() for _ in range(4)]
    assert (plain.chat_type, plain.chat_id, plain.guild_id) == ("channel", "555", "100")
    assert (plain.chat_name, plain.guild_name) == ("general", "Test Guild")
    assert plain.member_role_ids == (str(fd.USER_ROLE),) and not plain.mentioned
    assert direct.mentioned and direct.text == f"<@{fd.BOT_ID}> ping"
    assert role.mentioned
    assert not other_role.mentioned


async def test_thread_message_has_parent(
    channel: DiscordChannel, fake: FakeDiscord, inbox: Inbox
) -> None:
    await fake.message_create(fd.message("in thread", fd.THREAD_CH, guild_id=fd.GUILD_ID))
    msg = await inbox.next()
    assert msg.chat_type == "channel"
    assert (msg.chat_id, msg.thread_id, msg.parent_chat_id) == ("558", "558", "555")
    assert msg.chat_name == "side-topic"


async def test_own_and_bot_messages_are_flagged(
    channel: DiscordChannel, fake: FakeDiscord, inbox: Inbox
) -> None:
    await fake.message_create(fd.message("loop?", fd.DM_CH, fd.BOT_USER))
    await fake.message_create(fd.message("beep", fd.DM_CH, fd.user(5, "otherbot", bot=True)))
    own, other = await inbox.next(), await inbox.next()
    assert own.from_self and own.sender_is_bot
    assert other.sender_is_bot and not other.from_self


async def test_reply_to_bot_is_implicit_not_explicit_mention(
    channel: DiscordChannel, fake: FakeDiscord, inbox: Inbox
) -> None:
    bot_said = fd.message("earlier answer", fd.TEXT_CH, fd.BOT_USER, guild_id=fd.GUILD_ID)
    # Discord puts the replied-to author in `mentions` when the reply pings: still not explicit.
    await fake.message_create(fd.reply_to(bot_said, "and then?", mentions=[fd.BOT_USER]))
    msg = await inbox.next()
    assert msg.reply_to_bot and not msg.mentioned
    assert (msg.reply_to_id, msg.reply_to_text) == (bot_said["id"], "earlier answer")
    assert msg.reply_to_sender == "clawbot"


async def test_system_and_command_echo_messages_are_skipped(
    channel: DiscordChannel, fake: FakeDiscord, inbox: Inbox
) -> None:
    g = fd.GUILD_ID
    await fake.message_create(fd.message("", fd.TEXT_CH, guild_id=g, type=7))  # member join
    await fake.message_create(fd.message("/status", fd.TEXT_CH, guild_id=g, type=20))
    await fake.message_create(fd.message("real", fd.TEXT_CH, guild_id=g))
    assert (await inbox.next()).text == "real"  # events are handled in order


async def test_attachment_only_message_carries_the_file(
    channel: DiscordChannel, fake: FakeDiscord, inbox: Inbox, tmp_path: Path
) -> None:
    att = fake.attachment("cat.png", b"\x89PNG-bytes", "image/png")
    await fake.message_create(fd.message("", fd.DM_CH, attachments=[att]))
    msg = await inbox.next()
    assert msg.text == "" and msg.text_with_placeholders == "<media:image>"
    [got] = msg.attachments
    assert (got.kind, got.name, got.mime, got.size) == ("image", "cat.png", "image/png", 10)
    await got.fetch(tmp_path / "cat.png")  # through discord.py's Attachment.read
    assert (tmp_path / "cat.png").read_bytes() == b"\x89PNG-bytes"


async def test_failing_handler_does_not_break_the_client(
    fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []
    both = asyncio.Event()

    async def handler(msg: InboundMessage, transport: Transport) -> None:
        seen.append(msg.text)
        if len(seen) == 2:
            both.set()
        if msg.text == "boom":
            raise RuntimeError("pipeline exploded")

    ch = DiscordChannel(
        gateway=None,
        account_id="default",
        token=fd.TOKEN,
        config=DiscordConfig(),
        on_message=handler,
    )
    await ch.start()
    try:
        await ch.wait_for_status(connected)
        await fake.message_create(fd.message("boom", fd.DM_CH))
        await fake.message_create(fd.message("fine", fd.DM_CH))
        await asyncio.wait_for(both.wait(), 5)
        assert seen == ["boom", "fine"]
    finally:
        await ch.stop()
    assert any("handling discord message" in r.getMessage() for r in caplog.records)


# --- outbound -------------------------------------------------------------------------------


async def test_send_text_with_reply_reference(channel: DiscordChannel, fake: FakeDiscord) -> None:
    target = OutboundTarget(chat_id=str(fd.TEXT_CH), reply_to_message_id="12345")
    sent = await channel.transport.send_text(target, "hello **there**")
    post = await fake.wait_rest("POST", f"/channels/{fd.TEXT_CH}/messages")
    body = post["json"]
    assert body["content"] == "hello **there**"
    assert str(body["message_reference"]["message_id"]) == "12345"
    assert body["message_reference"]["fail_if_not_exists"] is False
    # discord.py omits replied_user unless it is true: the reply does not ping its author.
    assert not body["allowed_mentions"].get("replied_user")
    assert body["allowed_mentions"]["parse"] == ["users"]
    assert body["flags"] & (1 << 2), "SUPPRESS_EMBEDS"
    assert sent.message_id.isdigit()
    plain = await channel.transport.send_text(OutboundTarget(chat_id=str(fd.DM_CH)), "no reply")
    post2 = await fake.wait_rest("POST", f"/channels/{fd.DM_CH}/messages")
    assert "message_reference" not in post2["json"] and plain.message_id != sent.message_id
    assert channel.status().last_outbound_at


async def test_send_into_thread(channel: DiscordChannel, fake: FakeDiscord) -> None:
    target = OutboundTarget(chat_id=str(fd.THREAD_CH), thread_id=str(fd.THREAD_CH))
    await channel.transport.send_text(target, "in the thread")
    await fake.wait_rest("POST", f"/channels/{fd.THREAD_CH}/messages")


async def test_typing(channel: DiscordChannel, fake: FakeDiscord) -> None:
    await channel.transport.send_typing(OutboundTarget(chat_id=str(fd.DM_CH)))
    await fake.wait_rest("POST", f"/channels/{fd.DM_CH}/typing")
    # Best effort: a failing typing call never raises.
    fake.fail_next("POST", f"/channels/{fd.DM_CH}/typing", 403, {"message": "Missing Access"})
    await channel.transport.send_typing(OutboundTarget(chat_id=str(fd.DM_CH)))


async def test_outbound_429_is_retried_after_retry_after(
    channel: DiscordChannel, fake: FakeDiscord
) -> None:
    path = f"/channels/{fd.DM_CH}/messages"
    fake.rate_limit_next("POST", path, retry_after=0.3)
    t0 = time.monotonic()
    await channel.transport.send_text(OutboundTarget(chat_id=str(fd.DM_CH)), "eventually")
    assert time.monotonic() - t0 >= 0.3
    calls = fake.rest_calls("POST", path)
    assert len(calls) == 2 and calls[1]["json"]["content"] == "eventually"


async def test_send_without_client_raises(fake: FakeDiscord, inbox: Inbox) -> None:
    from channels.discord import ChannelNotConnected

    ch = make_channel(inbox)
    with pytest.raises(ChannelNotConnected):
        await ch.transport.send_text(OutboundTarget(chat_id="1"), "x")


# --- resilience -----------------------------------------------------------------------------


async def test_socket_drop_resumes_and_keeps_delivering(
    channel: DiscordChannel, fake: FakeDiscord, inbox: Inbox
) -> None:
    await fake.drop_sockets(4000)
    resume = await fake.wait_op(6)
    assert resume["d"]["session_id"] == fake.session_id
    st = await channel.wait_for_status(lambda s: s.connected and s.reconnects == 1)
    assert st.running
    await fake.message_create(fd.message("after resume", fd.DM_CH))
    assert (await inbox.next()).text == "after resume"


async def test_outage_backs_off_then_reconnects(
    channel: DiscordChannel, fake: FakeDiscord, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fake.refuse_websocket(1)
    await fake.drop_sockets(4000)
    await channel.wait_for_status(lambda s: not s.connected)
    await fake.wait_until(lambda rs: any(r["kind"] == "ws-refused" for r in rs))
    # discord.py's back-off (first delay < 2 s), then RESUME on the loopback resume URL.
    await channel.wait_for_status(connected, timeout_s=10)
    await fake.message_create(fd.message("back", fd.DM_CH))
    assert (await inbox.next()).text == "back"
    lost = [r for r in caplog.records if "gateway connection lost" in r.getMessage()]
    assert lost and all(r.exc_info is None and r.name == "channels.discord" for r in lost)


def test_discordpy_reconnect_backoff_is_capped() -> None:
    import discord.client

    from channels.discord.library import RECONNECT_CAP_S, configure_library

    configure_library()
    backoff = vars(discord.client)["ExponentialBackoff"]()  # what Client.connect() builds
    delays = [backoff.delay() for _ in range(15)]  # uncapped, the 11th could reach 1024 s
    assert max(delays) <= RECONNECT_CAP_S


class _Waiter(logging.Handler):
    """Sets an event when a record containing `needle` is logged."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.seen.set()


async def test_ready_wait_timeout_warns_once(
    fake: FakeDiscord, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DiscordChannel, "ready_warning_s", 0.1)
    fake.hold_ready = True
    waiter = _Waiter("gateway READY wait timed out after 100ms")
    logger = logging.getLogger("channels.discord")
    logger.addHandler(waiter)
    ch = make_channel(inbox)
    try:
        await ch.start()
        await fake.wait_op(2)
        await asyncio.wait_for(waiter.seen.wait(), 5)
        st = ch.status()
        assert st.running and not st.connected
    finally:
        logger.removeHandler(waiter)
        await ch.stop()


async def test_uncached_thread_is_fetched_for_its_parent(
    channel: DiscordChannel, fake: FakeDiscord, inbox: Inbox
) -> None:
    fake.rest_channels["560"] = fd.thread_channel(560, "new-topic")
    await fake.message_create(fd.message("fresh thread", 560, guild_id=fd.GUILD_ID))
    msg = await inbox.next()
    assert (msg.chat_id, msg.thread_id, msg.parent_chat_id) == ("560", "560", "555")
    assert msg.chat_name == "new-topic" and msg.guild_id == "100"
    await fake.message_create(fd.message("unknown room", 561, guild_id=fd.GUILD_ID))
    gone = await inbox.next()  # REST 404: still delivered, without a name (policy decides)
    assert (gone.chat_id, gone.chat_name, gone.thread_id) == ("561", None, None)

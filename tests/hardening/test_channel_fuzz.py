"""Fuzz channel input: garbage Telegram updates and Discord dispatches through the real libraries.

Each case serves random or malformed input through the fakes to the real python-telegram-bot /
discord.py stacks in a live gateway, then checks three things: a valid DM sent after the
garbage is still answered (the channel kept polling / reading), the account is still
connected, and a neighbour WebSocket client's `health` still answers.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes import discord as fd
from tests.hardening.channel_rig import ChannelRig, channel_rig
from tests.hardening.fuzzcount import COUNTS

Json = dict[str, Any]
CASES = 120  # per platform; the suite stays bounded (each case is a real round trip)
SETTINGS = settings(
    max_examples=CASES,
    deadline=None,
    derandomize=True,  # reproducible in CI; the seed is the test's name
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

# Lone surrogates are legal in JSON text (`"\ud800"`), so Telegram's JSON may carry them.
chars = st.characters() | st.characters(categories=["Cs"])
text = st.text(chars, max_size=40)
scalar = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_value = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=10,
)
small_id = st.integers(min_value=-99_999, max_value=99_999)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key/index path into a JSON value (for targeted mutations)."""
    if isinstance(value, dict):
        for key, sub in value.items():
            yield (*prefix, key)
            yield from _paths(sub, (*prefix, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield (*prefix, i)
            yield from _paths(sub, (*prefix, i))


@st.composite
def mutated(draw: st.DrawFn, base: Json, protect: frozenset[str] = frozenset()) -> Json:
    """`base` with 1–4 fields deleted or replaced by values of the wrong type."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(doc) if p[0] not in protect]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["delete", "replace", "replace", "huge"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "huge":
            parent[path[-1]] = "x" * draw(st.integers(5_000, 200_000))
        else:
            parent[path[-1]] = draw(json_value)
    return doc


# --- Telegram -------------------------------------------------------------------------------

ENTITY_TYPES = [
    "mention",
    "hashtag",
    "bot_command",
    "url",
    "text_link",
    "text_mention",
    "pre",
    "code",
    "bold",
    "custom_emoji",
    "blockquote",
    "spoiler",
    "made_up_kind",
]


def tg_message(chat_id: int, user_id: int, body: str, chat_type: str = "private") -> Json:
    chat: Json = {"id": chat_id, "type": chat_type, "first_name": "Fuzz"}
    if chat_type != "private":
        chat["title"] = "fuzz group"
    return {
        "message_id": abs(chat_id) + 1,
        "date": int(time.time()),
        "chat": chat,
        "from": {"id": user_id, "is_bot": False, "first_name": "Fuzz"},
        "text": body,
    }


@st.composite
def tg_entities(draw: st.DrawFn, length: int) -> list[Json]:
    out: list[Json] = []
    for _ in range(draw(st.integers(1, 5))):
        entity: Json = {
            "type": draw(st.sampled_from(ENTITY_TYPES)),
            "offset": draw(st.integers(-5, length + 10)),
            "length": draw(st.integers(-5, length + 10)),
        }
        if entity["type"] == "text_mention" and draw(st.booleans()):
            entity["user"] = draw(
                st.sampled_from([{"id": 7000001, "is_bot": True, "first_name": "Claw"}, {}, None])
            )
        if entity["type"] == "text_link":
            entity["url"] = draw(text)
        out.append(entity)
    return out


@st.composite
def tg_update(draw: st.DrawFn) -> tuple[str, Json]:
    """(strategy name, update without `update_id`, which the fake assigns)."""
    chat_id, user_id = draw(small_id), draw(small_id)
    chat_type = draw(st.sampled_from(["private", "group", "supergroup", "channel", "secret"]))
    kind = draw(
        st.sampled_from(["mutated", "entities", "unicode", "huge", "other kinds", "random"])
    )
    if kind == "mutated":
        base = {"message": tg_message(chat_id, user_id, draw(text), chat_type)}
        key = draw(st.sampled_from(["message", "edited_message", "channel_post"]))
        return kind, draw(mutated({key: base["message"]}))
    if kind == "entities":
        body = draw(text)
        msg = tg_message(chat_id, user_id, "/" + body if draw(st.booleans()) else body, chat_type)
        msg[draw(st.sampled_from(["entities", "caption_entities"]))] = draw(tg_entities(len(body)))
        return kind, {"message": msg}
    if kind == "unicode":
        return kind, {"message": tg_message(chat_id, user_id, draw(st.text(chars, min_size=1)))}
    if kind == "huge":
        body = draw(st.sampled_from(["a", "é", "\U0001f600", "\ud83d"])) * draw(
            st.integers(4_000, 100_000)
        )
        return kind, {"message": tg_message(chat_id, user_id, body)}
    if kind == "other kinds":
        name = draw(
            st.sampled_from(
                ["callback_query", "my_chat_member", "inline_query", "poll", "message_reaction"]
            )
            | text
        )
        return kind, {name: draw(json_value)}
    # random: any JSON object (Telegram adds update_id)
    return kind, draw(st.dictionaries(text, json_value, max_size=4))


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChannelRig]:
    with channel_rig(Path(tmp_path_factory.mktemp("channel-fuzz"))) as r:
        yield r


@pytest.fixture(autouse=True)
def _rig_env(rig: ChannelRig, monkeypatch: pytest.MonkeyPatch) -> None:
    # tests/conftest.py clears DISCORD_API_URL per test, after the module's rig started: a
    # client restart would then dial the real discord.com. Give the rig its fake back.
    monkeypatch.setenv("DISCORD_API_URL", rig.dc.api_base)
    monkeypatch.setenv("DISCORD_BOT_TOKEN", rig.dc.token)


@SETTINGS
@given(batch=st.lists(tg_update(), min_size=1, max_size=3))
def test_telegram_garbage_updates_never_stop_polling(
    rig: ChannelRig, batch: list[tuple[str, Json]]
) -> None:
    for kind, update in batch:
        update.pop("update_id", None)
        rig.run(_push(rig, update))
        COUNTS[f"  telegram update: {kind}"] += 1
    COUNTS["telegram updates (garbage, then a valid DM)"] += len(batch)
    rig.run(rig.telegram_sentinel())
    rig.run(rig.neighbour_health())
    assert rig.channel("telegram").status().connected


async def _push(rig: ChannelRig, update: Json) -> None:
    rig.tg.push_update(update)


# --- Discord --------------------------------------------------------------------------------

DISPATCH_EVENTS = [
    "MESSAGE_CREATE",
    "MESSAGE_UPDATE",
    "MESSAGE_DELETE",
    "MESSAGE_DELETE_BULK",
    "MESSAGE_REACTION_ADD",
    "CHANNEL_CREATE",
    "CHANNEL_UPDATE",
    "THREAD_CREATE",
    "TYPING_START",
    "GUILD_MEMBER_UPDATE",
    "GUILD_ROLE_CREATE",
    "PRESENCE_UPDATE",
    "INTERACTION_CREATE",
    "USER_UPDATE",
    "NOT_A_REAL_EVENT",
]


@st.composite
def dc_dispatch(draw: st.DrawFn) -> tuple[str, str, Any]:
    """(strategy name, event, payload). READY/RESUMED are left out: they are the session
    handshake, not content, and a fresh READY legitimately replaces the client's state."""
    kind = draw(st.sampled_from(["message", "message", "event", "shape"]))
    author = fd.user(draw(st.integers(1, 99_999)), "fuzz", bot=draw(st.booleans()))
    if kind == "message":
        guild = draw(st.booleans())
        base = fd.message(
            draw(text),
            fd.TEXT_CH if guild else draw(st.integers(1, 99_999)),
            author,
            guild_id=fd.GUILD_ID if guild else None,
            mentions=[fd.BOT_USER] if draw(st.booleans()) else [],
        )
        if draw(st.booleans()):
            base["referenced_message"] = copy.deepcopy(base)
            base["type"] = 19
        return kind, "MESSAGE_CREATE", draw(mutated(base))
    if kind == "event":
        event = draw(st.sampled_from(DISPATCH_EVENTS))
        base = fd.message(draw(text), fd.TEXT_CH, author, guild_id=fd.GUILD_ID)
        return kind, event, draw(mutated(base) | st.dictionaries(text, json_value, max_size=4))
    # payloads of the wrong shape altogether (null, a list, a string) for real events
    return kind, draw(st.sampled_from(DISPATCH_EVENTS)), draw(json_value)


@SETTINGS
@given(batch=st.lists(dc_dispatch(), min_size=1, max_size=3))
def test_discord_garbage_dispatches_never_stop_the_client(
    rig: ChannelRig, batch: list[tuple[str, str, Any]]
) -> None:
    for kind, event, payload in batch:
        rig.run(rig.dc.dispatch(event, payload))
        COUNTS[f"  discord dispatch: {kind}"] += 1
    COUNTS["discord dispatches (garbage, then a valid DM)"] += len(batch)
    rig.run(rig.discord_sentinel())
    rig.run(rig.neighbour_health())
    assert rig.channel("discord").status().connected
    assert len(rig.dc.ops(2)) == 1, "the client was restarted (a second IDENTIFY)"


# --- regressions found by the targets above ------------------------------------------------


def test_regression_unreadable_telegram_update_is_skipped_and_confirmed(rig: ChannelRig) -> None:
    # `"from": {}` made PTB's batch parse raise TypeError out of getUpdates: the polling task
    # died and the update was never confirmed.
    bad = tg_message(4242, 4242, "hi")
    bad["from"] = {}
    uid = rig.run(_push_id(rig, {"message": bad}))
    rig.run(rig.telegram_sentinel())
    assert int(rig.tg.polls[-1].get("offset") or 0) > uid


async def _push_id(rig: ChannelRig, update: Json) -> int:
    return rig.tg.push_update(update)


def test_regression_null_discord_dispatch_keeps_the_session(rig: ChannelRig) -> None:
    # A MESSAGE_CREATE with `d: null` raised TypeError in discord.py's parser, which ended
    # Client.connect: a 2 s restart with a fresh IDENTIFY, losing messages meanwhile.
    identifies = len(rig.dc.ops(2))
    rig.run(rig.dc.dispatch("MESSAGE_CREATE", None))  # type: ignore[arg-type]  # the point
    rig.run(rig.discord_sentinel())
    assert len(rig.dc.ops(2)) == identifies


def test_neighbour_health_stayed_fast(rig: ChannelRig) -> None:
    """Runs after the fuzz targets (file order): the gateway served others throughout."""
    assert rig.health_ms, "fuzz targets did not run"
    ordered = sorted(rig.health_ms)
    assert ordered[len(ordered) // 2] < 50, ordered[-5:]

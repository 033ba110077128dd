from __future__ import annotations

from typing import Any

import pytest

from gateway.agents.session_keys import (
    agent_id_from_session_key,
    build_session_key,
    canonical_session_key,
    main_session_key,
    may_update_last_route,
    parse_session_key,
    resolve_linked_peer,
)

LINKS = {"Alice": ["telegram:123", "discord:999"], "bob": ["777"]}

BUILD_ROWS: list[tuple[str, dict[str, Any], str]] = [
    ("dm main (default)", {"channel": "discord", "peer_id": "999"}, "agent:main:main"),
    (
        "dm per-peer",
        {"channel": "discord", "peer_id": "999", "dm_scope": "per-peer"},
        "agent:main:direct:999",
    ),
    (
        "dm per-channel-peer",
        {"channel": "Discord", "peer_id": "999", "dm_scope": "per-channel-peer"},
        "agent:main:discord:direct:999",
    ),
    (
        "dm per-account-channel-peer, default account",
        {"channel": "telegram", "peer_id": "123", "dm_scope": "per-account-channel-peer"},
        "agent:main:telegram:default:direct:123",
    ),
    (
        "dm per-account-channel-peer, named account",
        {
            "channel": "telegram",
            "peer_id": "123",
            "account_id": "Work Bot",
            "dm_scope": "per-account-channel-peer",
        },
        "agent:main:telegram:work-bot:direct:123",
    ),
    (
        "dm peer id lowercased",
        {"channel": "slack", "peer_id": "U12AB", "dm_scope": "per-peer"},
        "agent:main:direct:u12ab",
    ),
    (
        "dm without peer id → main",
        {"channel": "discord", "peer_id": "", "dm_scope": "per-peer"},
        "agent:main:main",
    ),
    (
        "dm identity link replaces id (channel-scoped entry)",
        {
            "channel": "telegram",
            "peer_id": "123",
            "dm_scope": "per-peer",
            "identity_links": LINKS,
        },
        "agent:main:direct:alice",
    ),
    (
        "dm identity link works across channels",
        {
            "channel": "discord",
            "peer_id": "999",
            "dm_scope": "per-channel-peer",
            "identity_links": LINKS,
        },
        "agent:main:discord:direct:alice",
    ),
    (
        "dm identity link with bare id entry",
        {"channel": "discord", "peer_id": "777", "dm_scope": "per-peer", "identity_links": LINKS},
        "agent:main:direct:bob",
    ),
    (
        "identity link ignored for dmScope main",
        {"channel": "telegram", "peer_id": "123", "identity_links": LINKS},
        "agent:main:main",
    ),
    (
        "unlinked peer keeps its id",
        {"channel": "telegram", "peer_id": "555", "dm_scope": "per-peer", "identity_links": LINKS},
        "agent:main:direct:555",
    ),
    (
        "legacy dm kind",
        {"channel": "discord", "peer_kind": "dm", "peer_id": "9", "dm_scope": "per-peer"},
        "agent:main:direct:9",
    ),
    (
        "discord guild channel",
        {"channel": "discord", "peer_kind": "channel", "peer_id": "C42"},
        "agent:main:discord:channel:c42",
    ),
    (
        "discord thread = its own channel id, no suffix",
        {"channel": "discord", "peer_kind": "channel", "peer_id": "T77"},
        "agent:main:discord:channel:t77",
    ),
    (
        "telegram group",
        {"channel": "telegram", "peer_kind": "group", "peer_id": "-100123"},
        "agent:main:telegram:group:-100123",
    ),
    (
        "telegram forum topic",
        {"channel": "telegram", "peer_kind": "group", "peer_id": "-100123", "topic_id": "7"},
        "agent:main:telegram:group:-100123:topic:7",
    ),
    (
        "slack thread suffix",
        {"channel": "slack", "peer_kind": "channel", "peer_id": "C1", "thread_id": "1700.1"},
        "agent:main:slack:channel:c1:thread:1700.1",
    ),
    (
        "group scope main collapses groups",
        {"channel": "telegram", "peer_kind": "group", "peer_id": "-1", "group_scope": "main"},
        "agent:main:main",
    ),
    (
        "group scope main collapses channels",
        {"channel": "discord", "peer_kind": "channel", "peer_id": "c", "group_scope": "main"},
        "agent:main:main",
    ),
    (
        "group without id",
        {"channel": "telegram", "peer_kind": "group", "peer_id": None},
        "agent:main:telegram:group:unknown",
    ),
    (
        "missing channel",
        {"channel": "", "peer_kind": "group", "peer_id": "g"},
        "agent:main:unknown:group:g",
    ),
    (
        "agent id normalised",
        {"agent_id": " Work Bot ", "channel": "discord", "peer_id": "1"},
        "agent:work-bot:main",
    ),
    (
        "dm scope does not affect groups",
        {"channel": "telegram", "peer_kind": "group", "peer_id": "-5", "dm_scope": "per-peer"},
        "agent:main:telegram:group:-5",
    ),
]


@pytest.mark.parametrize(("name", "kwargs", "expected"), BUILD_ROWS, ids=[r[0] for r in BUILD_ROWS])
def test_build_session_key(name: str, kwargs: dict[str, Any], expected: str) -> None:
    params = {"agent_id": "main", **kwargs}
    key = build_session_key(**params)
    assert key == expected
    assert key == key.lower()


PARSE_ROWS: list[tuple[str, dict[str, Any] | None]] = [
    ("agent:main:main", {"agent_id": "main", "kind": "main", "is_main": True}),
    ("AGENT:Main:Main", {"agent_id": "main", "kind": "main"}),
    ("agent:main:direct:999", {"kind": "direct", "peer_id": "999", "channel": None}),
    (
        "agent:main:discord:direct:999",
        {"kind": "direct", "channel": "discord", "peer_id": "999", "is_channel_scoped_dm": True},
    ),
    (
        "agent:w:telegram:work:direct:123",
        {"agent_id": "w", "kind": "direct", "channel": "telegram", "account_id": "work"},
    ),
    (
        "agent:main:telegram:group:-100:topic:7",
        {"kind": "group", "channel": "telegram", "peer_id": "-100", "topic_id": "7"},
    ),
    (
        "agent:main:discord:channel:c1",
        {"kind": "channel", "channel": "discord", "peer_id": "c1", "chat_type": "channel"},
    ),
    (
        "agent:main:slack:channel:c1:thread:17",
        {"kind": "channel", "peer_id": "c1", "thread_id": "17"},
    ),
    ("agent:main:cron:job1", {"kind": "other", "rest": "cron:job1"}),
    ("global", None),
    ("agent:main", None),
    ("agent::main", None),
    ("agent:main:", None),
    ("", None),
    ("cron:abc", None),
]


@pytest.mark.parametrize(("key", "expected"), PARSE_ROWS, ids=[r[0] or "empty" for r in PARSE_ROWS])
def test_parse_session_key(key: str, expected: dict[str, Any] | None) -> None:
    parsed = parse_session_key(key)
    if expected is None:
        assert parsed is None
        return
    assert parsed is not None
    for attr, value in expected.items():
        assert getattr(parsed, attr) == value, attr


@pytest.mark.parametrize(("name", "kwargs", "expected"), BUILD_ROWS, ids=[r[0] for r in BUILD_ROWS])
def test_every_built_key_parses_back(name: str, kwargs: dict[str, Any], expected: str) -> None:
    parsed = parse_session_key(expected)
    assert parsed is not None
    assert parsed.kind != "other"
    assert parsed.key == expected


def test_main_key_and_agent_lookup() -> None:
    assert main_session_key("Ops") == "agent:ops:main"
    assert agent_id_from_session_key("agent:ops:discord:channel:1") == "ops"
    assert agent_id_from_session_key("global", default="work") == "work"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("main", "agent:home:main"),
        ("", "agent:home:main"),
        (None, "agent:home:main"),
        ("Agent:Work:Main", "agent:work:main"),
        ("discord:channel:1", "agent:home:discord:channel:1"),
    ],
)
def test_canonical_session_key(key: str | None, expected: str) -> None:
    assert canonical_session_key(key, "home") == expected


def test_resolve_linked_peer_ignores_bad_entries() -> None:
    links: dict[str, Any] = {"": ["telegram:1"], "x": "telegram:1", "ok": ["TELEGRAM:1"]}
    assert resolve_linked_peer(links, "telegram", "1") == "ok"
    assert resolve_linked_peer(links, "telegram", "") is None


@pytest.mark.parametrize(
    ("key", "allow_from", "sender", "expected"),
    [
        ("agent:main:main", ["123"], "123", True),
        ("agent:main:main", ["123"], "456", False),
        ("agent:main:main", ["telegram:123"], "123", True),
        ("agent:main:main", ["telegram:123"], "456", False),
        ("agent:main:main", ["123", "456"], "456", True),
        ("agent:main:main", ["*"], "456", True),
        ("agent:main:main", ["*", "123"], "456", False),
        ("agent:main:main", [], "456", True),
        ("agent:main:direct:456", ["123"], "456", True),
    ],
)
def test_may_update_last_route(
    key: str, allow_from: list[str], sender: str, expected: bool
) -> None:
    assert may_update_last_route(session_key=key, allow_from=allow_from, sender_id=sender) is (
        expected
    )

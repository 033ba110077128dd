"""Tool policy layers, room/sender policies and the strangers' default (tools.md §2)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.agents.tools.policy import allowed_tools, match_sender, unknown_allow_entries
from gateway.agents.tools.registry import Requester
from gateway.config.errors import ConfigError
from gateway.config.models import ToolPolicy

from .helpers import REGISTRY, config

FS = {"ls", "read", "write", "edit", "apply_patch"}
RUNTIME = {"exec", "process"}

OWNER_DM = Requester(owner=True, channel="telegram", chat_type="direct", chat_id="1", sender_id="1")
GROUP_STRANGER = Requester(
    owner=False,
    channel="telegram",
    chat_type="group",
    chat_id="-100",
    sender_id="42",
    sender_username="mallory",
)
DM_STRANGER = Requester(
    owner=False, channel="telegram", chat_type="direct", chat_id="7", sender_id="7"
)


OPERATOR = Requester.operator()


def names(data: dict[str, Any] | None, requester: Requester = OPERATOR) -> set[str]:
    return set(allowed_tools(config(data), "main", requester, REGISTRY))


def test_registry_has_the_core_tools() -> None:
    assert FS | RUNTIME <= set(REGISTRY)
    assert REGISTRY["exec"].group == "group:runtime" and REGISTRY["read"].group == "group:fs"


def test_owner_gets_everything_without_config() -> None:
    assert FS | RUNTIME <= names(None)
    assert FS | RUNTIME <= names(None, OWNER_DM)


def test_strangers_lose_fs_and_runtime_by_default() -> None:
    for who in (GROUP_STRANGER, DM_STRANGER):
        got = names(None, who)
        assert not got & (FS | RUNTIME)


def test_global_and_agent_lists_never_grant_strangers() -> None:
    data = {"tools": {"profile": "coding", "allow": ["exec", "read"]}}
    assert names(data) & (FS | RUNTIME) == {"exec", "read"}
    assert not names(data, GROUP_STRANGER) & (FS | RUNTIME)


def test_room_policy_grants_a_group() -> None:
    data = {"channels": {"telegram": {"groups": {"-100": {"tools": {"allow": ["exec"]}}}}}}
    assert names(data, GROUP_STRANGER) & (FS | RUNTIME) == {"exec"}
    # another group gets nothing
    other = Requester(
        owner=False, channel="telegram", chat_type="group", chat_id="-5", sender_id="42"
    )
    assert not names(data, other) & (FS | RUNTIME)


def test_star_group_and_alsoallow_grant_and_sender_entry_wins() -> None:
    data = {
        "channels": {
            "telegram": {
                "groups": {
                    "*": {
                        "tools": {"alsoAllow": ["group:fs"]},
                        "toolsBySender": {"@mallory": {"deny": ["write"], "allow": ["read"]}},
                    }
                }
            }
        }
    }
    other = Requester(
        owner=False, channel="telegram", chat_type="group", chat_id="-9", sender_id="9"
    )
    assert names(data, other) & (FS | RUNTIME) == FS
    assert names(data, GROUP_STRANGER) & (FS | RUNTIME) == {"read"}


def test_group_entry_without_tools_falls_back_to_star() -> None:
    data = {
        "channels": {
            "telegram": {
                "groups": {"-100": {"requireMention": False}, "*": {"tools": {"allow": ["ls"]}}}
            }
        }
    }
    assert names(data, GROUP_STRANGER) & (FS | RUNTIME) == {"ls"}


def test_room_deny_applies_to_the_owner_too() -> None:
    data = {"channels": {"telegram": {"direct": {"*": {"tools": {"deny": ["group:runtime"]}}}}}}
    assert not names(data, OWNER_DM) & RUNTIME
    exact = {
        "channels": {
            "telegram": {
                "direct": {
                    "*": {"tools": {"deny": ["group:runtime"]}},
                    "1": {"tools": {"deny": ["write"]}},
                }
            }
        }
    }
    got = names(exact, OWNER_DM)
    assert "exec" in got and "write" not in got  # exact entry replaces "*" as a whole


def test_discord_channel_then_guild() -> None:
    data = {
        "channels": {
            "discord": {
                "guilds": {
                    "g1": {
                        "tools": {"allow": ["read"]},
                        "channels": {"c1": {"tools": {"allow": ["exec"]}}},
                    }
                }
            }
        }
    }
    in_c1 = Requester(
        owner=False,
        channel="discord",
        chat_type="channel",
        chat_id="c1",
        guild_id="g1",
        sender_id="5",
    )
    in_c2 = Requester(
        owner=False,
        channel="discord",
        chat_type="channel",
        chat_id="c2",
        guild_id="g1",
        sender_id="5",
    )
    assert names(data, in_c1) & (FS | RUNTIME) == {"exec"}
    assert names(data, in_c2) & (FS | RUNTIME) == {"read"}


def test_global_sender_policy_grants_and_agent_match_wins() -> None:
    data = {"tools": {"toolsBySender": {"id:42": {"allow": ["exec", "read"]}}}}
    assert names(data, GROUP_STRANGER) & (FS | RUNTIME) == {"exec", "read"}
    agent_empty = {
        "tools": {"toolsBySender": {"id:42": {"allow": ["exec"]}}},
        "agents": {"entries": {"main": {"tools": {"toolsBySender": {"id:42": {}}}}}},
    }
    assert not names(agent_empty, GROUP_STRANGER) & (FS | RUNTIME)


def test_profiles_layers_and_quirks() -> None:
    # coding + allow [read, message] -> only read of ours
    assert names({"tools": {"profile": "coding", "allow": ["read", "message"]}}) & (
        FS | RUNTIME
    ) == {"read"}
    # messaging profile: none of the coding tools
    assert not names({"tools": {"profile": "messaging"}}) & (FS | RUNTIME)
    # minimal + alsoAllow extends the profile
    assert names({"tools": {"profile": "minimal", "alsoAllow": ["bash"]}}) & (FS | RUNTIME) == {
        "exec"
    }
    # deny write keeps apply_patch; allow write also allows apply_patch
    assert "apply_patch" in names({"tools": {"deny": ["write"]}})
    assert names({"tools": {"allow": ["write"]}}) & FS == {"write", "apply_patch"}
    # globs and groups
    assert names({"tools": {"allow": ["group:fs"]}}) & (FS | RUNTIME) == FS
    assert names({"tools": {"allow": ["e*"]}}) & (FS | RUNTIME) == {"edit", "exec"}
    # later layers only remove: agent allow cannot add back a global deny
    data = {
        "tools": {"deny": ["exec"]},
        "agents": {"entries": {"main": {"tools": {"allow": ["exec", "read"]}}}},
    }
    assert names(data) & (FS | RUNTIME) == {"read"}
    # agent profile overrides the global one
    agent_profile = {
        "tools": {"profile": "messaging"},
        "agents": {"entries": {"main": {"tools": {"profile": "coding"}}}},
    }
    assert FS | RUNTIME <= names(agent_profile)


def test_sender_keys_match_in_order() -> None:
    table = {
        "*": ToolPolicy(deny=["a"]),
        "name:Mallory M": ToolPolicy(deny=["b"]),
        "12": ToolPolicy(deny=["c"]),  # legacy unprefixed = id:
        "channel:telegram:12": ToolPolicy(deny=["d"]),
    }
    who = Requester(owner=False, channel="telegram", sender_id="12", sender_name="mallory m")
    assert match_sender(table, who) == table["channel:telegram:12"]
    del table["channel:telegram:12"]
    assert match_sender(table, who) == table["12"]
    del table["12"]
    assert match_sender(table, who) == table["name:Mallory M"]
    anyone = Requester(owner=False, channel="telegram", sender_id="99")
    assert match_sender(table, anyone) == table["*"]


def test_unknown_allow_entries() -> None:
    assert unknown_allow_entries(
        config({"tools": {"allow": ["raed", "exec", "web_*"]}}), "main"
    ) == ["raed"]


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"tools": {"allow": ["a"], "alsoAllow": ["b"]}}, "allow and alsoAllow"),
        (
            {"tools": {"toolsBySender": {"*": {"allow": ["a"], "alsoAllow": ["b"]}}}},
            "allow and alsoAllow",
        ),
        ({"tools": {"exec": {"mode": "ask", "ask": "always"}}}, "mode cannot be combined"),
        ({"tools": {"profile": "admin"}}, "tools.profile"),
        ({"tools": {"exec": {"timeoutSeconds": 0}}}, "tools.exec.timeoutSeconds"),
        ({"tools": {"fs": {"workspaceonly": True}}}, "workspaceonly"),
    ],
)
def test_config_errors(data: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        config(data)
    assert needle in "\n".join(info.value.lines())

"""Config: the root `commands` section and the channels' `commands` / `slashCommand` keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from channels.command_auth import command_allow_list, native_enabled
from gateway.config.errors import ConfigError
from gateway.config.loader import LoadedConfig, validate_text
from gateway.config.models import OpenClawConfig


def check(raw: str) -> LoadedConfig:
    return validate_text(Path("/data/openclaw.json"), raw, {})


def issues(raw: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        check(raw)
    return info.value.lines()


def test_defaults() -> None:
    cfg = OpenClawConfig()
    assert cfg.commands.native == "auto" and cfg.commands.text is True
    assert cfg.commands.allow_from is None and cfg.commands.use_access_groups is True
    assert native_enabled(cfg, "discord") and native_enabled(cfg, "telegram")


def test_reference_example_loads_without_warning() -> None:
    raw = json.dumps(
        {
            "commands": {
                "native": "auto",
                "nativeSkills": "auto",
                "text": True,
                "bash": False,
                "bashForegroundMs": 2000,
                "config": False,
                "mcp": False,
                "plugins": False,
                "debug": False,
                "restart": True,
                "ownerAllowFrom": ["discord:123456789012345678"],
                "ownerDisplay": "raw",
                "ownerDisplaySecret": "x",
                "allowFrom": {"*": ["user1"], "discord": ["user:123"]},
                "useAccessGroups": True,
            }
        }
    )
    loaded = check(raw)
    assert not any("commands" in w for w in loaded.warnings)  # modelled now, not "ignored"
    cfg = loaded.config
    assert command_allow_list(cfg, "discord") == frozenset({"123"})
    assert command_allow_list(cfg, "telegram") == frozenset({"user1"})  # "*" is the default


def test_allow_from_list_means_every_channel() -> None:
    cfg = check('{"commands": {"allowFrom": ["tg:7", 8]}}').config
    assert cfg.commands.allow_from == {"*": ["tg:7", 8]}
    assert command_allow_list(cfg, "telegram") == frozenset({"7", "8"})


def test_allow_from_without_entry_for_channel_allows_nobody() -> None:
    cfg = check('{"commands": {"allowFrom": {"telegram": ["7"]}}}').config
    assert command_allow_list(cfg, "discord") == frozenset()


@pytest.mark.parametrize(
    ("root", "channel", "discord_on"),
    [
        ("auto", None, True),
        (True, None, True),
        (False, None, False),
        (False, True, True),  # the channel's own switch wins
        ("auto", False, False),
        (False, "auto", True),
    ],
)
def test_native_switch_precedence(root: object, channel: object, discord_on: bool) -> None:
    section: dict[str, object] = {} if channel is None else {"commands": {"native": channel}}
    raw = json.dumps({"commands": {"native": root}, "channels": {"discord": section}})
    cfg = check(raw).config
    assert native_enabled(cfg, "discord") is discord_on


def test_slash_command_ephemeral() -> None:
    cfg = check('{"channels": {"discord": {}}}').config
    assert cfg.channels.discord is not None and cfg.channels.discord.slash_command.ephemeral
    raw = '{"channels": {"discord": {"slashCommand": {"ephemeral": false}}}}'
    cfg = check(raw).config
    assert cfg.channels.discord is not None
    assert cfg.channels.discord.slash_command.ephemeral is False


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            '{\n "commands": {\n  "native": "yes"\n }\n}',
            "openclaw.json:3 — commands.native: ",
        ),
        (
            '{\n "commands": {\n  "text": "on"\n }\n}',
            "openclaw.json:3 — commands.text: Input should be a valid boolean",
        ),
        (
            '{\n "commands": {\n  "bogusKey": 1\n }\n}',
            'openclaw.json:3 — commands: Unrecognized key: "bogusKey"',
        ),
        (
            '{\n "commands": {\n  "allowFrom": "123"\n }\n}',
            "openclaw.json:3 — commands.allowFrom: Input should be a valid dictionary",
        ),
        (
            '{\n "commands": {\n  "allowFrom": {\n   "discord": "123"\n  }\n }\n}',
            "openclaw.json:4 — commands.allowFrom.discord: Input should be a valid list",
        ),
        (
            '{\n "channels": {\n  "telegram": {\n   "commands": {\n    "native": "off"\n   }\n  }\n }\n}',
            "openclaw.json:5 — channels.telegram.commands.native: ",
        ),
        (
            '{\n "channels": {\n  "discord": {\n   "commands": {\n    "oops": 1\n   }\n  }\n }\n}',
            'openclaw.json:5 — channels.discord.commands: Unrecognized key: "oops"',
        ),
        (
            '{\n "channels": {\n  "discord": {\n   "slashCommand": {\n    "ephemeral": "x"\n   }\n  }\n }\n}',
            "openclaw.json:5 — channels.discord.slashCommand.ephemeral: ",
        ),
    ],
)
def test_errors_name_the_key_and_line(raw: str, expected: str) -> None:
    (line,) = issues(raw)
    assert line.startswith(expected), line


def test_channel_commands_reference_keys_accepted() -> None:
    raw = json.dumps(
        {
            "channels": {
                "telegram": {"commands": {"native": True, "nativeSkills": "auto"}},
                "discord": {"commands": {"native": "auto", "enforceOwnerForCommands": False}},
            }
        }
    )
    cfg = check(raw).config
    assert cfg.channels.telegram is not None and cfg.channels.telegram.commands.native is True

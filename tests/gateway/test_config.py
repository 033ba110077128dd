"""Config loading: JSON5, env substitution, strictness, legacy shapes, error lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.config.errors import ConfigError
from gateway.config.loader import load_config, validate_text
from gateway.config.secrets import REDACTED, redact
from gateway.paths import config_path, state_dir
from tests.fixtures import FLY_GUIDE

FIXTURE = FLY_GUIDE


def check(raw: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return validate_text(Path("/data/openclaw.json"), raw, env or {})


def issues(raw: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        check(raw)
    return info.value.lines()


def test_fly_guide_example_loads_verbatim() -> None:
    loaded = load_config(FIXTURE, {})
    cfg = loaded.config
    assert cfg.gateway.mode == "local" and cfg.gateway.bind == "auto"
    assert list(cfg.agents.entries) == ["main"] and cfg.agents.entries["main"].default
    assert cfg.agents.defaults.max_concurrent == 4
    guild = cfg.channels.discord.guilds["YOUR_GUILD_ID"]  # type: ignore[union-attr]
    assert guild.require_mention is False
    assert guild.channels["general"].enabled is True  # legacy `allow` honoured
    assert any("agents.list" in w for w in loaded.warnings)
    assert any(".allow is a legacy key" in w for w in loaded.warnings)
    assert cfg.meta == {"lastTouchedVersion": "2026.1.29"}


def test_json5_syntax() -> None:
    loaded = check("""{
      // comment
      gateway: { mode: 'local', port: 3000, }, /* block */
    }""")
    assert loaded.config.gateway.port == 3000


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (  # missing comma between two keys
            '{\n  gateway: { mode: "local" }\n  agents: {}\n}',
            'openclaw.json:3:3 — JSON5 parse failed: unexpected "a" — is a comma missing before it?',
        ),
        (  # unclosed brace: the error points at the end and names the opening line
            '{\n  gateway: {\n    mode: "local"\n}\n',
            "openclaw.json:5:1 — JSON5 parse failed: the file ends early:"
            " the { opened at line 1 is not closed",
        ),
        (  # curly quotes pasted from a word processor
            "{\n  gateway: { mode: \u201clocal\u201d }\n}",
            "openclaw.json:2:20 — JSON5 parse failed: curly quote \u201c — use straight quotes"
            " (\" or ')",
        ),
        (
            "",
            "openclaw.json:1:1 — JSON5 parse failed: the file is empty;"
            ' it needs at least { gateway: { mode: "local" } }',
        ),
        (
            "  \n\n",
            "openclaw.json:1:1 — JSON5 parse failed: the file is empty;"
            ' it needs at least { gateway: { mode: "local" } }',
        ),
        ("[1, 2]", "openclaw.json:1:1 — config must be a JSON5 object at the top level"),
    ],
)
def test_syntax_errors_name_file_line_and_column(raw: str, expected: str) -> None:
    assert issues(raw) == [expected]


def test_unknown_root_key_rejected_with_line() -> None:
    assert issues('{\n  "gateway": {},\n  "totallyUnknown": 1\n}') == [
        'openclaw.json:3 — <root>: Unrecognized key: "totallyUnknown"'
    ]


def test_unknown_nested_key_rejected_with_line_and_path() -> None:
    raw = '{\n  "gateway": {\n    "mode": "local",\n    "bogusKey": true\n  }\n}'
    assert issues(raw) == ['openclaw.json:4 — gateway: Unrecognized key: "bogusKey"']


def test_legacy_gateway_token_is_unknown() -> None:
    assert 'gateway: Unrecognized key: "token"' in issues('{"gateway": {"token": "x"}}')[0]


def test_type_error_names_path_and_value() -> None:
    raw = '{\n "gateway": {\n  "port": "abc"\n }\n}'
    (line,) = issues(raw)
    assert line.startswith("openclaw.json:3 — gateway.port: ") and '"abc"' in line


def test_array_paths_in_errors() -> None:
    raw = json.dumps(
        {"bindings": [{"agentId": "main", "match": {"channel": "discord", "oops": 1}}]}, indent=1
    )
    (line,) = issues(raw)
    assert 'bindings[0].match: Unrecognized key: "oops"' in line


def test_unmodelled_reference_section_warns_not_fails() -> None:
    loaded = check('{"browser": {"anything": [1, 2]}, "gateway": {"mode": "local"}}')
    assert any("'browser'" in w for w in loaded.warnings)


def test_cron_section_is_modelled_strictly() -> None:
    (line,) = issues('{"cron": {"enabled": true, "bogus": 1}}')
    assert 'cron: Unrecognized key: "bogus"' in line
    loaded = check('{"cron": {"skipMissedJobs": true, "store": "legacy"}}')
    assert loaded.config.cron.skip_missed_jobs is True


def test_agents_system_prompt_is_rejected() -> None:
    (line,) = issues('{"agents": {"entries": {"main": {"systemPrompt": "hi"}}}}')
    assert 'agents.entries.main: Unrecognized key: "systemPrompt"' in line


def test_env_substitution() -> None:
    raw = '{"models": {"providers": {"openai": {"baseUrl": "${BASE}/v1", "apiKey": "$${KEEP}"}}}}'
    loaded = check(raw, {"BASE": "http://127.0.0.1:9"})
    provider = loaded.config.models.providers["openai"]
    assert provider.base_url == "http://127.0.0.1:9/v1"
    assert provider.api_key == "${KEEP}"


def test_missing_env_var_stays_literal_and_warns() -> None:
    loaded = check('{"models": {"providers": {"openai": {"baseUrl": "${NOPE_NOT_SET}"}}}}')
    assert loaded.config.models.providers["openai"].base_url == "${NOPE_NOT_SET}"
    assert any("NOPE_NOT_SET" in w for w in loaded.warnings)


def test_env_vars_section_feeds_substitution_without_overriding() -> None:
    raw = '{"env": {"vars": {"A_VAR": "from-config", "B_VAR": "cfg"}}, "models": {"providers": {"x": {"baseUrl": "${A_VAR}-${B_VAR}"}}}}'
    loaded = check(raw, {"B_VAR": "from-env"})
    assert loaded.config.models.providers["x"].base_url == "from-config-from-env"
    assert loaded.env_vars == {"A_VAR": "from-config"}


@pytest.mark.parametrize(
    ("agents", "expected"),
    [
        ({"entries": {"a": {}, "b": {}}}, "agents.ownership"),
        (
            {"entries": {"a": {"default": True}, "b": {"default": True}}},
            "at most one default=true entry (found 2)",
        ),
        ({"ownership": "explicit", "entries": {"a": {"default": True}}}, "cannot be combined"),
    ],
)
def test_roster_rules(agents: dict[str, object], expected: str) -> None:
    assert expected in "\n".join(issues(json.dumps({"agents": agents})))


def test_roster_valid_shapes() -> None:
    assert check('{"agents": {"entries": {"solo": {}}}}').config.agents.entries.keys() == {"solo"}
    check('{"agents": {"ownership": "explicit", "entries": {"a": {}, "b": {}}}}')
    check('{"agents": {"entries": {"a": {"default": true}, "b": {}}}}')


def test_binding_to_unknown_agent() -> None:
    raw = json.dumps(
        {
            "agents": {"entries": {"main": {}}},
            "bindings": [{"agentId": "ghost", "match": {"channel": "discord"}}],
        }
    )
    assert 'bindings[0].agentId: Unknown agent id "ghost"' in issues(raw)[0]


def test_agent_ids_are_normalised() -> None:
    loaded = check('{"agents": {"list": [{"id": " My Agent! ", "default": true}]}}')
    assert list(loaded.config.agents.entries) == ["my-agent"]


def test_dm_policy_warnings() -> None:
    loaded = check(
        '{"channels": {"telegram": {"dmPolicy": "allowlist"}, "discord": {"dmPolicy": "open"}}}'
    )
    text = "\n".join(loaded.warnings)
    assert 'channels.telegram.dmPolicy="allowlist" but channels.telegram.allowFrom is empty' in text
    assert (
        'channels.discord.dmPolicy="open" but channels.discord.allowFrom does not include "*"'
        in text
    )


def test_control_ui_base_path_validated() -> None:
    assert (
        "gateway.controlUi.basePath" in issues('{"gateway": {"controlUi": {"basePath": "ui"}}}')[0]
    )


def test_redaction_hides_every_secret_key() -> None:
    data = {
        "gateway": {"auth": {"token": "t0k3n"}},
        "channels": {"telegram": {"botToken": "123:abc"}},
        "models": {"providers": {"openai": {"apiKey": "sk-1"}}},
        "keep": "visible",
    }
    text = json.dumps(redact(data))
    assert "t0k3n" not in text and "123:abc" not in text and "sk-1" not in text
    assert text.count(REDACTED) == 3 and "visible" in text


def test_config_path_resolution(tmp_path: Path) -> None:
    assert config_path({"OPENCLAW_STATE_DIR": str(tmp_path)}) == tmp_path / "openclaw.json"
    explicit = tmp_path / "x" / "c.json"
    env = {"OPENCLAW_STATE_DIR": str(tmp_path), "OPENCLAW_CONFIG_PATH": str(explicit)}
    assert config_path(env) == explicit
    assert state_dir(env) == tmp_path  # the config path alone never moves the state dir
    assert config_path({"HOME": str(tmp_path)}) == tmp_path / ".openclaw" / "openclaw.json"
    assert (
        config_path({"HOME": str(tmp_path), "OPENCLAW_CONFIG_PATH": "~/c.json"})
        == tmp_path / "c.json"
    )


def test_non_regular_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "openclaw.json").mkdir()
    with pytest.raises(ConfigError, match="regular file"):
        load_config(tmp_path / "openclaw.json", {})


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    loaded = load_config(tmp_path / "openclaw.json", {})
    assert not loaded.exists and loaded.config.gateway.port is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            '{\n  "channels": {\n    "telegram": {"botToken": "${MY_TG_TOKEN}"}\n  }\n}',
            "openclaw.json:3 — channels.telegram.botToken: ${MY_TG_TOKEN} is not set:"
            " set the environment variable MY_TG_TOKEN",
        ),
        (
            '{"gateway": {"auth": {"token": "${GW_TOKEN}"}}}',
            "openclaw.json:1 — gateway.auth.token: ${GW_TOKEN} is not set:"
            " set the environment variable GW_TOKEN",
        ),
        (
            '{"models": {"providers": {"openai": {"apiKey": "sk-${KEY_PART}"}}}}',
            "openclaw.json:1 — models.providers.openai.apiKey: ${KEY_PART} is not set:"
            " set the environment variable KEY_PART",
        ),
    ],
)
def test_unset_variable_in_a_secret_key_is_an_error(raw: str, expected: str) -> None:
    (line,) = issues(raw)
    assert line.startswith(expected), line


def test_unset_secret_variable_is_never_used_as_the_token() -> None:
    raw = '{"channels": {"telegram": {"botToken": "${MY_TG_TOKEN}"}}}'
    with pytest.raises(ConfigError):
        check(raw)
    loaded = check(raw, {"MY_TG_TOKEN": "123:abc"})
    assert loaded.config.channels.telegram.bot_token == "123:abc"
    assert loaded.warnings == []


def test_unset_variable_in_a_plain_key_still_only_warns() -> None:
    loaded = check('{"agents": {"defaults": {"workspace": "${NOPE_NOT_SET}/ws"}}}')
    assert loaded.warnings == [
        "config references ${NOPE_NOT_SET} but it is not set; the text is kept as is"
    ]

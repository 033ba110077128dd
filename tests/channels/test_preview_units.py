"""Units of the preview settings, `block` cutting and account resolution (issue 20)."""

from __future__ import annotations

from channels.accounts import account_ids, default_account_id
from channels.preview import PreviewSettings, block_prefix, settings_for
from gateway.config.models import DiscordConfig, StreamingConfig, TelegramConfig


def test_streaming_shorthand_and_channel_defaults() -> None:
    assert settings_for(StreamingConfig(), "progress") is not None
    assert settings_for(StreamingConfig(), "off") is None
    assert settings_for(StreamingConfig.model_validate("off"), "progress") is None
    legacy = settings_for(StreamingConfig.model_validate(True), "off")
    assert legacy is not None and legacy.mode == "partial"
    progress = settings_for(
        StreamingConfig.model_validate({"mode": "progress", "progress": {"toolProgress": True}}),
        "off",
    )
    assert progress is not None and progress.tool_progress
    # partial/block show tool lines by default, progress only when asked.
    partial = settings_for(StreamingConfig.model_validate("partial"), "off")
    assert partial is not None and partial.tool_progress
    assert not settings_for(StreamingConfig(), "progress").tool_progress  # type: ignore[union-attr]


def test_block_mode_advances_by_paragraphs() -> None:
    s = PreviewSettings(mode="block", block_min_chars=20, block_max_chars=60)
    text = "first paragraph is here\n\nsecond one follows and goes on"
    assert block_prefix(text[:15], 0, s) == 0  # under minChars: nothing new shown
    cut = block_prefix(text, 0, s)
    assert text[:cut] == "first paragraph is here\n\n"
    no_break = "x" * 100
    assert block_prefix(no_break, 0, s) == 60  # maxChars forces a cut


def test_accounts_and_default_account() -> None:
    assert account_ids(TelegramConfig()) == ["default"]
    cfg = TelegramConfig.model_validate(
        {"botToken": "1:a", "accounts": {"ops": {"botToken": "2:b"}}}
    )
    assert account_ids(cfg) == ["default", "ops"]
    assert default_account_id(cfg) == "default"
    named = DiscordConfig.model_validate(
        {"accounts": {"b": {"token": "x"}, "a": {"token": "y"}}, "defaultAccount": "a"}
    )
    assert account_ids(named) == ["b", "a"] and default_account_id(named) == "a"
    assert (
        default_account_id(DiscordConfig.model_validate({"accounts": {"b": {"token": "x"}}})) == "b"
    )
    # Named accounts inherit policies but never the root's token.
    ops = cfg.account("ops")
    assert ops.bot_token == "2:b" and ops.dm_policy == cfg.dm_policy
    assert TelegramConfig.model_validate({"accounts": {"x": {}}}).account("x").bot_token is None

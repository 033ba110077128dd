"""Channel accounts: which bots a channel runs and each one's effective settings.

`channels.<ch>` with no `accounts` is one account, `default`. With `accounts.<id>` each entry
is a bot of its own (its own token; omitted keys inherit the channel root). The root's own
token, when set, is the `default` account unless `accounts.default` exists. The env token
(`TELEGRAM_BOT_TOKEN`, `DISCORD_BOT_TOKEN`) only ever serves the `default` account.
`defaultAccount` names the account used when none is given (sends, bindings without
`accountId`); otherwise `default` when present, else the first listed (channels.md §1.3).
"""

from __future__ import annotations

from gateway.config.models import DiscordConfig, OpenClawConfig, TelegramConfig

DEFAULT_ACCOUNT = "default"
Section = DiscordConfig | TelegramConfig


def _root_token(section: Section) -> object:
    if isinstance(section, DiscordConfig):
        return section.token
    return section.bot_token or section.token_file


def account_ids(section: Section) -> list[str]:
    """The accounts a channel block defines, in config order."""
    if not section.accounts:
        return [DEFAULT_ACCOUNT]
    ids = list(section.accounts)
    if DEFAULT_ACCOUNT not in ids and _root_token(section):
        ids.insert(0, DEFAULT_ACCOUNT)
    return ids


def default_account_id(section: Section | None) -> str:
    if section is None:
        return DEFAULT_ACCOUNT
    ids = account_ids(section)
    if section.default_account and section.default_account in ids:
        return section.default_account
    return DEFAULT_ACCOUNT if DEFAULT_ACCOUNT in ids else ids[0]


def account_section(section: Section, account_id: str) -> Section:
    """One account's effective settings (the root itself for the implicit `default`)."""
    return section.account(account_id)


def channel_section(config: OpenClawConfig, channel: str, account_id: str) -> Section:
    """Live effective settings of `channel`/`account_id` (an empty block when unconfigured)."""
    section = getattr(config.channels, channel, None)
    if section is None:
        return DiscordConfig() if channel == "discord" else TelegramConfig()
    assert isinstance(section, DiscordConfig | TelegramConfig)
    return section.account(account_id)

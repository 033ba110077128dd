"""The channel fakes and gateway helpers of tests/channels, shared with the media tests."""

from tests.channels.conftest import (
    _fast_telegram,
    fake_discord,
    fake_discord_bot,
)

__all__ = ["_fast_telegram", "fake_discord", "fake_discord_bot"]

"""Results of the channel, config, logs and system methods against protocol.schema.json.

A live gateway with Telegram connected (fake Bot API) and one pending pairing request, so the
channel results are not empty shapes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway import logs
from tests.channels.conftest import (
    _fast_telegram,
    gateway_config,
    telegram_gateway,
)
from tests.compat.reference import Reference, validate
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram
from tests.harness import connected

pytestmark = pytest.mark.compat
# The channel suite's _fast_telegram (autouse: short polls and back-offs); fake_tg and
# fake_llm come from tests/conftest.py.
__all__ = ["_fast_telegram"]


async def test_channel_config_logs_and_system_results_match_the_schema(
    reference: Reference, tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    async with telegram_gateway(tmp_path, gateway_config(fake_tg, fake_llm)) as live:
        fake_tg.text_update("let me in", user_id=555, chat_id=555)
        await fake_tg.wait_for("sendMessage", lambda p: str(p["chat_id"]) == "555")
        fake_tg.text_update("me too", user_id=556, chat_id=556)
        await fake_tg.wait_for("sendMessage", lambda p: str(p["chat_id"]) == "556")
        async with connected(live) as client:
            status = await client.call("channels.status", {})
            validate("ChannelsStatusResult", status)
            assert status["channelAccounts"]["telegram"][0]["connected"] is True

            pending = await client.call("channels.pairing.list", {"channel": "telegram"})
            validate("ChannelsPairingListResult", pending)
            by_sender = {r["senderId"]: r["requestId"] for r in pending["requests"]}
            code = by_sender["555"]
            dismissed = await client.call(
                "channels.pairing.dismiss",
                {"channel": "telegram", "accountId": "default", "requestId": by_sender["556"]},
            )
            validate("ChannelsPairingDismissResult", dismissed)
            assert dismissed["senderId"] == "556"
            left = await client.call("channels.pairing.list", {"channel": "telegram"})
            assert [r["senderId"] for r in left["requests"]] == ["555"]
            approved = await client.call(
                "channels.pairing.approve", {"channel": "telegram", "code": code}
            )
            validate("ChannelsPairingApproveResult", approved)

            validate("ConfigSchemaResponse", await client.call("config.schema", {}))
            logging.getLogger("telegram").addHandler(logs.tail)
            try:
                logging.getLogger("telegram").warning("a line for the tail")
            finally:
                logging.getLogger("telegram").removeHandler(logs.tail)
            tail = await client.call("logs.tail", {"limit": 20})
            validate("LogsTailResult", tail)
            assert tail["lines"], "the log tail is empty"
            validate("SystemInfoResult", await client.call("system.info", {}))

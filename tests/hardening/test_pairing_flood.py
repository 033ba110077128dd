"""Pairing under a flood: a full pending list tells the newcomer once and the owner, requests
expire from their last activity, and guessing codes over RPC is throttled."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from channels.pairing import FULL_REPLY, MAX_PENDING_PER_ACCOUNT, TTL_MS, PairingStore
from tests.channels.conftest import (  # noqa: F401  (fixtures)
    _fast_telegram,
    gateway_config,
    telegram_gateway,
)
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram
from tests.harness import connected


def test_a_full_list_turns_a_newcomer_away_once(tmp_path: Path) -> None:
    now = {"t": 1_000_000}
    store = PairingStore(tmp_path, clock=lambda: now["t"])
    for i in range(MAX_PENDING_PER_ACCOUNT):
        assert store.request("telegram", "default", f"s{i}").created
    first = store.request("telegram", "default", "newcomer")
    assert first.turned_away and not first.created
    again = store.request("telegram", "default", "newcomer")
    assert not again.turned_away and not again.created  # told once
    assert store.overflow[("telegram", "default")].count == 1
    # Dismissing one makes room (and clears the badge).
    store.dismiss("telegram", store.pending("telegram")[0].code)
    assert ("telegram", "default") not in store.overflow
    assert store.request("telegram", "default", "newcomer").created


def test_requests_expire_from_their_last_activity(tmp_path: Path) -> None:
    now = {"t": 1_000_000}
    store = PairingStore(tmp_path, clock=lambda: now["t"])
    store.request("telegram", "default", "quiet")
    store.request("telegram", "default", "chatty")
    now["t"] += TTL_MS - 60_000
    store.request("telegram", "default", "chatty")  # still writing: keeps the slot
    now["t"] += 120_000
    assert [r.sender_id for r in store.pending("telegram")] == ["chatty"]
    assert store.pending("telegram")[0].expires_at == now["t"] - 120_000 + TTL_MS


async def test_pairing_flood_over_telegram(
    tmp_path: Path,
    fake_tg: FakeTelegram,
    fake_llm: FakeLLM,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = gateway_config(fake_tg, fake_llm)  # dmPolicy: pairing
    async with telegram_gateway(tmp_path, cfg) as live:
        with caplog.at_level(logging.WARNING):
            for user in range(500, 500 + MAX_PENDING_PER_ACCOUNT):
                fake_tg.text_update("let me in", user_id=user, chat_id=user)
                await fake_tg.wait_for("sendMessage", to_chat(user))
            # The genuine newcomer is told, once.
            fake_tg.text_update("hello?", user_id=900, chat_id=900)
            told = await fake_tg.wait_for("sendMessage", lambda p: p["chat_id"] == "900")
            assert FULL_REPLY.split(";")[0] in told["text"]
            fake_tg.text_update("hello again?", user_id=900, chat_id=900)
            fake_tg.text_update("ping", user_id=42, chat_id=42)  # a marker after it
            await fake_tg.wait_for("sendMessage", lambda p: p["chat_id"] == "42")
            await asyncio.sleep(0.1)
        assert len([c for c in fake_tg.calls("sendMessage") if c["chat_id"] == "900"]) == 1
        # The owner hears of it: a log line and channels.status (the UI badge).
        assert any("pending list is full" in r.getMessage() for r in caplog.records)
        async with connected(live) as client:
            listed = await client.call("channels.pairing.list", {})
            status = await client.call("channels.status", {})
            # user 900 and the marker user 42
            assert status["channels"]["telegram"]["pairingTurnedAway"] == 2
            # Guessing codes over RPC: five misses, then throttled.
            for i in range(5):
                res = await client.request(
                    "channels.pairing.approve", {"channel": "telegram", "requestId": f"ZZZZZZZ{i}"}
                )
                assert res["error"]["code"] == "NOT_FOUND"
            real = listed["requests"][0]["requestId"]
            res = await client.request(
                "channels.pairing.approve", {"channel": "telegram", "requestId": real}
            )
            assert res["error"]["details"]["code"] == "PAIRING_RATE_LIMITED", res
            assert res["error"]["retryable"] is True


def to_chat(chat: int) -> Any:
    return lambda p: str(p["chat_id"]) == str(chat)

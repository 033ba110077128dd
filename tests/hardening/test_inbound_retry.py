"""A DM is never lost to a transient local failure: retried with back-off, and the Telegram
update confirmed only once it was taken (real PTB ↔ fake Bot API ↔ real gateway)."""

from __future__ import annotations

import errno
import logging
import sqlite3
from pathlib import Path

import pytest

from channels import pipeline as pipeline_mod
from channels.pairing import PairingStore
from channels.pipeline import is_transient
from tests.channels.conftest import (  # noqa: F401  (fixtures)
    _fast_telegram,
    gateway_config,
    telegram_gateway,
)
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram


@pytest.mark.parametrize(
    "failure",
    [
        sqlite3.OperationalError("unable to open database file"),  # what EMFILE looks like
        sqlite3.OperationalError("database is locked"),
        OSError(errno.ENOSPC, "No space left on device"),
    ],
)
async def test_a_dm_survives_transient_local_failures(
    tmp_path: Path,
    fake_tg: FakeTelegram,
    fake_llm: FakeLLM,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    failure: Exception,
) -> None:
    monkeypatch.setattr(pipeline_mod, "RETRY_FIRST_S", 0.05)
    fake_llm.script.append({"text": "got it"})
    real_allowed = PairingStore.allowed
    failures = {"left": 3}
    offsets_while_failing: list[int] = []

    def flaky_allowed(self: PairingStore, channel: str, account_id: str) -> frozenset[str]:
        if failures["left"] > 0:
            failures["left"] -= 1
            offsets_while_failing.extend(
                int(c.get("offset") or 0) for c in fake_tg.calls("getUpdates")
            )
            raise failure
        return real_allowed(self, channel, account_id)

    monkeypatch.setattr(PairingStore, "allowed", flaky_allowed)
    cfg = gateway_config(fake_tg, fake_llm, {"dmPolicy": "open", "allowFrom": ["*"]})
    async with telegram_gateway(tmp_path, cfg):
        with caplog.at_level(logging.WARNING):
            uid = fake_tg.text_update("are you there?")
            reply = await fake_tg.wait_for("sendMessage", lambda p: p.get("chat_id") == "42", 10)
    assert reply["text"] == "got it"
    assert failures["left"] == 0
    # While it was failing, Telegram was never told the update was handled.
    assert offsets_while_failing and max(offsets_while_failing) <= uid
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 3, [r.getMessage() for r in retries]


def test_only_local_transient_failures_are_retried() -> None:
    assert is_transient(OSError(errno.EMFILE, "Too many open files"))
    assert is_transient(sqlite3.OperationalError("database is locked"))
    assert not is_transient(ValueError("bad input"))
    assert not is_transient(OSError(errno.EACCES, "Permission denied"))
    assert not is_transient(sqlite3.OperationalError("no such table: x"))

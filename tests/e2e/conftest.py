"""Fixtures for the cross-issue end-to-end suite: the fakes (model, Telegram, pages), the fast
Telegram timings of tests/channels, and a gateway config with provider keys and a bot token
in the environment (so a test can check none of them ever leaks)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from channels.telegram import TelegramChannel, TelegramTransport
from gateway.cron import delivery
from tests.compat import reference as ref_mod
from tests.compat.conftest import ThreadedFakeLLM
from tests.compat.reference import Reference
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.fakes.web import PageServer

# Secrets the gateway knows (environment, resolved through the config); none may ever reach
# the model, a tool result, a chat message or a log line.
OPENAI_KEY = "sk-e2e-OPENAI-0123456789abcdefSECRET"
ANTHROPIC_KEY = "sk-ant-e2e-ANTHROPIC-0123456789SECRET"
SECRETS = (OPENAI_KEY, ANTHROPIC_KEY, TOKEN)
OWNER = 42  # Telegram user id (= DM chat id) of the owner in every test
GROUP = -1001


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    # Short long-polls and back-offs; the behaviour (order, counts) stays the real one.
    monkeypatch.setattr(TelegramChannel, "poll_timeout_s", 1)
    monkeypatch.setattr(TelegramChannel, "restart_initial_s", 0.05)
    monkeypatch.setattr(TelegramChannel, "network_retry_max_s", 0.05)
    monkeypatch.setattr(TelegramTransport, "max_delay_s", 0.05)
    monkeypatch.setattr(delivery, "SEND_BACKOFF_S", (0.05, 0.05, 0.05))
    monkeypatch.setenv("CLAWGATE_FAILOVER_TIME_SCALE", "0.001")
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)


@pytest.fixture
async def pages() -> AsyncIterator[PageServer]:
    srv = PageServer()
    await srv.start()
    yield srv
    await srv.stop()


def config(
    llm: FakeLLM,
    tg: FakeTelegram | None = None,
    telegram: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The owner (id 42) is on the DM allowlist; keys and the bot token come from the
    environment through `${VAR}` / `{source: "env"}` secrets, as on a real deployment."""
    out: dict[str, Any] = {
        "gateway": {"mode": "local"},
        "models": {
            "providers": {
                "openai": {
                    "baseUrl": llm.url + "/v1",
                    "apiKey": {"source": "env", "id": "OPENAI_API_KEY"},
                }
            }
        },
        "agents": {"defaults": {"model": {"primary": "openai/gpt-test"}}},
    }
    if tg is not None:
        section = {
            "botToken": {"source": "env", "id": "TELEGRAM_BOT_TOKEN"},
            "apiRoot": tg.url,
            "dmPolicy": "allowlist",
            "allowFrom": [OWNER],
            **(telegram or {}),
        }
        out["channels"] = {"telegram": section}
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def to_chat(chat: int) -> Any:
    return lambda p: p.get("chat_id") == str(chat)


@pytest.fixture(scope="session")
def reference() -> Reference:
    """The reference CLI (installed with npm on first use; a failed install fails the test)."""
    try:
        return ref_mod.reference()
    except ref_mod.ReferenceInstallError as exc:
        pytest.fail(f"reference OpenClaw install failed:\n{exc}", pytrace=False)


@pytest.fixture
def threaded_llm() -> Iterator[ThreadedFakeLLM]:
    """The fake model on its own loop thread, for tests that drive synchronous CLIs."""
    fake = ThreadedFakeLLM()
    yield fake
    fake.close()

"""No key configured: the chat says which key to set instead of "Authentication failed"."""

from __future__ import annotations

from pathlib import Path

import pytest

from providers.classify import classify, user_message
from providers.endpoints import provider_settings
from providers.types import MissingCredentials
from tests.fakes.llm import FakeLLM
from tests.harness import chat, connected, live_gateway


def test_missing_credentials_message_names_the_variable_and_the_key() -> None:
    with pytest.raises(MissingCredentials) as info:
        provider_settings("openai", api=None, base_url=None, api_key=None, timeout_s=None, env={})
    failure = classify(info.value)
    assert failure.reason == "auth" and failure.status is None
    assert user_message(failure) == (
        "no API key configured for openai: set OPENAI_API_KEY (or models.providers.openai.apiKey)"
    )


def test_a_refused_key_still_reads_as_authentication_failed() -> None:
    from providers.classify import Failure

    assert user_message(Failure("auth")).startswith("Authentication failed")
    assert user_message(Failure("auth", status=401)).startswith("Authentication failed")


async def test_chat_without_a_key_says_which_key_to_set(
    tmp_path: Path, openai_fake: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cfg = {
        "models": {"providers": {"openai": {"baseUrl": openai_fake.url + "/v1"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-test"}}},
    }
    async with live_gateway(tmp_path, cfg) as live, connected(live) as client:
        events = await chat(client, "hi")
    error = events[-1]
    assert error["state"] == "error"
    assert error["errorMessage"] == (
        "no API key configured for openai: set OPENAI_API_KEY (or models.providers.openai.apiKey)"
    )
    assert openai_fake.requests == []  # nothing was sent anywhere

"""Failure classification from real SDK exceptions raised against the fake servers."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from providers.classify import classify, user_message
from tests.fakes.llm import FakeLLM

MSG = [{"role": "user", "content": "hi"}]


async def anthropic_error(fake: FakeLLM, action: dict[str, Any]) -> BaseException:
    fake.script.append(action)
    client = anthropic.AsyncAnthropic(api_key="sk-test", base_url=fake.url, max_retries=0)
    with pytest.raises(anthropic.APIError) as info:
        await client.messages.create(model="m", max_tokens=5, messages=MSG)  # type: ignore[arg-type]
    return info.value


async def openai_error(fake: FakeLLM, action: dict[str, Any]) -> BaseException:
    fake.script.append(action)
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=fake.url + "/v1", max_retries=0)
    with pytest.raises(openai.APIError) as info:
        await client.chat.completions.create(model="m", messages=MSG)  # type: ignore[arg-type]
    return info.value


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, "bad_request"),
        (401, "auth"),
        (402, "billing"),
        (403, "auth"),
        (404, "not_found"),
        (413, "context_overflow"),
        (429, "rate_limit"),
        (500, "server"),
        (503, "server"),
        (529, "overloaded"),
    ],
)
async def test_anthropic_status_reasons(anthropic_fake: FakeLLM, status: int, reason: str) -> None:
    failure = classify(await anthropic_error(anthropic_fake, {"status": status}))
    assert (failure.reason, failure.status) == (reason, status)


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [
        (400, None, "bad_request"),
        (400, "context_length_exceeded", "context_overflow"),
        (401, None, "auth"),
        (404, None, "not_found"),
        (429, None, "rate_limit"),
        (429, "insufficient_quota", "billing"),
        (500, None, "server"),
        (502, "bad_gateway", "server"),
        (504, "gateway_timeout", "timeout"),
    ],
)
async def test_openai_status_reasons(
    openai_fake: FakeLLM, status: int, code: str | None, reason: str
) -> None:
    action: dict[str, Any] = {"status": status}
    if code:
        action["error_type"] = code
    failure = classify(await openai_error(openai_fake, action))
    assert failure.reason == reason


async def test_retry_after_is_read_from_headers(anthropic_fake: FakeLLM) -> None:
    exc = await anthropic_error(anthropic_fake, {"status": 429, "headers": {"retry-after": "7"}})
    assert classify(exc).retry_after_s == 7.0


async def test_connection_refused_is_a_timeout_class_failure() -> None:
    client = openai.AsyncOpenAI(api_key="k", base_url="http://127.0.0.1:9/v1", max_retries=0)
    with pytest.raises(openai.APIConnectionError) as info:
        await client.chat.completions.create(model="m", messages=MSG)  # type: ignore[arg-type]
    assert classify(info.value).reason == "timeout"


def test_user_messages_never_carry_provider_text() -> None:
    from providers.classify import Failure

    text = user_message(Failure("server", status=500, preview="secret internals"))
    assert "secret internals" not in text and text.startswith("LLM request failed")

"""More providers through a real gateway: Gemini as a fallback, keyless local Ollama, presets,
load-time validation (startup log and models.list) and the chat text when no key is set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.config.models import OpenClawConfig
from providers.endpoints import LOCAL_PLACEHOLDER_KEY, is_local_url, provider_settings
from providers.types import MissingCredentials
from tests.fakes.gemini import FakeGemini
from tests.fakes.llm import FakeLLM
from tests.harness import (
    chat,
    connected,
    final_text,
    free_port,
    gateway_env,
    live_gateway,
    start_process,
    stop_process,
    wait_healthy,
)

KEY_VARS = (
    "GEMINI_API_KEY", "GOOGLE_API_KEY", "OLLAMA_API_KEY", "OPENROUTER_API_KEY", "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY", "ANTHROPIC_OAUTH_TOKEN",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _no_host_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)


async def test_overloaded_anthropic_falls_back_to_gemini(
    tmp_path: Path,
    anthropic_fake: FakeLLM,
    gemini_fake: FakeGemini,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "AIza-from-env")
    anthropic_fake.script += [{"status": 529}] * 20
    gemini_fake.script.append({"text": "Gemini here"})
    cfg = {
        "models": {
            "providers": {
                "anthropic": {"baseUrl": anthropic_fake.url, "apiKey": "sk-ant-test"},
                "google": {"baseUrl": gemini_fake.url + "/v1beta"},
            }
        },
        "agents": {
            "defaults": {
                "model": {
                    "primary": "anthropic/claude-test",
                    "fallbacks": ["google/gemini-test"],
                }
            }
        },
    }
    async with live_gateway(tmp_path, cfg) as live, connected(live) as client:
        events = await chat(client, "are you there?")
        history = await client.call("chat.history", {"sessionKey": "main"})
    assert final_text(events) == "Gemini here"
    assert next(e["deltaText"] for e in events if e["state"] == "delta") == "Gemini "
    assert len(anthropic_fake.requests) == 2  # one quick retry: a healthy fallback waits
    (req,) = gemini_fake.requests
    assert req["model"] == "gemini-test"
    assert req["headers"]["x-goog-api-key"] == "AIza-from-env"
    assert req["body"]["contents"][-1] == {"role": "user", "parts": [{"text": "are you there?"}]}
    assert req["body"]["systemInstruction"]["parts"][0]["text"]  # the workspace prompt
    answer = history["messages"][-1]
    assert (answer["provider"], answer["model"]) == ("google", "gemini-test")


async def test_local_ollama_needs_no_key(
    tmp_path: Path, openai_fake: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The OpenAI key must never travel to another host because the SDK found it in the env.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    openai_fake.script.append({"text": "llama says hi"})
    cfg = {
        # The reference's native form: host without /v1, api "ollama".
        "models": {"providers": {"ollama": {"baseUrl": openai_fake.url, "api": "ollama"}}},
        "agents": {"defaults": {"model": {"primary": "ollama/llama3"}}},
    }
    async with live_gateway(tmp_path, cfg) as live, connected(live) as client:
        events = await chat(client, "hello llama")
        models = await client.call("models.list")
    assert final_text(events) == "llama says hi"
    (req,) = openai_fake.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["body"]["model"] == "llama3"
    assert req["headers"]["authorization"] == f"Bearer {LOCAL_PLACEHOLDER_KEY}"
    assert "sk-openai-secret" not in json.dumps(req["headers"])
    assert models["models"] == [
        {"id": "llama3", "provider": "ollama", "name": "ollama/llama3", "available": True}
    ]


async def test_chat_says_plainly_when_no_key_is_set(tmp_path: Path) -> None:
    cfg = {"agents": {"defaults": {"model": {"primary": "google/gemini-test"}}}}
    async with live_gateway(tmp_path, cfg) as live, connected(live) as client:
        events = await chat(client, "hi")
        models = await client.call("models.list")
    error = events[-1]
    assert error["state"] == "error"
    # Issue 11: the chat says which provider has no key and what to set (names, never values).
    assert error["errorMessage"] == (
        "no API key configured for google: set GEMINI_API_KEY or GOOGLE_API_KEY"
        " (or models.providers.google.apiKey)"
    )
    assert error["errorDetail"]["failoverReason"] == "auth"
    assert error["errorDetail"]["provider"] == "google"
    (model,) = models["models"]
    assert model["available"] is False and model["unavailableReason"] == "missing-auth"


async def test_models_list_marks_problems_and_lists_configured_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-test")
    cfg = {
        "models": {
            "providers": {
                "openrouter": {
                    "models": [{"id": "moonshotai/kimi-k2", "name": "Kimi K2"}],
                },
                "bedrock": {"api": "bedrock-converse-stream", "baseUrl": "https://b.example"},
            }
        },
        "agents": {
            "defaults": {
                "model": {
                    "primary": "openrouter/moonshotai/kimi-k2",
                    "fallbacks": ["nowhere/model-x", "bedrock/claude", "anthropic/claude-test"],
                }
            }
        },
    }
    async with live_gateway(tmp_path, cfg) as live, connected(live) as client:
        models = await client.call("models.list")
    by_ref = {f"{m['provider']}/{m['id']}": m for m in models["models"]}
    assert list(by_ref) == [
        "openrouter/moonshotai/kimi-k2",
        "nowhere/model-x",
        "bedrock/claude",
        "anthropic/claude-test",
    ]
    assert by_ref["openrouter/moonshotai/kimi-k2"]["available"] is True
    assert by_ref["nowhere/model-x"] == {
        "id": "model-x", "provider": "nowhere", "name": "nowhere/model-x",
        "available": False, "tags": ["unknown-provider"],
    }  # fmt: skip
    assert by_ref["bedrock/claude"]["tags"] == ["unsupported-api"]
    assert by_ref["anthropic/claude-test"]["unavailableReason"] == "missing-auth"


def test_startup_log_names_each_unusable_model(tmp_path: Path) -> None:
    config = {
        "gateway": {"mode": "local"},
        "models": {"providers": {"bedrock": {"api": "bedrock-converse-stream"}}},
        "agents": {
            "defaults": {
                "model": {
                    "primary": "google/gemini-test",
                    "fallbacks": ["nowhere/x", "bedrock/claude", "ollama/llama3"],
                }
            }
        },
    }
    (tmp_path / "openclaw.json").write_text(json.dumps(config))
    env = gateway_env(tmp_path, OPENCLAW_GATEWAY_TOKEN="t" * 32, OPENCLAW_SKIP_CHANNELS="1")
    for name in KEY_VARS:
        env.pop(name, None)
    port = free_port()
    proc = start_process(["--port", str(port)], env)
    try:
        wait_healthy(port, proc, timeout=30)
    finally:
        out = stop_process(proc)
    warnings = [line for line in out.splitlines() if "(turns on it will fall back or fail)" in line]
    assert len(warnings) == 3, out
    google, nowhere, bedrock = warnings
    assert "model google/gemini-test:" in google and "GEMINI_API_KEY or GOOGLE_API_KEY" in google
    assert 'unknown provider "nowhere"' in nowhere
    assert 'uses api "bedrock-converse-stream"' in bedrock
    assert "ollama/llama3" not in out.split("agent model:")[-1]  # a local Ollama needs no key


def test_presets_and_local_hosts() -> None:
    env = {"OPENROUTER_API_KEY": "sk-or", "GROQ_API_KEY": "gsk"}
    router = provider_settings(
        "openrouter", api=None, base_url=None, api_key=None, timeout_s=None, env=env
    )
    assert (router.api, router.base_url, router.api_key) == (
        "openai-completions", "https://openrouter.ai/api/v1", "sk-or",
    )  # fmt: skip
    groq = provider_settings("groq", api=None, base_url=None, api_key=None, timeout_s=None, env=env)
    assert groq.base_url == "https://api.groq.com/openai/v1"
    ollama = provider_settings(
        "ollama", api=None, base_url=None, api_key=None, timeout_s=None, env={}
    )
    assert (ollama.base_url, ollama.api_key) == ("http://127.0.0.1:11434/v1", LOCAL_PLACEHOLDER_KEY)
    # A public Ollama host (Ollama Cloud) needs a real key, as does a custom public provider.
    for provider, url in (("ollama", "https://ollama.com"), ("my-proxy", "https://llm.example")):
        with pytest.raises(MissingCredentials, match="API_KEY"):
            provider_settings(
                provider, api="openai-completions", base_url=url, api_key=None,
                timeout_s=None, env={},
            )  # fmt: skip
    # First-party providers keep their key requirement on a local URL (tests, proxies).
    with pytest.raises(MissingCredentials, match="OPENAI_API_KEY"):
        provider_settings(
            "openai", api=None, base_url="http://127.0.0.1:9", api_key=None, timeout_s=None, env={}
        )
    for url in ("http://127.0.0.1:1", "http://[::1]:2", "http://10.1.2.3", "http://gpu-box:11434",
                "http://nas.local", "http://192.168.1.50:8000/v1"):  # fmt: skip
        assert is_local_url(url), url
    for url in ("https://ollama.com", "http://8.8.8.8", "https://api.groq.com/openai/v1"):
        assert not is_local_url(url), url


def test_config_accepts_the_reference_provider_shape() -> None:
    cfg: dict[str, Any] = {
        "models": {
            "providers": {
                "ollama": {
                    "baseUrl": "http://127.0.0.1:11434",
                    "api": "ollama",
                    "apiKey": "ollama-local",
                    "models": [{"id": "llama3", "name": "Llama 3", "contextWindow": 8192}],
                },
                "google": {"api": "google-generative-ai", "apiKey": "${GEMINI_API_KEY}"},
            }
        }
    }
    config = OpenClawConfig.model_validate(cfg)
    assert config.models.providers["ollama"].api == "ollama"

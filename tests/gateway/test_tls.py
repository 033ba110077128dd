"""Every outbound client we build verifies TLS with the process's one context (gateway/tls.py).

The fakes serve HTTPS with a certificate from a throwaway authority (tests/fakes/tls.py):
- with the shared context as the gateway builds it (the system's trust), every client refuses
  them: the handshake fails on the certificate and the fake never sees a request;
- with the shared context replaced by one that trusts the authority, every client gets through.
  No other trust store knows the authority, so this shows each client uses the shared context.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import discord
import httpx
import pytest
import yarl

import gateway.tls
from channels.discord import DiscordChannel
from channels.discord.library import discover_gateway
from channels.telegram.channel import TelegramChannel
from gateway.agents.memory.embeddings import Embedder
from gateway.agents.memory.settings import Embeddings
from gateway.agents.web import brave
from gateway.agents.web.fetch import FetchError, fetch_url
from gateway.agents.web.ssrf import SsrfGuard
from gateway.config.models import DiscordConfig, TelegramConfig
from gateway.doctor import _probe_provider
from gateway.media import speech, transcribe
from gateway.tls import client_context
from providers.anthropic_api import AnthropicProvider
from providers.endpoints import provider_settings
from providers.google_api import GoogleProvider
from providers.openai_api import OpenAIProvider
from providers.types import Message, ProviderSettings, TurnRequest
from tests.fakes import discord as fd
from tests.fakes.base import LoopbackServer
from tests.fakes.discord import FakeDiscord
from tests.fakes.embeddings import FakeEmbeddings
from tests.fakes.gemini import FakeGemini
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.fakes.tls import Pki, make_pki
from tests.fakes.web import FakeBrave, PageServer

BRAVE_KEY = "brave-tls-key"
TIMEOUT_S = 5.0


@dataclass
class Fakes:
    llm: FakeLLM
    gemini: FakeGemini
    embeddings: FakeEmbeddings
    pages: PageServer
    brave: FakeBrave
    tg: FakeTelegram
    dc: FakeDiscord
    tmp: Path

    def all(self) -> list[LoopbackServer]:
        return [self.llm, self.gemini, self.embeddings, self.pages, self.brave, self.tg, self.dc]


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


@pytest.fixture
async def fakes(pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Fakes]:
    f = Fakes(
        FakeLLM(),
        FakeGemini(),
        FakeEmbeddings(),
        PageServer(),
        FakeBrave(BRAVE_KEY),
        FakeTelegram(),
        FakeDiscord(),
        tmp_path,
    )
    for server in f.all():
        server.tls = pki.server
        await server.start()
    # discord.py's REST base is a class attribute (channels/discord/library.py): restored after.
    monkeypatch.setattr(discord.http.Route, "BASE", f.dc.api_base)
    yield f
    for server in f.all():
        await server.stop()


# --- one request through each client we build ----------------------------------------------------


async def _stream(provider: AnthropicProvider | OpenAIProvider | GoogleProvider) -> None:
    try:
        async for _ in provider.stream(TurnRequest("m", (Message.text("user", "hi"),))):
            pass
    finally:
        await provider.close()


async def anthropic_provider(f: Fakes) -> None:
    settings = ProviderSettings("anthropic", "anthropic-messages", f.llm.url, "sk-ant", None, 5)
    await _stream(AnthropicProvider(settings))


async def openai_provider(f: Fakes) -> None:
    url = f.llm.url + "/v1"
    await _stream(
        OpenAIProvider(ProviderSettings("openai", "openai-completions", url, "sk", None, 5))
    )


async def google_provider(f: Fakes) -> None:
    env = {"GEMINI_API_KEY": "AIza-test"}
    url = f.gemini.url + "/v1beta"
    settings = provider_settings(
        "google", api=None, base_url=url, api_key=None, timeout_s=TIMEOUT_S, env=env
    )
    await _stream(GoogleProvider(settings))


async def doctor_anthropic(f: Fakes) -> None:
    await _probe_provider(ProviderSettings("anthropic", "anthropic-messages", f.llm.url, "sk-ant"))


async def doctor_openai(f: Fakes) -> None:
    url = f.llm.url + "/v1"
    await _probe_provider(ProviderSettings("openai", "openai-completions", url, "sk"))


async def memory_embeddings(f: Fakes) -> None:
    settings = Embeddings("openai", "text-embedding-3-small", "sk-emb", f.embeddings.base_url)
    embedder = Embedder(settings, timeout_s=TIMEOUT_S)
    try:
        await embedder.embed(["the backup plan"])
    finally:
        await embedder.close()


async def transcription(f: Fakes) -> None:
    audio = f.tmp / "voice.ogg"
    audio.write_bytes(b"OggS" + bytes(4000))
    settings = ProviderSettings("openai", "openai-completions", f.llm.url + "/v1", "sk")
    candidate = transcribe.Candidate("openai", "whisper-1", settings, timeout_s=TIMEOUT_S)
    await transcribe._call(candidate, audio, "voice.ogg", "audio/ogg")


async def text_to_speech(f: Fakes) -> None:
    voice = speech.Voice(
        api_key="sk",
        base_url=f.llm.url + "/v1",
        model="tts-1",
        voice="alloy",
        instructions=None,
        response_format=None,
        speed=None,
        timeout_s=TIMEOUT_S,
        max_chars=1000,
    )
    await speech.synthesize(voice, "hello there", voice_note=True)


async def web_fetch(f: Fakes) -> None:
    guard = SsrfGuard.from_lists(["127.0.0.1"])
    fetched = await fetch_url(
        f.pages.url + "/counter", guard, max_bytes=50_000, timeout_s=TIMEOUT_S, max_redirects=2
    )
    assert fetched.body == b"hit 1"


async def web_search(f: Fakes) -> None:
    env = {brave.BASE_URL_ENV: f.brave.url}
    await brave.search("moths", key=BRAVE_KEY, count=1, timeout_s=TIMEOUT_S, params={}, env=env)


def _telegram_channel(f: Fakes) -> TelegramChannel:
    async def ignore(*_: object) -> None:
        return None

    config = TelegramConfig(api_root=f.tg.url)
    return TelegramChannel(account_id="default", token=TOKEN, config=config, on_message=ignore)


async def telegram_requests(f: Fakes) -> None:
    bot = _telegram_channel(f)._build_bot(TOKEN)
    try:
        await bot.initialize()  # getMe through the main request
        await bot.get_updates(timeout=0)  # the long-poll request, a client of its own
    finally:
        await bot.shutdown()


async def discord_discovery(f: Fakes) -> None:
    await discover_gateway(yarl.URL(f.dc.api_base))


async def discord_client(f: Fakes) -> None:
    async def ignore(*_: object) -> None:
        return None

    channel = DiscordChannel(
        gateway=None,
        account_id="default",
        token=fd.TOKEN,
        config=DiscordConfig(),
        on_message=ignore,
    )
    client = channel._new_client()
    try:
        await client.login(fd.TOKEN)  # GET /users/@me through discord.py's session
    finally:
        await client.close()


Client = Callable[[Fakes], Awaitable[None]]
CLIENTS: dict[str, Client] = {
    "anthropic": anthropic_provider,
    "openai": openai_provider,
    "google": google_provider,
    "doctor-anthropic": doctor_anthropic,
    "doctor-openai": doctor_openai,
    "embeddings": memory_embeddings,
    "transcription": transcription,
    "speech": text_to_speech,
    "web_fetch": web_fetch,
    "web_search": web_search,
    "telegram": telegram_requests,
    "discord-discovery": discord_discovery,
    "discord": discord_client,
}


def _certificate_refused(exc: BaseException) -> bool:
    """Somewhere in the chain: a failed certificate check (each library wraps it its own way)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ssl.SSLCertVerificationError | aiohttp.ClientConnectorCertificateError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(e):
            return True
        todo += [e.__cause__, e.__context__, *getattr(e, "exceptions", ())]
    return False


@pytest.mark.parametrize("name", list(CLIENTS))
async def test_refuses_a_certificate_the_system_does_not_trust(
    name: str, fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway.tls, "_context", None)  # built afresh, as the gateway does
    with pytest.raises(Exception) as caught:  # each library raises its own kind
        await CLIENTS[name](fakes)
    assert _certificate_refused(caught.value), repr(caught.value)
    assert all(not server.requests for server in fakes.all()), "a request got through"
    assert fakes.pages.hits == 0


@pytest.mark.parametrize("name", list(CLIENTS))
async def test_uses_the_shared_context(
    name: str, fakes: Fakes, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway.tls, "_context", pki.trusting_context())
    await CLIENTS[name](fakes)  # only the shared context trusts the test authority
    assert any(server.requests for server in fakes.all()) or fakes.pages.hits == 1


async def test_web_fetch_still_checks_the_name_on_a_pinned_connection(
    fakes: Fakes, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`localhost` is pinned to 127.0.0.1, whose certificate does not name `localhost`."""
    monkeypatch.setattr(gateway.tls, "_context", pki.trusting_context())
    guard = SsrfGuard.from_lists(["localhost"])
    url = f"https://localhost:{fakes.pages.port}/counter"
    with pytest.raises(FetchError, match="request failed") as caught:
        await fetch_url(url, guard, max_bytes=50_000, timeout_s=TIMEOUT_S, max_redirects=2)
    assert _certificate_refused(caught.value)
    assert fakes.pages.requests == [] and fakes.pages.hits == 0


async def test_the_context_is_built_once_from_the_trust_settings(
    fakes: Fakes, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SSL_CERT_FILE names the bundle to trust, as for the SDKs' own clients.
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_pem))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setattr(gateway.tls, "_context", None)
    seen: list[ssl.SSLContext] = []
    threads = [threading.Thread(target=lambda: seen.append(client_context())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ctx = client_context()
    assert all(c is ctx for c in seen) and len(seen) == 8
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.cert_store_stats()["x509_ca"] == 1  # the bundle named, nothing else
    async with httpx.AsyncClient(verify=ctx) as client:
        resp = await client.get(fakes.pages.url + "/plain")
    assert resp.status_code == 200


def test_without_settings_the_system_store_is_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setattr(gateway.tls, "_context", None)
    ctx = client_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    paths = ssl.get_default_verify_paths()
    if Path(paths.openssl_cafile).is_file():
        expected = ssl.create_default_context(cafile=paths.openssl_cafile)
        assert ctx.cert_store_stats() == expected.cert_store_stats()
    else:  # no system bundle here: certifi's, as httpx would use
        import certifi

        expected = ssl.create_default_context(cafile=certifi.where())
        assert ctx.cert_store_stats() == expected.cert_store_stats()

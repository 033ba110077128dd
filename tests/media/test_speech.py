"""Spoken replies (`tts`): real PTB ↔ fake Bot API ↔ gateway ↔ fake model and speech API."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from gateway.config.models import OpenClawConfig
from gateway.media.speech import (
    DEFAULT_MODEL,
    SpeechFailed,
    resolve_voice,
    speakable,
    wants_speech,
)
from tests.channels.conftest import gateway_config, telegram_gateway
from tests.channels.test_discord_e2e import discord_runner, fly_guide_config
from tests.fakes import discord as fd
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import FakeLLM, speech_audio
from tests.fakes.telegram import FakeTelegram
from tests.harness import live_gateway
from tests.media.samples import OGG_OPUS

ANSWER = "The meeting moved to Thursday at ten."
OPEN_DM = {"dmPolicy": "open", "allowFrom": ["*"]}


def sent_to(chat: int):  # type: ignore[no-untyped-def]
    return lambda p: p.get("chat_id") == str(chat)


async def test_always_sends_the_text_and_a_voice_note(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_llm.script.append({"text": ANSWER})
    cfg = gateway_config(fake_tg, fake_llm, OPEN_DM, tts={"auto": "always"})
    async with telegram_gateway(tmp_path, cfg) as live:
        fake_tg.text_update("when is the meeting?")
        reply = await fake_tg.wait_for("sendMessage", sent_to(42), timeout=10)
        voice = await fake_tg.wait_for("sendVoice", sent_to(42), timeout=10)
        state = live.gateway.settings.state_dir
    assert reply["text"] == ANSWER
    audio, _ = speech_audio(ANSWER, "opus")
    assert voice["voice"]["bytes"] == audio  # the synthesised Ogg/Opus, as a voice note
    [request] = fake_llm.speech_requests
    assert request["input"] == ANSWER and request["response_format"] == "opus"
    assert request["model"] == DEFAULT_MODEL and request["voice"] == "coral"
    assert request["auth"] == "Bearer sk-test"  # the OpenAI provider's key
    [kept] = list((state / "media" / "speech").glob("*.ogg"))  # kept in the media store
    assert kept.read_bytes() == audio


async def test_inbound_speaks_only_after_a_voice_note(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_llm.script += [{"text": "A typed answer for you."}, {"text": ANSWER}]
    fake_llm.transcripts.append("when is the meeting?")
    # The legacy place (`messages.tts`) and a legacy voice alias still work.
    tts = {"auto": "inbound", "providers": {"openai": {"voice": "alloy", "model": "tts-1"}}}
    cfg = gateway_config(fake_tg, fake_llm, OPEN_DM, messages={"tts": tts})
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("hello there")
        await fake_tg.wait_for("sendMessage", lambda p: "typed" in p.get("text", ""), timeout=10)
        fake_tg.voice_update(OGG_OPUS)
        await fake_tg.wait_for("sendMessage", lambda p: p.get("text") == ANSWER, timeout=10)
        voice = await fake_tg.wait_for("sendVoice", sent_to(42), timeout=10)
    assert voice["voice"]["bytes"] == speech_audio(ANSWER, "opus")[0]
    [request] = fake_llm.speech_requests  # the typed message got no voice
    assert (request["voice"], request["model"]) == ("alloy", "tts-1")


async def test_speech_failure_keeps_the_text_reply(
    tmp_path: Path,
    fake_tg: FakeTelegram,
    fake_llm: FakeLLM,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="media")
    fake_llm.script.append({"text": ANSWER})
    fake_llm.speech_failures.append(503)
    cfg = gateway_config(fake_tg, fake_llm, OPEN_DM, tts={"auto": "always"})
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.text_update("when is the meeting?")
        reply = await fake_tg.wait_for("sendMessage", sent_to(42), timeout=10)
        for _ in range(200):  # until the failure is logged
            if any("no spoken reply" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.02)
    assert reply["text"] == ANSWER
    assert len(fake_llm.speech_requests) == 1
    [line] = [r.getMessage() for r in caplog.records if "no spoken reply" in r.getMessage()]
    assert "speech synthesis failed (InternalServerError)" in line and "sk-test" not in line
    assert not [r for r in fake_tg.requests if r["method"] == "sendVoice"]


async def test_discord_gets_an_mp3_attachment_after_the_text(
    tmp_path: Path, fake_discord_bot: FakeDiscord, fake_llm: FakeLLM
) -> None:
    fake, llm = fake_discord_bot, fake_llm
    llm.script.append({"text": ANSWER})
    config: dict[str, Any] = fly_guide_config(llm.url)
    config["tts"] = {"auto": "always", "providers": {"openai": {"speakerVoice": "sage"}}}
    async with live_gateway(tmp_path, config) as live:
        await discord_runner(live).wait_for_status(lambda s: s.connected)
        await fake.message_create(fd.message("meeting?", fd.TEXT_CH, guild_id=fd.GUILD_ID))
        reply = await fake.wait_rest("POST", f"/channels/{fd.TEXT_CH}/messages", timeout=15)
        assert reply["json"]["content"] == ANSWER
        await fake.wait_until(lambda _: bool(fake.uploads()), timeout=15)
    [upload] = fake.uploads()
    assert upload["filename"] == "voice.mp3" and upload["bytes"] == speech_audio(ANSWER, "mp3")[0]
    [request] = llm.speech_requests
    assert (request["response_format"], request["voice"]) == ("mp3", "sage")


def test_which_replies_are_spoken() -> None:
    cfg = OpenClawConfig.model_validate({"tts": {"auto": "inbound"}})
    assert not wants_speech(None, True)
    assert wants_speech(cfg.tts, True) and not wants_speech(cfg.tts, False)
    legacy = OpenClawConfig.model_validate({"messages": {"tts": {"enabled": True}}})
    assert wants_speech(legacy.messages.tts, False)  # legacy `enabled: true` = always
    off = OpenClawConfig.model_validate({"tts": {"providers": {"openai": {}}}})
    assert not wants_speech(off.tts, True)  # off unless `auto` says otherwise
    assert speakable("ok", 100) is None  # too short to be worth a voice note
    assert speakable("See:\n```python\n" + "x = 1\n" * 20 + "```", 100) is None  # code
    code_and_prose = "Run this to install it on your machine:\n```\npip install x\n```"
    assert speakable(code_and_prose, 100) == "Run this to install it on your machine:"
    assert speakable("word " * 100, 42) == ("word " * 100)[:42].rstrip()  # cut at the limit


def test_voice_settings_resolution() -> None:
    env = {"OPENAI_API_KEY": "sk-env"}
    plain = resolve_voice(OpenClawConfig.model_validate({"tts": {"auto": "always"}}), env)
    assert (plain.api_key, plain.base_url) == ("sk-env", "https://api.openai.com/v1")
    own: dict[str, Any] = {"apiKey": "sk-tts", "baseUrl": "http://tts.local/v1"}
    cfg = OpenClawConfig.model_validate(
        {
            "models": {"providers": {"openai": {"baseUrl": "http://models/v1", "apiKey": "k"}}},
            "tts": {"providers": {"openai": own}, "maxTextLength": 50},
        }
    )
    voice = resolve_voice(cfg, {"OPENAI_TTS_BASE_URL": "http://env/v1"})
    assert (voice.api_key, voice.base_url, voice.max_chars) == ("sk-tts", "http://tts.local/v1", 50)
    del own["baseUrl"]
    cfg = OpenClawConfig.model_validate(
        {
            "models": {"providers": {"openai": {"baseUrl": "http://models/v1"}}},
            "tts": {"providers": {"openai": own}},
        }
    )
    assert resolve_voice(cfg, {"OPENAI_TTS_BASE_URL": "http://env/v1"}).base_url == "http://env/v1"
    assert resolve_voice(cfg, {}).base_url == "http://models/v1"
    with pytest.raises(SpeechFailed, match=r"OPENAI_API_KEY|apiKey"):
        resolve_voice(OpenClawConfig.model_validate({"tts": {"auto": "always"}}), {})
    other = OpenClawConfig.model_validate({"tts": {"provider": "elevenlabs"}})
    with pytest.raises(SpeechFailed, match="not supported"):
        resolve_voice(other, env)

"""Discord: attachments through discord.py's `Attachment.read` to an Anthropic model, files back."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.channels.test_discord_e2e import discord_runner, fly_guide_config
from tests.fakes import discord as fd
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import FakeLLM
from tests.harness import live_gateway
from tests.media.samples import pdf, png


def anthropic_config(llm: FakeLLM) -> dict[str, object]:
    config = fly_guide_config(llm.url)
    config["agents"]["defaults"]["model"] = {"primary": "anthropic/claude-test"}
    config["models"] = {"providers": {"anthropic": {"baseUrl": llm.url, "apiKey": "sk-ant-test"}}}
    return config


async def test_attachments_reach_an_anthropic_model_and_files_go_back(
    tmp_path: Path, fake_discord_bot: FakeDiscord, fake_llm: FakeLLM
) -> None:
    fake, llm = fake_discord_bot, fake_llm
    picture, invoice = png(30, 20), pdf("Invoice 4711 total 99 EUR")
    llm.script += [
        {"text": "Nice picture and invoice."},
        {"text": "Your chart:\nMEDIA:chart.png"},
    ]
    async with live_gateway(tmp_path, anthropic_config(llm)) as live:
        await discord_runner(live).wait_for_status(lambda s: s.connected)
        atts = [
            fake.attachment("cat.png", picture, "image/png"),
            fake.attachment("invoice.pdf", invoice, "application/pdf"),
        ]
        msg = fd.message("look at these", fd.TEXT_CH, guild_id=fd.GUILD_ID, attachments=atts)
        await fake.message_create(msg)
        reply = await fake.wait_rest("POST", f"/channels/{fd.TEXT_CH}/messages", timeout=15)
        assert reply["json"]["content"] == "Nice picture and invoice."
        user = [m for m in llm.bodies[-1]["messages"] if m["role"] == "user"][-1]["content"]
        kinds = [part["type"] for part in user]
        assert kinds[:2] == ["image", "document"] and "look at these" in json.dumps(user)
        assert user[0]["source"] == {
            "type": "base64",
            "media_type": "image/png",
            "data": base64.b64encode(picture).decode(),
        }
        assert user[1]["source"]["media_type"] == "application/pdf"
        assert base64.b64decode(user[1]["source"]["data"]) == invoice
        assert user[1]["title"] == "invoice.pdf"
        # Both files came through discord.py from the (fake) CDN.
        assert len([r for r in fake.requests if r.get("kind") == "cdn"]) == 2

        (live.gateway.settings.state_dir / "workspace" / "chart.png").write_bytes(png(12, 12))
        await fake.message_create(fd.message("a chart please", fd.TEXT_CH, guild_id=fd.GUILD_ID))
        await fake.wait_until(lambda _: bool(fake.uploads()), timeout=15)
    [upload] = fake.uploads()
    assert upload["filename"] == "chart.png" and upload["bytes"] == png(12, 12)
    assert upload["path"] == f"/channels/{fd.TEXT_CH}/messages"


async def test_model_without_vision_gets_a_note(
    tmp_path: Path, fake_discord_bot: FakeDiscord, fake_llm: FakeLLM
) -> None:
    fake, llm = fake_discord_bot, fake_llm
    config = fly_guide_config(llm.url)
    config["models"]["providers"]["openai"]["models"] = [{"id": "gpt-test", "input": ["text"]}]
    async with live_gateway(tmp_path, config) as live:
        await discord_runner(live).wait_for_status(lambda s: s.connected)
        att = fake.attachment("cat.png", png(), "image/png")
        msg = fd.message("what is it?", fd.TEXT_CH, guild_id=fd.GUILD_ID, attachments=[att])
        await fake.message_create(msg)
        await fake.wait_rest("POST", f"/channels/{fd.TEXT_CH}/messages", timeout=15)
    body = llm.bodies[-1]
    assert not llm.images(body)
    assert "cat.png, but this model cannot see images" in json.dumps(body)


async def test_embed_images_come_through_discords_media_proxy(
    tmp_path: Path, fake_discord_bot: FakeDiscord, fake_llm: FakeLLM
) -> None:
    fake, llm = fake_discord_bot, fake_llm
    picture = png(16, 9)
    llm.script.append({"text": "A link preview with a picture."})
    # The embed's own host is never contacted; its media-proxy copy is (the fake's CDN here).
    proxied = fake.attachment("preview.png", picture, "image/png")["proxy_url"]
    embed = {
        "type": "article",
        "url": "https://example.invalid/post",
        "thumbnail": {"url": "https://example.invalid/preview.png", "proxy_url": proxied},
    }
    async with live_gateway(tmp_path, anthropic_config(llm)) as live:
        await discord_runner(live).wait_for_status(lambda s: s.connected)
        msg = fd.message("what is this link?", fd.TEXT_CH, guild_id=fd.GUILD_ID, embeds=[embed])
        await fake.message_create(msg)
        await fake.wait_rest("POST", f"/channels/{fd.TEXT_CH}/messages", timeout=15)
    user = [m for m in llm.bodies[-1]["messages"] if m["role"] == "user"][-1]["content"]
    images = [part for part in user if part["type"] == "image"]
    assert [base64.b64decode(i["source"]["data"]) for i in images] == [picture]
    assert len([r for r in fake.requests if r.get("kind") == "cdn"]) == 1

"""Pictures, voice notes and files through real PTB ↔ fake Bot API ↔ gateway ↔ fake model."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from PIL import Image

from tests.channels.conftest import gateway_config, telegram_gateway
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram
from tests.media.samples import OGG_OPUS, jpeg, pdf, png


def sent_to(chat: int):  # type: ignore[no-untyped-def]
    return lambda p: p.get("chat_id") == str(chat)


def last_user(body: dict[str, Any]) -> Any:
    return [m for m in body["messages"] if m["role"] == "user"][-1]["content"]


def user_text(body: dict[str, Any]) -> str:
    content = last_user(body)
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content if p.get("type") == "text")


def describe_image(api: str, body: dict[str, Any]) -> dict[str, Any]:
    """The fake model "looks" at the picture it got: its pixel size and main colour."""
    parts = [p for p in FakeLLM().images(body)]
    if not parts:
        return {"text": "I see no picture."}
    url = parts[-1]["image_url"]["url"]
    data = base64.b64decode(url.split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as img:
        r, g, _ = img.convert("RGB").getpixel((0, 0))  # type: ignore[misc]
        colour = "red" if r > 150 and g < 100 else "other"
        return {"text": f"I see a {colour} picture, {img.width}x{img.height}."}


async def test_photo_in_a_dm_reaches_the_model_as_an_image(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_llm.responder = describe_image
    cfg = gateway_config(fake_tg, fake_llm, {"dmPolicy": "open", "allowFrom": ["*"]})
    photo = png(64, 48, (220, 20, 20))
    async with telegram_gateway(tmp_path, cfg) as live:
        fake_tg.photo_update(photo, caption="what is this?")
        reply = await fake_tg.wait_for("sendMessage", sent_to(42), timeout=10)
        assert reply["text"] == "I see a red picture, 64x48."
        body = fake_llm.bodies[-1]
        [image] = fake_llm.images(body)
        assert (
            image["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(photo).decode()
        )
        assert user_text(body).endswith("what is this?")
        # The transcript holds a reference, not the bytes; the file sits in the session folder.
        state = live.gateway.settings.state_dir
        [stored] = [p for p in (state / "media" / "sessions").rglob("*.png")]
        assert stored.read_bytes() == photo
        transcripts = list((state / "agents").rglob("*.jsonl"))
        assert transcripts and all(
            base64.b64encode(photo).decode()[:40] not in t.read_text() for t in transcripts
        )
        # The next turn still shows the picture to the model (history), from the store.
        fake_tg.text_update("and now?")
        await fake_tg.wait_for(
            "sendMessage",
            lambda p: p.get("text") == "I see a red picture, 64x48." and p is not reply,
            timeout=10,
        )
        assert len(fake_llm.images(fake_llm.bodies[-1])) == 1


async def test_voice_note_arrives_as_its_transcript(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_llm.transcripts.append("remind me to buy milk")
    fake_llm.script.append({"text": "Noted: milk."})
    cfg = gateway_config(fake_tg, fake_llm, {"dmPolicy": "open", "allowFrom": ["*"]})
    async with telegram_gateway(tmp_path, cfg) as live:
        fake_tg.voice_update(OGG_OPUS)
        reply = await fake_tg.wait_for("sendMessage", sent_to(42), timeout=10)
    assert reply["text"] == "Noted: milk."
    [upload] = fake_llm.uploads
    assert upload["bytes"] == OGG_OPUS and upload["filename"] == "voice.ogg"  # Ogg/Opus as is
    assert upload["model"] == "gpt-4o-transcribe" and upload["auth"] == "Bearer sk-test"
    text = user_text(fake_llm.bodies[-1])
    assert "Voice note, transcribed automatically" in text and '"remind me to buy milk"' in text
    assert list((live.gateway.settings.state_dir / "media" / "sessions").rglob("*.ogg"))


async def test_transcription_down_tells_the_agent(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    fake_llm.transcripts.append(503)
    fake_llm.script.append({"text": "Sorry, I could not hear that."})
    cfg = gateway_config(fake_tg, fake_llm, {"dmPolicy": "open", "allowFrom": ["*"]})
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.voice_update(OGG_OPUS)
        reply = await fake_tg.wait_for("sendMessage", sent_to(42), timeout=10)
    assert reply["text"] == "Sorry, I could not hear that."
    text = user_text(fake_llm.bodies[-1])
    assert "sent a voice note, but it could not be transcribed: openai failed" in text


async def test_bad_files_never_lose_the_message(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    cfg = gateway_config(
        fake_tg, fake_llm, {"dmPolicy": "open", "allowFrom": ["*"], "mediaMaxMb": 0.01}
    )
    async with telegram_gateway(tmp_path, cfg):
        # Over the limit (declared by Telegram): the sender is told the limit, no download.
        fake_tg.document_update(b"x" * 20_000, "big.zip", "application/zip")
        notice = await fake_tg.wait_for("sendMessage", sent_to(42), timeout=10)
        assert "big.zip (20 KB) is too large: the limit here is 10 KB" in notice["text"]
        assert "channels.telegram.mediaMaxMb" in notice["text"]
        assert not [r for r in fake_tg.requests if r["method"] == "getFile"]
        # A damaged picture: the agent hears of it and answers.
        whole = jpeg(32, 32)
        fake_tg.photo_update(whole[:-60], caption="look")
        await fake_tg.wait_for("sendMessage", lambda p: p.get("text") == "ok", timeout=10)
        text = user_text(fake_llm.bodies[-1])
        assert "look" in text and "picture photo.jpg could not be read" in text
        assert "truncated" in text.lower()
        assert not fake_llm.images(fake_llm.bodies[-1])


async def test_pdf_and_text_documents(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    cfg = gateway_config(fake_tg, fake_llm, {"dmPolicy": "open", "allowFrom": ["*"]})
    async with telegram_gateway(tmp_path, cfg):
        fake_tg.document_update(pdf("Invoice 4711 total 99 EUR"), "invoice.pdf", "application/pdf")
        await fake_tg.wait_for("sendMessage", sent_to(42), timeout=10)
        text = user_text(fake_llm.bodies[-1])
        # OpenAI Chat here: the PDF's text, extracted with pypdf and fenced as file content.
        assert '<attached_file name="invoice.pdf" type="application/pdf">' in text
        assert "Invoice 4711 total 99 EUR" in text
        fake_tg.document_update(b"alpha\nbeta\n", "notes.txt", "text/plain", caption="read it")
        await fake_tg.wait_for("sendMessage", lambda p: len(fake_llm.bodies) >= 2, timeout=10)
        text = user_text(fake_llm.bodies[-1])
        assert "alpha\nbeta" in text and "read it" in text


async def test_agent_sends_a_generated_file_back_as_a_document(
    tmp_path: Path, fake_tg: FakeTelegram, fake_llm: FakeLLM
) -> None:
    csv = "item,price\nmilk,1.20\n"
    fake_llm.script += [
        {"tool_calls": [{"name": "write", "arguments": {"path": "report.csv", "content": csv}}]},
        {"text": "Here is your report.\n\nMEDIA:report.csv\n"},
        {"text": "A chart:\nMEDIA:chart.png\nMEDIA:../secret.txt"},
    ]
    cfg = gateway_config(fake_tg, fake_llm, {"dmPolicy": "allowlist", "allowFrom": [42]})
    async with telegram_gateway(tmp_path, cfg) as live:
        fake_tg.text_update("make me a report")
        doc = await fake_tg.wait_for("sendDocument", sent_to(42), timeout=10)
        text = await fake_tg.wait_for("sendMessage", sent_to(42))
        assert text["text"] == "Here is your report."  # the MEDIA: line is not shown
        assert doc["document"] == {"filename": "report.csv", "bytes": csv.encode()}
        # A picture goes as a photo; a path outside the workspace is refused, in words.
        workspace = live.gateway.settings.state_dir / "workspace"
        (workspace / "chart.png").write_bytes(png(20, 10))
        (workspace.parent / "secret.txt").write_text("not for strangers")
        fake_tg.text_update("and a chart?")
        photo = await fake_tg.wait_for("sendPhoto", sent_to(42), timeout=10)
        assert photo["photo"]["bytes"] == png(20, 10)
        refused = await fake_tg.wait_for(
            "sendMessage", lambda p: "Could not attach" in p.get("text", ""), timeout=10
        )
    assert refused["text"] == "(Could not attach ../secret.txt: outside the workspace)"
    assert len(fake_tg.calls("sendDocument")) == 1

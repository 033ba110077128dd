"""chat.send attachments (the Control UI's way) and the signed media URLs of chat.history."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.llm import FakeLLM
from tests.harness import chat, connected, final_text, live_gateway
from tests.media.samples import pdf, png


@pytest.fixture
async def fake_llm() -> Any:
    fake = FakeLLM(default_text="got it")
    await fake.start()
    yield fake
    await fake.stop()


def config(fake: FakeLLM, api: str = "openai-responses") -> dict[str, Any]:
    entry = {"baseUrl": fake.url + "/v1", "apiKey": "sk-test", "api": api}
    return {
        "models": {"providers": {"openai": entry}},
        "agents": {"defaults": {"model": {"primary": "openai/m-test"}, "mediaMaxMb": 1}},
    }


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_attachments_reach_the_model_and_history_shows_them(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    picture = png(40, 30)
    async with live_gateway(tmp_path, config(fake_llm)) as live, connected(live) as client:
        assert client.hello["policy"]["attachments"] == {  # type: ignore[attr-defined]
            "maxBytes": 1024 * 1024,
            "maxImageBytes": 1024 * 1024,
        }
        attachments = [
            {
                "type": "image",
                "mimeType": "image/png",
                "fileName": "dot.png",
                "content": b64(picture),
            },
            {
                "type": "file",
                "mimeType": "application/pdf",
                "fileName": "a.pdf",
                "content": b64(pdf("Total 42")),
            },
        ]
        events = await chat(client, "", attachments=attachments)
        assert final_text(events) == "got it"
        # Responses API: the picture as input_image, the PDF as its extracted text.
        [image] = fake_llm.images(fake_llm.bodies[-1])
        assert image == {
            "type": "input_image",
            "image_url": f"data:image/png;base64,{b64(picture)}",
        }
        assert "Total 42" in str(fake_llm.bodies[-1]["input"])
        history = await client.call("chat.history", {"sessionKey": "main"})
        user = next(m for m in history["messages"] if m["role"] == "user")
        shown = [b for b in user["content"] if b["type"] in ("image", "file")]
        assert [(b["type"], b["fileName"], b["mimeType"]) for b in shown] == [
            ("image", "dot.png", "image/png"),
            ("file", "a.pdf", "application/pdf"),
        ]
        assert all("media" not in b and "base64" not in str(b) for b in shown)
        async with httpx.AsyncClient(base_url=live.http) as http:
            got = await http.get(shown[0]["url"])
            assert got.status_code == 200 and got.content == picture
            assert got.headers["content-type"] == "image/png"
            assert got.headers["x-content-type-options"] == "nosniff"
            doc = await http.get(shown[1]["url"])
            assert doc.headers["content-type"] == "application/octet-stream"
            assert doc.headers["content-disposition"].startswith("attachment")
            forged = shown[0]["url"].replace("sig=", "sig=0")
            assert (await http.get(forged)).status_code == 403
            unsigned = shown[0]["url"].split("?")[0]
            assert (await http.get(unsigned)).status_code == 403


async def test_bad_attachments_are_refused_by_name(tmp_path: Path, fake_llm: FakeLLM) -> None:
    async with live_gateway(tmp_path, config(fake_llm)) as live, connected(live) as client:

        async def send(att: dict[str, Any]) -> str:
            res = await client.request(
                "chat.send",
                {
                    "sessionKey": "main",
                    "message": "x",
                    "idempotencyKey": f"k{id(att)}",
                    "attachments": [att],
                },
            )
            assert not res["ok"]
            return str(res["error"]["message"])

        assert "attachments[0] (a.png): content is not valid base64" in await send(
            {"type": "image", "fileName": "a.png", "content": "@@@"}
        )
        assert "over the 1048576 byte limit" in await send(
            {"type": "file", "fileName": "big.bin", "content": b64(b"\x00" * (1024 * 1024 + 10))}
        )
        broken = png(50, 50)[:-30]
        assert "b.png could not be read" in await send(
            {"type": "image", "fileName": "b.png", "content": b64(broken)}
        )
    assert not fake_llm.bodies  # nothing half-sent

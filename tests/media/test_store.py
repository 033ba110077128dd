"""The media store, type sniffing and the model blocks built from stored files."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.media.blocks import MediaResolver, fit_request, pdf_text
from gateway.media.refs import MediaRef
from gateway.media.sniff import BadImage, sniff
from gateway.media.store import MediaStore, TooLarge, session_folder
from providers.types import Document, Image, Message, Text, TurnRequest
from tests.media.samples import OGG_OPUS, jpeg, noisy_jpeg, pdf, png

FOLDER = session_folder("agent:main:telegram:direct:42")


def test_sniff_trusts_bytes_over_names_and_claims() -> None:
    assert sniff(png(), "photo.jpg", "image/jpeg") == "image/png"
    assert sniff(OGG_OPUS, "voice.oga", "audio/opus") == "audio/ogg"
    assert sniff(pdf("x"), "a.bin", None) == "application/pdf"
    assert sniff(b"# Notes\nhello", "notes.md", None) == "text/markdown"
    assert sniff(b"plain words", None, "application/json") == "application/json"
    # A claim the bytes would have confirmed is not believed.
    assert sniff(b"\x00\x01\x02garbage", "x.png", "image/png") == "application/octet-stream"
    assert sniff(b"\x00\x01PK?", "a.docx", None) == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )


def test_save_bytes_hashes_sniffs_and_confines(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media")
    checked = store.save_bytes(png(8, 6), folder=FOLDER, max_bytes=1 << 20, name="photo.jpg")
    ref = checked.ref
    assert ref.mime == "image/png" and ref.path.startswith(FOLDER) and ref.path.endswith(".png")
    assert (checked.width, checked.height) == (8, 6)
    assert store.read(ref) == png(8, 6) and len(ref.sha256) == 64
    assert oct(store.path(ref).stat().st_mode & 0o777) == "0o600"
    assert MediaRef.from_block(ref.block()) == ref
    for bad in ("../../etc/passwd", "/etc/passwd", "sessions/../../x"):
        with pytest.raises(ValueError):
            store.path(bad)
    assert not list((tmp_path / "media" / "tmp").iterdir())


def test_corrupt_and_truncated_images_are_refused(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media")
    whole = png(32, 32)
    with pytest.raises(BadImage, match=r"photo\.png could not be read"):
        store.save_bytes(
            whole[: len(whole) // 2], folder=FOLDER, max_bytes=1 << 20, name="photo.png"
        )
    full = jpeg(64, 64)
    with pytest.raises(BadImage, match="truncated"):
        store.save_bytes(full[:-40], folder=FOLDER, max_bytes=1 << 20, name="cut.jpg")
    assert not list((tmp_path / "media").rglob("*.png")) and not list(
        (tmp_path / "media").rglob("*.jpg")
    )


async def test_stream_stops_at_the_cap_without_keeping_anything(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media")
    pulled = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(100):
            pulled += 1
            yield b"x" * 1000

    with pytest.raises(TooLarge, match=r"big\.bin is over the 4 KB limit"):
        await store.save_stream(chunks(), folder=FOLDER, max_bytes=4096, name="big.bin")
    assert pulled == 5  # stopped reading at the cap
    assert not [p for p in (tmp_path / "media").rglob("*") if p.is_file()]


def test_prune_by_age_then_total_size(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media", max_age_s=3600, max_total_bytes=2500)
    refs = [
        store.save_bytes(os.urandom(1000), folder=FOLDER, max_bytes=10_000, name=f"{i}.bin").ref
        for i in range(4)
    ]
    now = time.time()
    os.utime(store.path(refs[0]), (now - 7200, now - 7200))  # too old
    os.utime(store.path(refs[1]), (now - 60, now - 60))  # oldest of the rest
    assert store.prune(now) == 2
    assert [store.exists(r) for r in refs] == [False, False, True, True]


def test_resolver_sends_newest_images_and_describes_the_rest(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media")
    image = store.save_bytes(png(), folder=FOLDER, max_bytes=1 << 20, name="cat.png").ref
    doc = store.save_bytes(
        pdf("Invoice 4711"), folder=FOLDER, max_bytes=1 << 20, name="inv.pdf"
    ).ref
    text = store.save_bytes(
        b"line one\nline two", folder=FOLDER, max_bytes=1 << 20, name="a.txt"
    ).ref
    odd = store.save_bytes(
        b"\x00\x01\x02\x03" * 10, folder=FOLDER, max_bytes=1 << 20, name="x.dat"
    ).ref
    history = [{"role": "user", "content": [{"type": "text", "text": "hi"}, image.block()]}]
    resolver = MediaResolver(store, history)
    [img] = resolver.blocks(image)
    assert isinstance(img, Image) and img.data == png() and img.name == "cat.png"
    assert isinstance(resolver.blocks(doc)[0], Text)  # not among the live ones: a note
    assert "Earlier PDF inv.pdf" in resolver.blocks(doc)[0].text  # type: ignore[union-attr]
    [inline] = resolver.blocks(text)
    assert isinstance(inline, Text) and "line one\nline two" in inline.text
    [desc] = resolver.blocks(odd)
    assert isinstance(desc, Text) and "x.dat (application/octet-stream, 40 bytes)" in desc.text
    store.path(image).unlink()
    assert "no longer available" in resolver.blocks(image)[0].text  # type: ignore[union-attr]


def test_big_images_are_shrunk_for_the_model(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media")
    data = noisy_jpeg(1800, 1400)
    ref = store.save_bytes(data, folder=FOLDER, max_bytes=50 << 20, name="big.jpg").ref
    big = MediaRef(ref.path, ref.mime, 5_000_000, ref.sha256, ref.name)  # pretend it is 5 MB
    [img] = MediaResolver(store, [{"role": "user", "content": [big.block()]}]).blocks(big)
    assert isinstance(img, Image) and img.media_type == "image/jpeg" and len(img.data) < len(data)


def test_fit_request_per_model() -> None:
    request = TurnRequest(
        model="m",
        messages=(
            Message(
                "user",
                (
                    Image("image/png", png(), "cat.png"),
                    Document("application/pdf", pdf("Total 99 EUR"), "bill.pdf"),
                    Text("what?"),
                ),
            ),
        ),
    )
    same = fit_request(request, api="anthropic-messages", vision=True)
    assert same.messages == request.messages
    blind = fit_request(request, api="openai-completions", vision=False)
    first, second, third = blind.messages[0].content
    assert isinstance(first, Text) and "cat.png, but this model cannot see images" in first.text
    assert isinstance(second, Text) and "Total 99 EUR" in second.text and "bill.pdf" in second.text
    assert third == Text("what?")
    assert "could not be read" in pdf_text(b"%PDF-1.4 broken")

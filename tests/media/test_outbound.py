"""`MEDIA:` lines: which ones attach a file, and which files may go."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.media.outbound import Refused, resolve, split_media


def test_only_standalone_media_lines_outside_code_count() -> None:
    text = (
        'Here you go.\n\nMEDIA:out/report.pdf\n   MEDIA: "my file.png"\n'
        "```\nMEDIA:in-code.txt\n```\n    MEDIA:indented-code.txt\n"
        "**MEDIA:bold.png**\nsee MEDIA:inline.png\n"
    )
    kept, refs = split_media(text)
    assert refs == ["out/report.pdf", "my file.png"]
    assert "MEDIA:in-code.txt" in kept and "**MEDIA:bold.png**" in kept
    assert "see MEDIA:inline.png" in kept and "    MEDIA:indented-code.txt" in kept
    assert split_media("no files") == ("no files", [])


def test_resolve_stays_inside_the_roots(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "out").mkdir(parents=True)
    (ws / "out" / "a.txt").write_text("hello")
    (tmp_path / "secret.txt").write_text("x")
    (ws / "link.txt").symlink_to(tmp_path / "secret.txt")
    (ws / "empty.txt").write_text("")
    got = resolve("out/a.txt", [ws], 1000)
    assert (got.name, got.mime, got.size) == ("a.txt", "text/plain", 5)
    assert resolve(str(ws / "out" / "a.txt"), [ws], 1000).path == got.path
    for ref, reason in [
        ("../secret.txt", "outside the workspace"),
        ("link.txt", "outside the workspace"),
        (str(tmp_path / "secret.txt"), "outside the workspace"),
        ("missing.txt", "no such file"),
        ("out", "not a file"),
        ("empty.txt", "empty"),
        ("https://example.com/x.png", "only files from the workspace"),
    ]:
        with pytest.raises(Refused, match=reason):
            resolve(ref, [ws], 1000)
    with pytest.raises(Refused, match="5 bytes is over the 4 bytes limit"):
        resolve("out/a.txt", [ws], 4)

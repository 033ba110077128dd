"""The UI's static files: no inline code, no HTML sinks, no third-party hosts."""

from __future__ import annotations

import re

from gateway.web import STATIC_DIR

REMOTE = re.compile(r"""(?:from|import|src=|href=|url\()\s*["']?https?://""")


def test_static_files_are_modules_without_inline_code() -> None:
    html = (STATIC_DIR / "index.html").read_text()
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None, "inline script in index.html"
    assert "style=" not in html and " on" + "click=" not in html
    files = [*STATIC_DIR.rglob("*.js"), *STATIC_DIR.rglob("*.css"), STATIC_DIR / "index.html"]
    assert len(files) >= 10
    for path in files:
        text = path.read_text()
        assert not REMOTE.search(text), f"{path} loads something from another host"
        if path.suffix == ".js":
            for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function"):
                assert sink not in text, f"{path} uses {sink}"

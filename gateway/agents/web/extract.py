"""Readable text from fetched bytes: HTML through readability-lxml (main content) and
markdownify (Markdown), JSON pretty-printed, plain text passed through."""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from typing import Literal

# chardet, lxml, readability and markdownify are imported where used: a gateway whose agents
# never fetch a page does not load them (about 15 MB and a slow first turn otherwise).

ExtractMode = Literal["markdown", "text"]

TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/ld+json",
        "application/xml",
        "application/xhtml+xml",
        "application/javascript",
        "application/x-javascript",
        "application/rss+xml",
        "application/atom+xml",
        "application/x-ndjson",
        "application/yaml",
        "application/x-yaml",
        "image/svg+xml",
    }
)
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
MIN_READABLE_CHARS = 200  # readability sometimes keeps only a caption; use the body then


class UnsupportedContent(Exception):
    """The response is not something web_fetch can turn into text."""


@dataclass(frozen=True)
class Extracted:
    text: str
    extractor: str  # "readability" | "html" | "json" | "raw"
    title: str | None = None
    warning: str | None = None


def media_type(content_type: str | None) -> tuple[str, str | None]:
    if not content_type:
        return "", None
    parts = [p.strip() for p in content_type.split(";")]
    charset = None
    for param in parts[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return parts[0].lower(), charset


def is_textual(mime: str, body: bytes) -> bool:
    if mime.startswith("text/") or mime in TEXT_TYPES:
        return True
    if mime.endswith(("+json", "+xml")):
        return True
    if not mime:  # no type given: text unless it has NUL bytes
        return b"\x00" not in body[:4096]
    return False


def decode(body: bytes, charset: str | None) -> tuple[str, str | None]:
    """(text, warning). Bad bytes become U+FFFD; an unknown charset name is ignored."""
    warning = None
    if charset:
        try:
            codecs.lookup(charset)
        except LookupError:
            warning = f"unknown charset {charset!r} ignored"
            charset = None
    if charset is None:
        try:
            return body.decode("utf-8"), warning
        except UnicodeDecodeError:
            import chardet

            guess = chardet.detect(body[:65536]).get("encoding")
            charset = guess if guess and _known(guess) else "utf-8"
    text = body.decode(charset, errors="replace")
    if "\ufffd" in text and "\ufffd".encode(charset, errors="ignore") not in body:
        note = f"invalid {charset} bytes were replaced"
        warning = f"{warning}; {note}" if warning else note
    return text, warning


def _known(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def extract(
    body: bytes, content_type: str | None, mode: ExtractMode, *, readability: bool = True
) -> Extracted:
    mime, charset = media_type(content_type)
    if not is_textual(mime, body):
        raise UnsupportedContent(
            f"unsupported content type {mime or 'unknown'} (binary); "
            "web_fetch reads HTML, plain text, JSON and XML"
        )
    text, warning = decode(body, charset)
    if mime in HTML_TYPES or (not mime and _looks_like_html(text)):
        return _from_html(text, mode, readability, warning)
    if mime == "application/json" or mime.endswith("+json"):
        try:
            pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            return Extracted(text, "raw", warning=warning)
        return Extracted(pretty, "json", warning=warning)
    return Extracted(text, "raw", warning=warning)


def _looks_like_html(text: str) -> bool:
    head = text[:1024].lstrip().lower()
    return head.startswith(("<!doctype html", "<html")) or "<body" in head


def _from_html(html: str, mode: ExtractMode, readability: bool, warning: str | None) -> Extracted:
    from lxml.etree import ParserError  # type: ignore[import-untyped]
    from readability import Document  # type: ignore[import-untyped]
    from readability.readability import Unparseable  # type: ignore[import-untyped]

    if not html.strip():
        return Extracted("", "html", warning=warning)
    title: str | None = None
    content_html: str | None = None
    extractor = "html"
    try:
        doc = Document(html)
        title = (doc.title() or "").strip() or None
        if readability:
            content_html = doc.summary(html_partial=True)
            extractor = "readability"
    except (Unparseable, ParserError, ValueError):
        content_html = None
    text = _render(content_html, mode) if content_html else ""
    if len(text) < MIN_READABLE_CHARS:
        whole = _render(_body_html(html), mode)
        if len(whole) > len(text):
            text, extractor = whole, "html"
    return Extracted(text, extractor, title, warning)


def _body_html(html: str) -> str:
    import lxml.html  # type: ignore[import-untyped]
    from lxml.etree import ParserError

    try:
        root = lxml.html.fromstring(html)
    except (ParserError, ValueError):
        return html
    for bad in root.xpath("//script|//style|//noscript|//template|//head"):
        bad.drop_tree()
    return str(lxml.html.tostring(root, encoding="unicode"))


def _render(fragment: str, mode: ExtractMode) -> str:
    import lxml.html
    from lxml.etree import ParserError
    from markdownify import markdownify

    if mode == "markdown":
        md = markdownify(fragment, heading_style="ATX", strip=["script", "style"])
        return _tidy(md)
    try:
        root = lxml.html.fromstring(fragment)
    except (ParserError, ValueError):
        return ""
    for block in root.iter("p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr"):
        block.tail = "\n" + (block.tail or "")
    return _tidy(root.text_content())


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    out = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return out.strip()

"""Model Markdown through the chunker and the Telegram HTML renderer: pieces within limits,
code fences balanced in every piece, and HTML within Telegram's tag subset, well formed."""

from __future__ import annotations

import html.parser
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.chunking import chunk_text
from channels.telegram_html import html_to_plain, markdown_to_html
from tests.hardening.fuzzcount import COUNTS

FUZZ = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})(.*)$")
FORMATTING = {"b", "i", "s", "u", "tg-spoiler"}
TELEGRAM_TAGS = {"b", "i", "s", "u", "code", "pre", "a", "blockquote", "tg-spoiler", "span"}

words = st.text(
    alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="`~"),
    min_size=1,
    max_size=30,
)
inline = st.one_of(
    words,
    words.map(lambda w: f"**{w}**"),
    words.map(lambda w: f"_{w}_"),
    words.map(lambda w: f"~~{w}~~"),
    words.map(lambda w: f"`{w}`"),
    st.tuples(words, st.sampled_from(["https://e.x/a?b=1&c=<2>", "javascript:alert(1)", "x"])).map(
        lambda t: f"[{t[0]}]({t[1]})"
    ),
    st.sampled_from(["<b>raw</b>", "&amp;", "<script>", "a < b > c", "\\*", "*", "_", "\t"]),
)
line = st.lists(inline, min_size=1, max_size=6).map(" ".join)
block = st.one_of(
    line,
    line.map(lambda s: "# " + s),
    line.map(lambda s: "> " + s),
    line.map(lambda s: "> > " + s),
    st.lists(line, min_size=1, max_size=4).map(lambda ls: "\n".join("- " + x for x in ls)),
    st.lists(line, min_size=1, max_size=4).map(lambda ls: "\n".join("1. " + x for x in ls)),
    st.tuples(st.sampled_from(["", "python", "js x"]), st.lists(line, max_size=8)).map(
        lambda t: "\n".join([f"```{t[0]}", *t[1], "```"])
    ),
    st.just("---"),
    st.just(""),
)
markdown = st.lists(block, max_size=12).map("\n".join)


def fences_balanced(piece: str) -> bool:
    return sum(1 for row in piece.split("\n") if FENCE.match(row)) % 2 == 0


def content(text: str) -> str:
    """Non-whitespace characters outside fence marker lines."""
    kept = [row for row in text.split("\n") if not FENCE.match(row)]
    return "".join("".join(kept).split())


@FUZZ
@given(text=markdown, limit=st.integers(64, 2000), max_lines=st.none() | st.integers(3, 40))
def test_chunks_fit_and_keep_fences_balanced(text: str, limit: int, max_lines: int | None) -> None:
    COUNTS["markdown: chunker"] += 1
    pieces = chunk_text(text, limit, max_lines)
    assert all(piece.strip() for piece in pieces)
    for piece in pieces:
        assert len(piece) <= limit, (len(piece), limit)
        if max_lines is not None:
            assert piece.count("\n") + 1 <= max_lines, (piece, max_lines)
        assert fences_balanced(piece), piece
    assert content("\n".join(pieces)) == content(text)


@FUZZ
@given(text=st.text(max_size=400), limit=st.integers(1, 500))
def test_chunker_on_arbitrary_text(text: str, limit: int) -> None:
    COUNTS["markdown: chunker, arbitrary text"] += 1
    pieces = chunk_text(text, limit)
    assert all(len(piece) <= max(limit, 16) for piece in pieces)
    assert content("\n".join(pieces)) == content(text) or not text.strip() or "```" in text


class TelegramHtml(html.parser.HTMLParser):
    """Checks the subset: known tags, properly nested, nothing inside pre/code but code."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.problems: list[str] = []
        # Well-formed HTML that Telegram's entity rules still refuse (the channel then resends
        # the piece as plain text): counted and reported, see the report's change request.
        self.rejected: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TELEGRAM_TAGS:
            self.problems.append(f"tag <{tag}>")
        if self.stack and self.stack[-1] == "code":
            self.problems.append(f"<{tag}> inside <code>")
        if self.stack and self.stack[-1] == "pre" and tag != "code":
            self.problems.append(f"<{tag}> inside <pre>")
        if tag == "blockquote" and "blockquote" in self.stack:
            self.rejected.append("nested <blockquote>")  # Telegram: can't be nested
        if "a" in self.stack and tag not in FORMATTING:
            self.rejected.append(f"<{tag}> inside <a>")  # "other entities can't contain each other"
        allowed = {"a": {"href"}, "code": {"class"}}.get(tag, set())
        for name, _ in attrs:
            if name not in allowed:
                self.problems.append(f"attribute {name} on <{tag}>")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> does not close {self.stack[-1:] or 'anything'}")
            return
        self.stack.pop()

    def handle_entityref(self, name: str) -> None:
        if name not in {"lt", "gt", "amp", "quot"}:
            self.problems.append(f"entity &{name};")


@FUZZ
@given(text=markdown)
def test_telegram_html_is_well_formed_subset(text: str) -> None:
    COUNTS["markdown: telegram html"] += 1
    out = markdown_to_html(text)
    parser = TelegramHtml()
    parser.feed(out)
    parser.close()
    assert not parser.problems and not parser.stack, (parser.problems, parser.stack, out)
    assert "nested <blockquote>" not in parser.rejected, out  # quotes in quotes are flattened
    if parser.rejected:
        COUNTS["  telegram html refused by entity rules (plain fallback)"] += 1
    assert "<" not in html_to_plain(out).replace("&lt;", "") or "<" in text


@FUZZ
@given(text=st.text(max_size=300))
def test_telegram_html_on_arbitrary_text(text: str) -> None:
    COUNTS["markdown: telegram html, arbitrary text"] += 1
    out = markdown_to_html(text)
    parser = TelegramHtml()
    parser.feed(out)
    parser.close()
    assert not parser.problems and not parser.stack, (parser.problems, parser.stack, out)

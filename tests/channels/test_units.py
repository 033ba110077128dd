"""Pairing store, chunking, Telegram HTML, dedupe and pending group history."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from channels.chunking import chunk_text
from channels.context import (
    CURRENT_HEADER,
    HISTORY_HEADER,
    Dedupe,
    HistoryEntry,
    PendingHistory,
    group_prompt,
    history_limit,
)
from channels.pairing import (
    CODE_ALPHABET,
    MAX_PENDING_PER_ACCOUNT,
    TTL_MS,
    PairingStore,
    pairing_reply,
)
from channels.telegram_html import html_to_plain, markdown_to_html
from gateway.config.models import OpenClawConfig

# --- pairing ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


def test_pairing_request_once_then_approve(tmp_path: Path) -> None:
    clock = Clock()
    store = PairingStore(tmp_path, clock)
    first = store.request("telegram", "default", "42", "Ann")
    assert first.created and first.request is not None
    code = first.request.code
    assert len(code) == 8 and set(code) <= set(CODE_ALPHABET)
    again = store.request("telegram", "default", "42", "Ann")
    assert not again.created and again.request is not None and again.request.code == code
    assert [r.sender_id for r in store.pending("telegram")] == ["42"]
    assert store.allowed("telegram", "default") == frozenset()
    # Another process (the CLI) approves through its own store object.
    approved = PairingStore(tmp_path, clock).approve("telegram", code.lower())
    assert approved is not None and approved.sender_id == "42"
    assert store.allowed("telegram", "default") == {"42"}
    assert store.pending() == []
    assert store.approve("telegram", code) is None  # single use


def test_pairing_cap_and_ttl(tmp_path: Path) -> None:
    clock = Clock()
    store = PairingStore(tmp_path, clock)
    codes = set()
    for sender in range(MAX_PENDING_PER_ACCOUNT):
        out = store.request("telegram", "default", str(sender))
        assert out.created and out.request is not None
        codes.add(out.request.code)
    assert len(codes) == MAX_PENDING_PER_ACCOUNT
    capped = store.request("telegram", "default", "99")
    assert not capped.created and capped.request is None  # ignored silently
    assert store.request("discord", "default", "99").created  # caps are per channel account
    clock.now += TTL_MS + 1
    assert store.pending("telegram") == []
    renewed = store.request("telegram", "default", "0")
    assert renewed.created  # expired → a new code and a new reply


def test_pairing_wrong_channel_and_reply_text() -> None:
    text = pairing_reply("telegram", "42", "ABCDEFGH")
    assert text.startswith("OpenClaw: access not configured.\n\nYour Telegram user id: 42")
    assert "```\nABCDEFGH\n```" in text
    assert "python -m gateway pairing approve telegram ABCDEFGH" in text


def test_pairing_approve_wrong_channel(tmp_path: Path) -> None:
    store = PairingStore(tmp_path)
    out = store.request("telegram", "default", "42")
    assert out.request is not None
    assert store.approve("discord", out.request.code) is None
    assert store.approve("telegram", out.request.code, account_id="other") is None


# --- chunking -----------------------------------------------------------------------------


def _fences_balanced(piece: str) -> bool:
    return len(re.findall(r"^```", piece, flags=re.M)) % 2 == 0


def test_chunk_short_and_empty() -> None:
    assert chunk_text("hello", 2000) == ["hello"]
    assert chunk_text("  \n ", 2000) == []


def test_chunk_limit_and_paragraphs() -> None:
    paras = [("word " * 60).strip() for _ in range(10)]
    text = "\n\n".join(paras)
    pieces = chunk_text(text, 1000)
    assert all(len(p) <= 1000 for p in pieces)
    assert len(pieces) > 1
    assert " ".join(" ".join(pieces).split()) == " ".join(text.split())
    assert all(p == p.strip() for p in pieces)


def test_chunk_long_line_cut_at_whitespace() -> None:
    text = "abcdefghi " * 500
    pieces = chunk_text(text, 400)
    assert all(len(p) <= 400 for p in pieces)
    assert "".join(p.replace(" ", "") for p in pieces) == text.replace(" ", "")


def test_chunk_max_lines() -> None:
    text = "\n".join(f"line {i}" for i in range(40))
    pieces = chunk_text(text, 2000, max_lines=17)
    assert [p.count("\n") + 1 for p in pieces] == [17, 17, 6]


@pytest.mark.parametrize("limit", [200, 500, 4000])
def test_chunk_never_splits_inside_a_fence(limit: int) -> None:
    code = "\n".join(f"    x_{i} = compute({i})  # some code" for i in range(120))
    text = "Intro text.\n\n```python\n" + code + "\n```\n\nOutro."
    pieces = chunk_text(text, limit)
    assert all(len(p) <= limit for p in pieces)
    assert all(_fences_balanced(p) for p in pieces)
    if len(pieces) > 1:
        # Every continuation of the code re-opens the fence with its language.
        assert all(
            p.startswith("```python") for p in pieces[1:] if "x_" in p.split("\n", 1)[-1][:20]
        )
    rejoined = "\n".join(pieces)
    assert pieces[0].startswith("Intro text.") and pieces[-1].endswith("Outro.")
    for i in range(120):
        assert f"x_{i} = compute({i})" in rejoined


def test_chunk_max_lines_with_fence() -> None:
    text = "```\n" + "\n".join(str(i) for i in range(30)) + "\n```"
    pieces = chunk_text(text, 2000, max_lines=17)
    assert all(p.count("\n") + 1 <= 17 for p in pieces)
    assert all(_fences_balanced(p) for p in pieces)


# --- Telegram HTML ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("md", "html"),
    [
        ("**b**", "<b>b</b>"),
        ("_i_", "<i>i</i>"),
        ("~~s~~", "<s>s</s>"),
        ("`x<y`", "<code>x&lt;y</code>"),
        ("[t](http://u?a=1&b=2)", '<a href="http://u?a=1&amp;b=2">t</a>'),
        ("a < b & c > d", "a &lt; b &amp; c &gt; d"),
        ("<script>x</script>", "&lt;script&gt;x&lt;/script&gt;"),
        (
            "```py\nif a<b:\n  pass\n```",
            '<pre><code class="language-py">if a&lt;b:\n  pass</code></pre>',
        ),
        ("# Title\n\ntext", "<b>Title</b>\n\ntext"),
        ("- a\n- b", "• a\n• b"),
        ("1. a\n2. b", "1. a\n2. b"),
        ("> quoted", "<blockquote>quoted</blockquote>"),
        ("one\ntwo", "one\ntwo"),
    ],
)
def test_markdown_to_html(md: str, html: str) -> None:
    assert markdown_to_html(md) == html


def test_html_to_plain_roundtrip() -> None:
    html = markdown_to_html("**bold** and `a<b` & [link](http://x)")
    assert html_to_plain(html) == "bold and a<b & link"


# --- dedupe and history -------------------------------------------------------------------


def test_dedupe_ttl_and_cap() -> None:
    now = [0.0]
    d = Dedupe(ttl_s=10, max_entries=2, clock=lambda: now[0])
    assert not d.seen("a") and d.seen("a")
    now[0] = 11
    assert not d.seen("a")  # expired
    assert not d.seen("b") and not d.seen("c")
    assert not d.seen("a")  # evicted by the cap


def test_pending_history_window() -> None:
    h = PendingHistory()
    for i in range(5):
        h.record("room", HistoryEntry(f"u{i}", f"m{i}", str(i)), limit=3)
    h.record("off", HistoryEntry("u", "m", "1"), limit=0)
    taken = h.take("room")
    assert [e.text for e in taken] == ["m2", "m3", "m4"]
    assert h.take("room") == [] and h.take("off") == []
    prompt = group_prompt(taken, "Ann", "hello bot")
    assert prompt.splitlines() == [
        HISTORY_HEADER,
        "u2: m2",
        "u3: m3",
        "u4: m4",
        "",
        CURRENT_HEADER,
        "Ann: hello bot",
    ]
    assert group_prompt([], "Ann", "hi") == "Ann: hi"


def test_history_limit_resolution() -> None:
    base = OpenClawConfig.model_validate({"channels": {"telegram": {}, "discord": {}}})
    assert history_limit(base, "telegram") == 50 and history_limit(base, "discord") == 20
    msgs = OpenClawConfig.model_validate(
        {"channels": {"discord": {}}, "messages": {"groupChat": {"historyLimit": 7}}}
    )
    assert history_limit(msgs, "discord") == 7
    own = OpenClawConfig.model_validate(
        {
            "channels": {"discord": {"historyLimit": 3}},
            "messages": {"groupChat": {"historyLimit": 7}},
        }
    )
    assert history_limit(own, "discord") == 3
    big = OpenClawConfig.model_validate({"messages": {"groupChat": {"historyLimit": 900}}})
    assert history_limit(big, "discord") == 200


def test_nested_quotes_become_one_blockquote() -> None:
    # Telegram refuses nested blockquote entities ("can't be nested"): keep only the outer one.
    from channels.telegram_html import markdown_to_html

    out = markdown_to_html("> outer\n> > inner\n\nafter")
    assert out.count("<blockquote>") == 1 and out.count("</blockquote>") == 1
    assert "outer" in out and "inner" in out and out.rstrip().endswith("after")

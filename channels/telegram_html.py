"""Model Markdown → Telegram HTML (`parse_mode=HTML`), plus the plain-text fallback.

Parsed with markdown-it-py (CommonMark + strikethrough) and rendered to the small tag set
Telegram accepts: b, i, s, code, pre, a, blockquote. Everything else is escaped text, so a
model can never produce markup Telegram rejects; headings become bold lines and list items
`•`/`1.` lines (channels.md §4.2 allows that simplification).
"""

from __future__ import annotations

import html
import re

from markdown_it import MarkdownIt
from markdown_it.token import Token

_md = MarkdownIt("commonmark", {"html": False}).enable("strikethrough")
_TAG = re.compile(r"<[^>]+>")

_INLINE_TAGS = {
    "strong_open": "<b>",
    "strong_close": "</b>",
    "em_open": "<i>",
    "em_close": "</i>",
    "s_open": "<s>",
    "s_close": "</s>",
    "link_close": "</a>",
}


def escape(text: str) -> str:
    return html.escape(text, quote=False)


def _inline(children: list[Token]) -> str:
    out: list[str] = []
    for tok in children:
        kind = tok.type
        if kind == "text":
            out.append(escape(tok.content))
        elif kind in ("softbreak", "hardbreak"):
            out.append("\n")
        elif kind == "code_inline":
            out.append(f"<code>{escape(tok.content)}</code>")
        elif kind == "link_open":
            href = str(tok.attrs.get("href", ""))
            out.append(f'<a href="{html.escape(href, quote=True)}">')
        elif kind in _INLINE_TAGS:
            out.append(_INLINE_TAGS[kind])
        elif kind == "image":
            out.append(escape(tok.content or str(tok.attrs.get("src", ""))))
        else:  # html_inline and anything unknown: shown as text
            out.append(escape(tok.content))
    return "".join(out)


def markdown_to_html(text: str) -> str:
    out: list[str] = []
    lists: list[list[int]] = []  # stack of [is_ordered, next_number]
    quote_depth = 0  # Telegram refuses nested blockquote entities: only the outer one is kept

    def block_sep() -> None:
        if not out:
            return
        joined_tail = "".join(out[-3:])
        if joined_tail.endswith(("\n\n", "<blockquote>")) or _at_item_start(out):
            return
        out.append("\n" if joined_tail.endswith("\n") else "\n\n")

    for tok in _md.parse(text):
        kind = tok.type
        if kind == "paragraph_open":
            if not tok.hidden:
                block_sep()
        elif kind == "paragraph_close":
            if tok.hidden:
                continue
        elif kind == "inline":
            out.append(_inline(tok.children or []))
        elif kind == "heading_open":
            block_sep()
            out.append("<b>")
        elif kind == "heading_close":
            out.append("</b>")
        elif kind in ("bullet_list_open", "ordered_list_open"):
            if not lists:
                block_sep()
            start = int(tok.attrs.get("start", 1) or 1)
            lists.append([1 if kind == "ordered_list_open" else 0, start])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif kind == "list_item_open":
            if out and not "".join(out[-2:]).endswith("\n"):
                out.append("\n")
            indent = "  " * (len(lists) - 1)
            current = lists[-1]
            if current[0]:
                out.append(f"{indent}{current[1]}. ")
                current[1] += 1
            else:
                out.append(f"{indent}• ")
            out.append("\x00")  # marks "item just started" for block_sep; removed below
        elif kind == "blockquote_open":
            block_sep()
            if quote_depth == 0:
                out.append("<blockquote>")
            quote_depth += 1
        elif kind == "blockquote_close":
            while out and out[-1] in ("\n", "\n\n"):
                out.pop()
            quote_depth -= 1
            if quote_depth == 0:
                out.append("</blockquote>")
        elif kind in ("fence", "code_block"):
            block_sep()
            lang = tok.info.strip().split(" ")[0] if kind == "fence" else ""
            attr = f' class="language-{html.escape(lang, quote=True)}"' if lang else ""
            body = escape(tok.content.rstrip("\n"))
            out.append(f"<pre><code{attr}>{body}</code></pre>")
        elif kind == "hr":
            block_sep()
            out.append("———")
        elif kind == "html_block":
            block_sep()
            out.append(escape(tok.content.rstrip("\n")))
    return "".join(out).replace("\x00", "").strip()


def _at_item_start(out: list[str]) -> bool:
    return bool(out) and out[-1] == "\x00"


def html_to_plain(text: str) -> str:
    """Our HTML back to the same content as plain text (the parse-error fallback)."""
    return html.unescape(_TAG.sub("", text))

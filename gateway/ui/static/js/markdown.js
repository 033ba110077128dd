// A small, safe Markdown renderer: builds DOM nodes, never parses model text as HTML.
// Supports headings, paragraphs, fenced code, lists, block quotes, rules, **bold**,
// *italic*, `code`, ~~strike~~ and [links](https://...) (http, https and mailto only).

import { h } from "./dom.js";

const SAFE_URL = /^(https?:|mailto:)/i;

export function renderMarkdown(text) {
  const root = document.createDocumentFragment();
  const lines = String(text ?? "").replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const fence = line.match(/^\s*(```+|~~~+)\s*([\w+-]*)\s*$/);
    if (fence) {
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) {
        body.push(lines[i]);
        i += 1;
      }
      i += 1;
      const code = h("code", { text: body.join("\n") });
      if (fence[2]) code.dataset.lang = fence[2];
      root.append(h("pre", {}, code));
      continue;
    }
    if (!line.trim()) {
      i += 1;
      continue;
    }
    const heading = line.match(/^(#{1,6})\s+(.*)$/);
    if (heading) {
      // Model headings sit inside a chat bubble: keep them below the page's own h1/h2.
      const level = Math.min(6, heading[1].length + 2);
      root.append(inline(h(`h${level}`), heading[2]));
      i += 1;
      continue;
    }
    if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) {
      root.append(h("hr"));
      i += 1;
      continue;
    }
    if (/^\s*>/.test(line)) {
      const quoted = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) {
        quoted.push(lines[i].replace(/^\s*>\s?/, ""));
        i += 1;
      }
      const block = h("blockquote");
      block.append(renderMarkdown(quoted.join("\n")));
      root.append(block);
      continue;
    }
    const bullet = /^\s*[-*+]\s+/;
    const ordered = /^\s*\d+[.)]\s+/;
    if (bullet.test(line) || ordered.test(line)) {
      const isOrdered = ordered.test(line);
      const marker = isOrdered ? ordered : bullet;
      const list = h(isOrdered ? "ol" : "ul");
      while (i < lines.length && marker.test(lines[i])) {
        list.append(inline(h("li"), lines[i].replace(marker, "")));
        i += 1;
      }
      root.append(list);
      continue;
    }
    const para = [];
    while (
      i < lines.length &&
      lines[i].trim() &&
      !/^(#{1,6})\s/.test(lines[i]) &&
      !/^\s*(```|~~~)/.test(lines[i]) &&
      !/^\s*>/.test(lines[i]) &&
      !bullet.test(lines[i]) &&
      !ordered.test(lines[i])
    ) {
      para.push(lines[i]);
      i += 1;
    }
    const p = h("p");
    para.forEach((part, index) => {
      if (index) p.append(h("br"));
      inline(p, part);
    });
    root.append(p);
  }
  return root;
}

const INLINE = /(`+)([\s\S]*?)\1|\*\*([^*]+)\*\*|(?<![\w])__([^_]+)__(?![\w])|~~([^~]+)~~|\*([^*\s][^*]*)\*|(?<![\w])_([^_\s][^_]*)_(?![\w])|\[([^\]]+)\]\(([^)\s]+)\)/g;

/** Append inline-formatted `text` to `el` and return `el`. */
export function inline(el, text) {
  let last = 0;
  for (const m of String(text).matchAll(INLINE)) {
    if (m.index > last) el.append(document.createTextNode(text.slice(last, m.index)));
    if (m[1]) el.append(h("code", { text: m[2] }));
    else if (m[3] || m[4]) el.append(inline(h("strong"), m[3] || m[4]));
    else if (m[5]) el.append(inline(h("del"), m[5]));
    else if (m[6] || m[7]) el.append(inline(h("em"), m[6] || m[7]));
    else if (m[8]) {
      const href = m[9];
      if (SAFE_URL.test(href)) {
        el.append(inline(h("a", { href, target: "_blank", rel: "noopener noreferrer nofollow" }), m[8]));
      } else {
        el.append(document.createTextNode(m[0]));
      }
    }
    last = m.index + m[0].length;
  }
  if (last < text.length) el.append(document.createTextNode(text.slice(last)));
  return el;
}

/** The plain text of a transcript/chat message (string content or content blocks). */
export function messageText(message) {
  if (!message) return "";
  if (typeof message === "string") return message;
  const content = message.content ?? message.text;
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((block) => (typeof block === "string" ? block : block?.type === "text" ? block.text || "" : ""))
      .join("");
  }
  return "";
}

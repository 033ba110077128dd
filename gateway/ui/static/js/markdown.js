// Model Markdown → DOM nodes, parsed by markdown-it (vendored) and built element by element:
// model text is never parsed as HTML (raw HTML is off; no HTML strings are built), links keep
// only http(s)/mailto targets, images show as links, and nesting is capped.

import MarkdownIt from "../vendor/markdown-it.js";
import { h } from "./dom.js";

const SAFE_URL = /^(https?:|mailto:)/i;
// Deeper block/inline nesting (5,000 nested ">") stops being parsed as structure.
export const MAX_NESTING = 20;

const md = new MarkdownIt("default", {
  html: false,
  linkify: false,
  typographer: false,
  maxNesting: MAX_NESTING,
});
md.validateLink = (url) => SAFE_URL.test(String(url).trim());

// Elements a token may open; anything else is rendered as its text only.
const BLOCK_TAGS = new Set([
  "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote",
  "table", "thead", "tbody", "tr", "th", "td", "strong", "em", "s", "a",
]);

export function renderMarkdown(text) {
  const root = document.createDocumentFragment();
  let tokens;
  try {
    tokens = md.parse(String(text ?? ""), {});
  } catch {
    root.append(h("p", { text: String(text ?? "") }));
    return root;
  }
  if (tokens.some((t) => t.level >= MAX_NESTING - 1)) {
    // Nested past the cap: markdown-it stops there and would drop the rest; show it all raw.
    root.append(h("pre", { class: "raw" }, h("code", { text: String(text ?? "") })));
    return root;
  }
  build(root, tokens);
  return root;
}

function build(root, tokens) {
  const stack = [root];
  const top = () => stack[stack.length - 1];
  for (const token of tokens) {
    if (token.type === "inline") {
      build(top(), token.children || []);
      continue;
    }
    if (token.nesting === 1) {
      const el = open(token);
      top().append(el);
      stack.push(el);
      continue;
    }
    if (token.nesting === -1) {
      if (stack.length > 1) stack.pop();
      continue;
    }
    const node = leaf(token);
    if (node) top().append(node);
  }
}

function open(token) {
  let tag = BLOCK_TAGS.has(token.tag) ? token.tag : "span";
  if (/^h[1-6]$/.test(tag)) {
    // Model headings sit inside a chat bubble: keep them below the page's own h1/h2.
    tag = `h${Math.min(6, Number(tag[1]) + 2)}`;
  }
  if (tag === "a") {
    const href = token.attrGet("href") || "";
    return SAFE_URL.test(href)
      ? h("a", { href, target: "_blank", rel: "noopener noreferrer nofollow" })
      : h("span");
  }
  if (tag === "ol") {
    const start = Number(token.attrGet("start"));
    return h("ol", Number.isInteger(start) && start > 1 ? { start: String(start) } : {});
  }
  return h(tag);
}

function leaf(token) {
  switch (token.type) {
    case "text":
      return document.createTextNode(token.content);
    case "code_inline":
      return h("code", { text: token.content });
    case "softbreak":
      return document.createTextNode("\n");
    case "hardbreak":
      return h("br");
    case "hr":
      return h("hr");
    case "fence":
    case "code_block": {
      const code = h("code", { text: token.content.replace(/\n$/, "") });
      const lang = (token.info || "").trim().split(/\s+/)[0];
      if (lang) code.dataset.lang = lang.slice(0, 32);
      return h("pre", {}, code);
    }
    case "image": {
      // No remote images (tracking pixels): the alt text, linked when the target is safe.
      const src = token.attrGet("src") || "";
      const alt = token.content || src;
      return SAFE_URL.test(src)
        ? h("a", { href: src, target: "_blank", rel: "noopener noreferrer nofollow", text: alt })
        : document.createTextNode(alt);
    }
    default:
      return token.content ? document.createTextNode(token.content) : null;
  }
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

// Tool calls in the chat: one collapsed card per call (name, arguments, result, duration,
// error), built from chat.history (toolCall blocks + toolResult messages) or live from
// `agent` events (stream "tool": start / update / result). Text only: never parsed as HTML.

import { h } from "./dom.js";

const RESULT_PREVIEW_CHARS = 20000;

function pretty(value) {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

function resultText(result) {
  const content = result?.content;
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((b) => (b?.type === "text" ? b.text || "" : "")).join("");
  return "";
}

function clip(text) {
  return text.length > RESULT_PREVIEW_CHARS ? `${text.slice(0, RESULT_PREVIEW_CHARS)}\n… (${text.length - RESULT_PREVIEW_CHARS} more characters)` : text;
}

export function toolCard(call) {
  const state = h("span", { class: "tool-state", text: "running…" });
  const card = h(
    "details",
    { class: "tool", dataset: { toolCallId: call.id || "", status: "running", tool: call.name || "" } },
    h("summary", {}, h("span", { class: "tool-icon", "aria-hidden": "true", text: "⚙" }), " ", h("code", { class: "tool-name", text: call.name || "?" }), " ", state),
    h("div", { class: "tool-section" }, h("div", { class: "tool-label", text: "Arguments" }), h("pre", { class: "tool-args", text: pretty(call.arguments) || "{}" })),
    h("div", { class: "tool-section" }, h("div", { class: "tool-label", text: "Result" }), h("pre", { class: "tool-result", text: "" })),
  );
  return card;
}

export function finishCard(card, { text, isError, durationMs, aborted }) {
  card.dataset.status = isError ? "error" : "ok";
  card.querySelector(".tool-result").textContent = clip(text || "");
  const parts = [];
  if (aborted) parts.push("aborted");
  else if (isError) parts.push("error");
  if (typeof durationMs === "number") parts.push(durationMs < 1000 ? `${durationMs} ms` : `${(durationMs / 1000).toFixed(1)} s`);
  card.querySelector(".tool-state").textContent = parts.join(" · ") || "done";
  if (isError) card.classList.add("failed");
}

// History: cards for one assistant message's toolCall blocks, filled from the results map.
export function historyCards(message, results) {
  const blocks = Array.isArray(message?.content) ? message.content : [];
  return blocks
    .filter((b) => b?.type === "toolCall")
    .map((b) => {
      const card = toolCard(b);
      const res = results.get(b.id);
      if (res) {
        finishCard(card, {
          text: resultText(res),
          isError: Boolean(res.isError),
          durationMs: res.__openclaw?.durationMs,
          aborted: res.details?.status === "aborted",
        });
      } else {
        card.querySelector(".tool-state").textContent = "no result";
      }
      return card;
    });
}

export function resultsById(messages) {
  const map = new Map();
  for (const m of messages) if (m?.role === "toolResult" && m.toolCallId) map.set(m.toolCallId, m);
  return map;
}

// Live: apply one `agent` tool event to the cards of a run; `place(card)` inserts a new one.
export function applyToolEvent(cards, data, place) {
  if (!data || !data.toolCallId) return;
  let card = cards.get(data.toolCallId);
  if (data.phase === "start") {
    if (!card) {
      card = toolCard({ id: data.toolCallId, name: data.name, arguments: data.args });
      cards.set(data.toolCallId, card);
      place(card);
    }
    return;
  }
  if (!card) {
    card = toolCard({ id: data.toolCallId, name: data.name, arguments: undefined });
    cards.set(data.toolCallId, card);
    place(card);
  }
  if (data.phase === "update") {
    card.querySelector(".tool-result").textContent = clip(resultText(data.partialResult));
  } else if (data.phase === "result") {
    finishCard(card, {
      text: resultText(data.result),
      isError: Boolean(data.isError),
      durationMs: data.result?.details?.durationMs,
      aborted: data.result?.details?.status === "aborted",
    });
  }
}

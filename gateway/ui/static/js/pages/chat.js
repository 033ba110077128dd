// Chat: pick agent and session, send, stream the reply, abort, history on load.

import { h } from "../dom.js";
import { messageText, renderMarkdown } from "../markdown.js";
import { applyToolEvent, historyCards, resultsById } from "../tools.js";
import { attachmentTray, mediaBlocks, mediaStrip } from "../attachments.js";

export function messageBubble(role, text, extra = "", media = []) {
  const body = h("div", { class: "body" });
  body.append(renderMarkdown(text));
  return h(
    "article",
    { class: `msg ${role} ${extra}`.trim(), dataset: { role } },
    h("header", { class: "who", text: role === "user" ? "You" : role === "assistant" ? "Assistant" : role }),
    mediaStrip(media),
    body,
  );
}

export function renderHistory(list, messages) {
  const results = resultsById(messages);
  list.replaceChildren(
    ...messages
      .filter((m) => m && (m.role === "user" || m.role === "assistant"))
      .flatMap((m) => {
        const text = messageText(m);
        const cards = m.role === "assistant" ? historyCards(m, results) : [];
        const media = mediaBlocks(m);
        // A tool step with no text shows only its cards.
        return cards.length && !text.trim() && !media.length
          ? cards
          : [messageBubble(m.role, text, "", media), ...cards];
      }),
  );
  if (!list.children.length) list.append(h("p", { class: "muted empty", text: "No messages yet. Say hello." }));
}

export default {
  title: "Chat",
  mount(root, { client, toast }) {
    const agentSelect = h("select", { id: "chat-agent", "aria-label": "Agent" });
    const sessionInput = h("input", {
      id: "chat-session",
      value: "main",
      list: "chat-sessions",
      "aria-label": "Session",
      spellcheck: "false",
    });
    const sessionList = h("datalist", { id: "chat-sessions" });
    const list = h("div", { class: "messages", id: "chat-messages", "aria-live": "polite" });
    const input = h("textarea", {
      id: "chat-input",
      rows: "3",
      placeholder: "Message the agent (Enter to send, Shift+Enter for a new line)",
      "aria-label": "Message",
    });
    const send = h("button", { id: "chat-send", type: "submit", text: "Send" });
    const abort = h("button", { id: "chat-abort", type: "button", class: "ghost", text: "Abort", disabled: true });
    const status = h("p", { class: "muted run-status", id: "chat-status", role: "status" });
    const tray = attachmentTray({ toast });
    const form = h(
      "form",
      { class: "composer" },
      tray.chips,
      input,
      h("div", { class: "row end" }, status, ...tray.elements, abort, send),
    );
    // Files come in through the picker, a paste (screenshots) or a drop on the composer.
    input.addEventListener("paste", (ev) => {
      const files = [...(ev.clipboardData?.files || [])];
      if (files.length) {
        ev.preventDefault();
        tray.add(files);
      }
    });
    form.addEventListener("dragover", (ev) => {
      if ([...(ev.dataTransfer?.types || [])].includes("Files")) {
        ev.preventDefault();
        form.classList.add("dropping");
      }
    });
    form.addEventListener("dragleave", () => form.classList.remove("dropping"));
    form.addEventListener("drop", (ev) => {
      form.classList.remove("dropping");
      const files = [...(ev.dataTransfer?.files || [])];
      if (files.length) {
        ev.preventDefault();
        tray.add(files);
      }
    });

    let canonicalKey = null;
    const runs = new Map(); // runId -> {bubble, text, tools: Map(toolCallId -> card)}
    let activeRun = null;

    const params = () => ({ sessionKey: sessionInput.value.trim() || "main", agentId: agentSelect.value || undefined });

    function setActive(runId) {
      activeRun = runId;
      abort.disabled = !runId;
      status.textContent = runId ? "Assistant is replying…" : "";
    }

    async function loadHistory() {
      try {
        const res = await client.request("chat.history", { ...params(), limit: 200 });
        canonicalKey = res.sessionKey || null;
        renderHistory(list, res.messages || []);
        list.scrollTop = list.scrollHeight;
      } catch (err) {
        list.replaceChildren(h("p", { class: "error", text: err.message }));
      }
    }

    async function loadPickers() {
      try {
        const agents = await client.request("agents.list", {});
        const current = agentSelect.value;
        agentSelect.replaceChildren(
          ...(agents.agents || []).map((a) =>
            h("option", { value: a.id, text: a.name ? `${a.name} (${a.id})` : a.id, selected: current ? a.id === current : a.id === agents.defaultId }),
          ),
        );
      } catch (err) {
        toast(err.message, "error");
      }
      try {
        const res = await client.request("sessions.list", { agentId: agentSelect.value || undefined, limit: 50 });
        sessionList.replaceChildren(
          h("option", { value: "main" }),
          ...(res.sessions || []).map((s) => h("option", { value: s.key, text: s.displayName || s.key })),
        );
      } catch {
        // The picker still works with a typed key.
      }
    }

    function streamBubble(runId) {
      let run = runs.get(runId);
      if (!run) {
        list.querySelector(".empty")?.remove();
        const bubble = messageBubble("assistant", "", "streaming");
        list.append(bubble);
        run = { bubble, text: "", tools: new Map() };
        runs.set(runId, run);
      }
      return run;
    }

    // Streamed chunks only update the text; the bubble is re-rendered at most once per
    // animation frame, and after a slow render (a long reply) only once twice its cost has
    // passed, so rendering never takes more than a third of the page's time.
    function paint(run, text, now = false) {
      run.text = text;
      if (now) {
        cancelAnimationFrame(run.frame || 0);
        clearTimeout(run.timer || 0);
        run.frame = run.timer = 0;
        render(run);
        return;
      }
      if (run.frame || run.timer) return;
      const wait = (run.nextAt || 0) - performance.now();
      const schedule = () => {
        run.timer = 0;
        run.frame = requestAnimationFrame(() => {
          run.frame = 0;
          render(run);
        });
      };
      if (wait > 0) run.timer = setTimeout(schedule, wait);
      else schedule();
    }

    function render(run) {
      const started = performance.now();
      run.bubble.querySelector(".body").replaceChildren(renderMarkdown(run.text));
      run.bubble.dataset.renders = String(Number(run.bubble.dataset.renders || 0) + 1);
      list.scrollTop = list.scrollHeight;
      const finished = performance.now();
      run.nextAt = finished + 2 * (finished - started);
    }

    const offChat = client.on("event:chat", (ev) => {
      if (!ev || (!runs.has(ev.runId) && ev.sessionKey !== canonicalKey)) return;
      const run = streamBubble(ev.runId);
      if (ev.state === "delta") {
        paint(run, ev.replace ? ev.deltaText || "" : run.text + (ev.deltaText || ""));
        if (!activeRun) setActive(ev.runId);
      } else if (ev.state === "final") {
        const text = messageText(ev.message) || run.text;
        paint(run, text, true);
        run.bubble.classList.remove("streaming");
        if (!text) run.bubble.remove();
        if (activeRun === ev.runId) setActive(null);
      } else if (ev.state === "error") {
        run.bubble.classList.remove("streaming");
        run.bubble.classList.add("failed");
        if (run.frame || run.timer) paint(run, run.text, true); // a pending render would wipe the note
        run.bubble.querySelector(".body").append(h("p", { class: "error", text: ev.errorMessage || "The run failed." }));
        if (activeRun === ev.runId) setActive(null);
      } else if (ev.state === "aborted") {
        run.bubble.classList.remove("streaming");
        if (run.frame || run.timer) paint(run, run.text, true);
        run.bubble.querySelector(".body").append(h("p", { class: "muted", text: "(aborted)" }));
        if (activeRun === ev.runId) setActive(null);
      }
    });

    const offAgent = client.on("event:agent", (ev) => {
      if (!ev || ev.stream !== "tool" || (!runs.has(ev.runId) && ev.sessionKey !== canonicalKey)) return;
      const run = streamBubble(ev.runId);
      // Cards go above the answer bubble, which keeps streaming below them.
      applyToolEvent(run.tools, ev.data, (card) => run.bubble.before(card));
      list.scrollTop = list.scrollHeight;
    });

    async function submit() {
      const text = input.value;
      if (!text.trim() && !tray.count) return;
      const idempotencyKey = crypto.randomUUID();
      const files = tray.take();
      list.querySelector(".empty")?.remove();
      list.append(messageBubble("user", text, "", files.blocks));
      list.scrollTop = list.scrollHeight;
      input.value = "";
      streamBubble(idempotencyKey);
      setActive(idempotencyKey);
      try {
        const res = await client.request("chat.send", {
          ...params(),
          message: text,
          idempotencyKey,
          ...(files.attachments.length ? { attachments: files.attachments } : {}),
        });
        if (res.runId && res.runId !== idempotencyKey) {
          runs.set(res.runId, runs.get(idempotencyKey));
          runs.delete(idempotencyKey);
          setActive(res.runId);
        }
      } catch (err) {
        const run = runs.get(idempotencyKey);
        run?.bubble.remove();
        runs.delete(idempotencyKey);
        setActive(null);
        toast(err.message, "error");
        input.value = text;
        files.restore();
      }
    }

    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      submit();
    });
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        submit();
      }
    });
    abort.addEventListener("click", async () => {
      try {
        await client.request("chat.abort", { ...params(), runId: activeRun || undefined });
      } catch (err) {
        toast(err.message, "error");
      }
    });
    agentSelect.addEventListener("change", () => {
      runs.clear();
      setActive(null);
      loadPickers();
      loadHistory();
    });
    sessionInput.addEventListener("change", () => {
      runs.clear();
      setActive(null);
      loadHistory();
    });
    const offState = client.on("state", ({ state }) => state === "connected" && loadHistory());

    root.append(
      h("h1", { text: "Chat" }),
      h(
        "div",
        { class: "row pickers" },
        h("label", { for: "chat-agent", text: "Agent" }),
        agentSelect,
        h("label", { for: "chat-session", text: "Session" }),
        sessionInput,
        sessionList,
      ),
      list,
      form,
    );
    loadPickers().then(loadHistory);
    input.focus();
    return () => {
      offChat();
      offAgent();
      offState();
    };
  },
};

// Logs: live tail via logs.tail (cursor polling), level filter, pause.

import { h } from "../dom.js";

const POLL_MS = 1500;
const KEEP = 1000;

export default {
  title: "Logs",
  mount(root, { client, toast }) {
    let cursor = null;
    let timer = 0;
    let paused = false;
    let busy = false;
    const level = h(
      "select",
      { id: "logs-level", "aria-label": "Minimum level" },
      ["debug", "info", "warn", "error"].map((l) => h("option", { value: l, text: l, selected: l === "info" })),
    );
    const pause = h("button", { type: "button", class: "ghost", id: "logs-pause", text: "Pause" });
    const clearBtn = h("button", { type: "button", class: "ghost", text: "Clear" });
    const box = h("div", { class: "logbox", id: "logs", role: "log", tabindex: "0", "aria-label": "Gateway log" });

    function row(text) {
      let entry;
      try {
        entry = JSON.parse(text);
      } catch {
        entry = { message: text, level: "info" };
      }
      const time = entry.time ? new Date(entry.time).toLocaleTimeString() : "";
      return h(
        "div",
        { class: `logline ${entry.level || "info"}` },
        h("span", { class: "t", text: time }),
        h("span", { class: "lvl", text: entry.level || "" }),
        h("span", { class: "sub", text: entry.subsystem ? `[${entry.subsystem}]` : "" }),
        h("span", { class: "m", text: entry.message ?? "" }),
      );
    }

    async function poll() {
      if (paused || busy) return;
      busy = true;
      try {
        const params = { level: level.value, limit: 500 };
        if (cursor !== null) params.cursor = cursor;
        const res = await client.request("logs.tail", params);
        if (res.reset) box.append(h("div", { class: "logline muted", text: "… some lines were skipped …" }));
        const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
        box.append(...res.lines.map(row));
        while (box.children.length > KEEP) box.firstChild.remove();
        if (atBottom) box.scrollTop = box.scrollHeight;
        cursor = res.cursor;
        if (!box.children.length) box.append(h("div", { class: "logline muted empty", text: "No log lines yet." }));
        else if (res.lines.length) box.querySelector(".empty")?.remove();
      } catch (err) {
        if (client.state === "connected") toast(err.message, "error");
      } finally {
        busy = false;
      }
    }

    level.addEventListener("change", () => {
      cursor = null;
      box.replaceChildren();
      poll();
    });
    pause.addEventListener("click", () => {
      paused = !paused;
      pause.textContent = paused ? "Resume" : "Pause";
      pause.setAttribute("aria-pressed", String(paused));
      if (!paused) poll();
    });
    clearBtn.addEventListener("click", () => box.replaceChildren());

    root.append(
      h("h1", { text: "Logs" }),
      h("div", { class: "row" }, h("label", { for: "logs-level", text: "Level" }), level, pause, clearBtn),
      box,
    );
    poll();
    timer = setInterval(poll, POLL_MS);
    return () => clearInterval(timer);
  },
};

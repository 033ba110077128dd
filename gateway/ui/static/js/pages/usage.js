// Usage: tokens and cost per day (bar chart) and per model, from usage.cost and sessions.usage.

import { h } from "../dom.js";

const RANGES = [
  ["1", "Today"],
  ["7", "7 days"],
  ["30", "30 days"],
  ["90", "90 days"],
];
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  return el;
}

function money(value) {
  const n = Number(value || 0);
  return n >= 1 ? `$${n.toFixed(2)}` : `$${n.toFixed(4)}`;
}

function count(value) {
  const n = Number(value || 0);
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}m`;
  if (n >= 1e4) return `${Math.round(n / 1e3)}k`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

// One bar per day, height = cost (tokens when nothing is priced); a <title> per bar for hover.
function chart(daily) {
  const byCost = daily.some((d) => d.totalCost > 0);
  const values = daily.map((d) => (byCost ? d.totalCost : d.totalTokens));
  const max = Math.max(...values, 0);
  const width = 640;
  const height = 160;
  const gap = 2;
  const bar = Math.max(2, (width - gap * daily.length) / Math.max(daily.length, 1));
  const root = svg("svg", { viewBox: `0 0 ${width} ${height + 18}`, role: "img", class: "usage-chart", id: "usage-chart" });
  const label = svg("title");
  label.textContent = byCost ? "Cost per day" : "Tokens per day";
  root.append(label);
  daily.forEach((day, i) => {
    const v = values[i];
    const barHeight = max ? Math.max(v > 0 ? 1 : 0, (v / max) * height) : 0;
    const rect = svg("rect", {
      x: i * (bar + gap),
      y: height - barHeight,
      width: bar,
      height: barHeight,
      class: "bar",
      "data-date": day.date,
    });
    const tip = svg("title");
    tip.textContent = `${day.date}: ${money(day.totalCost)} · ${count(day.totalTokens)} tokens`;
    rect.append(tip);
    root.append(rect);
  });
  if (daily.length) {
    for (const [i, anchor] of [[0, "start"], [daily.length - 1, "end"]]) {
      const text = svg("text", { x: anchor === "start" ? 0 : width, y: height + 14, "text-anchor": anchor, class: "axis" });
      text.textContent = daily[i].date;
      root.append(text);
    }
  }
  return root;
}

function table(id, headings, rows) {
  return h(
    "div",
    { class: "table-wrap card" },
    h(
      "table",
      { id },
      h("thead", {}, h("tr", {}, headings.map((t) => h("th", { text: t })))),
      h(
        "tbody",
        {},
        rows.length ? rows : h("tr", {}, h("td", { colspan: String(headings.length), class: "muted", text: "No usage in this period." })),
      ),
    ),
  );
}

export default {
  title: "Usage",
  mount(root, { client, toast }) {
    let days = "30";
    const body = h("div", { id: "usage-body" }, h("p", { class: "muted", text: "Loading…" }));
    const picker = h(
      "div",
      { class: "row", role: "group", "aria-label": "Period" },
      RANGES.map(([value, text]) =>
        h("button", {
          type: "button",
          class: value === days ? "" : "ghost",
          text,
          dataset: { days: value },
          onclick: (event) => {
            days = value;
            for (const b of picker.querySelectorAll("button")) b.className = b.dataset.days === days ? "" : "ghost";
            event.currentTarget.blur();
            load();
          },
        }),
      ),
    );

    async function load() {
      try {
        const [cost, sessions] = await Promise.all([
          client.request("usage.cost", { days: Number(days), agentScope: "all" }),
          client.request("sessions.usage", { days: Number(days), agentScope: "all", limit: 100 }),
        ]);
        const t = cost.totals;
        const cards = h(
          "div",
          { class: "grid", id: "usage-totals" },
          [
            ["Cost", money(t.totalCost)],
            ["Tokens", count(t.totalTokens)],
            ["Input", count(t.input)],
            ["Output", count(t.output)],
            ["Cache read", count(t.cacheRead)],
            ["Cache write", count(t.cacheWrite)],
          ].map(([k, v]) => h("div", { class: "card stat" }, h("div", { class: "muted", text: k }), h("div", { class: "big", text: v, dataset: { stat: k } }))),
        );
        const warn = t.missingCostEntries
          ? h("p", { class: "warning", text: `${t.missingCostEntries} call(s) have no known price and are not in the cost.` })
          : null;
        const models = (cost.byModel || []).map((m) =>
          h(
            "tr",
            {},
            h("td", { class: "mono", text: `${m.provider}/${m.model}` }),
            h("td", { class: "num", text: String(m.count) }),
            h("td", { class: "num", text: count(m.totals.totalTokens) }),
            h("td", { class: "num", text: count(m.totals.cacheRead) }),
            h("td", { class: "num", text: money(m.totals.totalCost) }),
          ),
        );
        const rows = (sessions.sessions || []).map((s) =>
          h(
            "tr",
            {},
            h("td", { class: "mono", text: s.key }),
            h("td", { text: s.model || "—" }),
            h("td", { class: "num", text: String(s.usage?.messageCounts?.total ?? 0) }),
            h("td", { class: "num", text: count(s.usage?.totalTokens) }),
            h("td", { class: "num", text: money(s.usage?.totalCost) }),
          ),
        );
        body.replaceChildren(
          ...[cards, warn].filter(Boolean),
          h("section", { class: "card" }, h("h2", { text: "Per day" }), chart(cost.daily || [])),
          h("h2", { text: "Per model" }),
          table("usage-models", ["Model", "Calls", "Tokens", "Cached", "Cost"], models),
          h("h2", { text: "Per session" }),
          table("usage-sessions", ["Session", "Model", "Messages", "Tokens", "Cost"], rows),
        );
      } catch (err) {
        toast(err.message, "error");
      }
    }

    root.append(h("h1", { text: "Usage" }), picker, body);
    load();
    const off = client.on("event:sessions.changed", () => load());
    return off;
  },
};

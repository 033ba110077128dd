// Overview: version, uptime, bind/port, auth mode, agents, model chain, memory.

import { h } from "../dom.js";
import { bytes, duration } from "../format.js";

function card(title, ...body) {
  return h("section", { class: "card" }, h("h2", { text: title }), ...body);
}

function facts(rows) {
  return h(
    "dl",
    { class: "facts" },
    rows.map(([k, v]) => [h("dt", { text: k }), h("dd", {}, v ?? "—")]),
  );
}

// The env var the gateway reads for a provider's key (models.providers.<p>.apiKey also works).
function keyVar(provider) {
  return `${provider.toUpperCase().replace(/-/g, "_")}_API_KEY`;
}

// Each model of the chains; one whose provider has no key is flagged, with what to set.
function modelList(models) {
  return h(
    "ul",
    { class: "models", id: "model-list" },
    models.map((m) => {
      const name = m.name || `${m.provider}/${m.id}`;
      const keyless = m.available === false && m.unavailableReason === "missing-auth";
      return h(
        "li",
        { dataset: { model: name, keyless: keyless ? "true" : "false" } },
        // Other reasons (cooling down, unknown provider, …) ride on the label.
        h("span", { class: "chain", text: keyless ? name : modelLabel(m) }),
        keyless
          ? [
              " ",
              h("span", { class: "badge bad", text: "no API key" }),
              h("span", {
                class: "muted",
                text: ` set ${keyVar(m.provider)} (or models.providers.${m.provider}.apiKey)`,
              }),
            ]
          : null,
      );
    }),
  );
}

async function load(root, { client }) {
  const methods = client.methods;
  const [status, system, agents, models] = await Promise.all([
    client.request("status", {}),
    methods.has("system.info") ? client.request("system.info", {}).catch(() => null) : null,
    methods.has("agents.list") ? client.request("agents.list", {}).catch(() => null) : null,
    methods.has("models.list") ? client.request("models.list", {}).catch(() => null) : null,
  ]);
  const gw = status.gateway || {};
  const used = system ? system.memoryTotalBytes - system.memoryFreeBytes : null;
  const children = [
    h("h1", { text: "Overview" }),
    h(
      "div",
      { class: "grid" },
      card(
        "Gateway",
        facts([
          ["Version", status.runtimeVersion],
          ["Uptime", duration(status.uptimeMs)],
          ["Bind", gw.bind ? `${gw.bind} (${gw.host}:${gw.port})` : "—"],
          ["Auth mode", gw.authMode],
          ["Clients", String(status.connections ?? "—")],
          ["Sessions", String(status.sessions?.count ?? 0)],
          ["Memory", status.process?.rssBytes ? `${bytes(status.process.rssBytes)} (this process)` : "—"],
        ]),
      ),
      card(
        "Host",
        system
          ? facts([
              ["Host", system.hostname],
              ["OS", system.osLabel],
              ["Runtime", system.nodeVersion],
              ["PID", String(system.pid)],
              ["Host memory", `${bytes(used)} used of ${bytes(system.memoryTotalBytes)}`],
              ["Load", (system.loadAverage || []).map((n) => n.toFixed(2)).join(" ")],
            ])
          : h("p", { class: "muted", text: "Host details are not available." }),
      ),
    ),
  ];
  const agentRows = (agents?.agents || []).map((agent) => {
    const model = agent.model || {};
    const chain = [model.primary, ...(model.fallbacks || [])].filter(Boolean);
    return h(
      "tr",
      {},
      h("td", {}, agent.id, agent.id === agents.defaultId ? h("span", { class: "tag", text: "default" }) : null),
      h("td", { text: agent.name || agent.identity?.name || "" }),
      h("td", {}, chain.length ? h("span", { class: "chain", text: chain.join(" → ") }) : "—"),
    );
  });
  children.push(
    card(
      "Agents and model chain",
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          {},
          h("thead", {}, h("tr", {}, h("th", { text: "Agent" }), h("th", { text: "Name" }), h("th", { text: "Model chain" }))),
          h("tbody", {}, agentRows),
        ),
      ),
      models?.models?.length ? modelList(models.models) : null,
    ),
  );
  root.replaceChildren(...children);
}

// models.list marks models that cannot answer now: no key, cooling down, or a config problem.
const UNAVAILABLE = {
  "missing-auth": "no API key",
  "auth-failed": "key refused",
  cooldown: "cooling down",
  "unknown-provider": "unknown provider",
  "unsupported-api": "unsupported api",
};

function modelLabel(m) {
  const name = m.name || `${m.provider}/${m.id}`;
  if (m.available !== false) return name;
  const why = m.unavailableReason || (m.tags || []).find((t) => t in UNAVAILABLE);
  return `${name} (unavailable: ${UNAVAILABLE[why] || "not usable"})`;
}

export default {
  title: "Overview",
  mount(root, ctx) {
    root.append(h("h1", { text: "Overview" }), h("p", { class: "muted", text: "Loading…" }));
    const refresh = () => load(root, ctx).catch((err) => ctx.toast(err.message, "error"));
    refresh();
    const timer = setInterval(refresh, 15000);
    const off = ctx.client.on("state", ({ state }) => state === "connected" && refresh());
    return () => {
      clearInterval(timer);
      off();
    };
  },
};

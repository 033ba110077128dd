// Sessions: list with agent, channel, last activity, message count; open read-only;
// reset or delete with confirmation.

import { confirmDialog, h } from "../dom.js";
import { ago } from "../format.js";
import { renderHistory } from "./chat.js";

export default {
  title: "Sessions",
  mount(root, { client, toast }) {
    const tbody = h("tbody");
    const viewer = h("section", { class: "card viewer", id: "session-viewer", hidden: true });
    const count = h("p", { class: "muted", id: "sessions-count" });

    async function open(row) {
      viewer.hidden = false;
      const list = h("div", { class: "messages readonly" });
      viewer.replaceChildren(
        h("div", { class: "row" }, h("h2", { text: row.displayName || row.key }), h("span", { class: "tag", text: "read-only" }),
          h("button", { type: "button", class: "ghost close", text: "Close", onclick: () => { viewer.hidden = true; } })),
        list,
      );
      try {
        const res = await client.request("chat.history", { sessionKey: row.key, agentId: row.agentId, limit: 200 });
        renderHistory(list, res.messages || []);
      } catch (err) {
        list.replaceChildren(h("p", { class: "error", text: err.message }));
      }
      viewer.querySelector(".close").focus();
    }

    async function act(kind, row) {
      const verb = kind === "reset" ? "Reset" : "Delete";
      const what =
        kind === "reset"
          ? `Reset session ${row.key}? The agent starts a fresh conversation; the old transcript is archived.`
          : `Delete session ${row.key}? Its transcript is archived and the session disappears from the list.`;
      if (!(await confirmDialog(what, verb))) return;
      try {
        await client.request(`sessions.${kind}`, { key: row.key, agentId: row.agentId });
        toast(`${verb} done: ${row.key}`);
        load();
      } catch (err) {
        toast(err.message, "error");
      }
    }

    async function load() {
      try {
        const res = await client.request("sessions.list", { limit: 200 });
        const rows = res.sessions || [];
        count.textContent = `${res.totalCount ?? rows.length} session(s)`;
        tbody.replaceChildren(
          ...rows.map((row) =>
            h(
              "tr",
              { dataset: { key: row.key } },
              h("td", {}, h("span", { class: "mono", text: row.key }), row.displayName ? h("div", { class: "muted", text: row.displayName }) : null),
              h("td", { text: row.agentId || "—" }),
              h("td", { text: row.channel || (row.isMain ? "webchat" : "—") }),
              h("td", { text: ago(row.updatedAt), title: row.updatedAt ? new Date(row.updatedAt).toLocaleString() : "" }),
              h("td", { class: "num", text: String(row.messageCount ?? 0) }),
              h(
                "td",
                { class: "actions" },
                h("button", { type: "button", class: "ghost", text: "Open", onclick: () => open(row) }),
                h("button", { type: "button", class: "ghost", text: "Reset", onclick: () => act("reset", row) }),
                h("button", { type: "button", class: "danger", text: "Delete", onclick: () => act("delete", row) }),
              ),
            ),
          ),
        );
        if (!rows.length) tbody.append(h("tr", {}, h("td", { colspan: "6", class: "muted", text: "No sessions yet." })));
      } catch (err) {
        toast(err.message, "error");
      }
    }

    root.append(
      h("h1", { text: "Sessions" }),
      h("div", { class: "row" }, count, h("button", { type: "button", class: "ghost", text: "Refresh", onclick: load })),
      h(
        "div",
        { class: "table-wrap card" },
        h(
          "table",
          { id: "sessions-table" },
          h(
            "thead",
            {},
            h("tr", {}, ["Session", "Agent", "Channel", "Last activity", "Messages", ""].map((t) => h("th", { text: t }))),
          ),
          tbody,
        ),
      ),
      viewer,
    );
    load();
    const off = client.on("event:sessions.changed", () => load());
    return off;
  },
};

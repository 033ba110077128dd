// Exec approval cards (tools.md §3.4): pending `exec.approval.requested` requests with
// Approve (allow-once) / Deny buttons that call `exec.approval.resolve`. Self-contained so
// any page can show them: mountApprovals(client, element) prepends its own container to
// `element`, listens to the gateway's events itself and returns an unmount function.

import { h } from "./dom.js";

function remaining(expiresAtMs) {
  const s = Math.max(0, Math.round((expiresAtMs - Date.now()) / 1000));
  return s >= 60 ? `${Math.floor(s / 60)} min` : `${s} s`;
}

export function mountApprovals(client, element) {
  const box = h("section", { class: "approvals", id: "exec-approvals", "aria-label": "Pending approvals", hidden: true });
  element.prepend(box);
  const cards = new Map(); // approval id -> card element

  function sync() {
    box.hidden = cards.size === 0;
  }

  function drop(id) {
    const card = cards.get(id);
    if (card) card.remove();
    cards.delete(id);
    sync();
  }

  async function decide(id, decision, card) {
    for (const b of card.querySelectorAll("button")) b.disabled = true;
    try {
      await client.request("exec.approval.resolve", { id, decision });
      drop(id);
    } catch (err) {
      for (const b of card.querySelectorAll("button")) b.disabled = false;
      card.querySelector(".approval-error").textContent = err.message;
    }
  }

  function add(entry) {
    if (!entry || !entry.id || cards.has(entry.id)) return;
    const req = entry.request || {};
    const card = h(
      "div",
      { class: "card approval", dataset: { approvalId: entry.id }, role: "group", "aria-label": "Exec approval" },
      h("strong", { text: "Run this command?" }),
      h("pre", { class: "approval-command", text: req.command || "" }),
      h("p", {
        class: "muted",
        text: `agent ${req.agentId || "?"} · in ${req.cwd || "?"} · expires in ${remaining(entry.expiresAtMs || 0)}`,
      }),
      h("p", { class: "error approval-error", role: "alert" }),
    );
    const approve = h("button", { type: "button", class: "approval-allow", text: "Approve once", onclick: () => decide(entry.id, "allow-once", card) });
    const deny = h("button", { type: "button", class: "ghost approval-deny", text: "Deny", onclick: () => decide(entry.id, "deny", card) });
    card.append(h("div", { class: "row end" }, deny, approve));
    cards.set(entry.id, card);
    box.append(card);
    sync();
  }

  async function load() {
    try {
      const list = await client.request("exec.approval.list", {});
      for (const entry of list || []) add(entry);
    } catch {
      // Without operator.approvals the list is refused; nothing to show.
    }
  }

  const offs = [
    client.on("event:exec.approval.requested", add),
    client.on("event:exec.approval.resolved", (p) => p && drop(p.id)),
    client.on("state", (ev) => {
      if (ev && ev.state === "connected") load();
    }),
  ];
  if (client.state === "connected") load();
  return () => {
    for (const off of offs) off();
    box.remove();
  };
}

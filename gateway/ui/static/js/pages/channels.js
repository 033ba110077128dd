// Channels: status per channel/account, pending DM pairing requests with approve/dismiss.

import { confirmDialog, h } from "../dom.js";
import { ago, when } from "../format.js";

function badge(ok, yes, no) {
  return h("span", { class: `badge ${ok ? "ok" : "bad"}`, text: ok ? yes : no });
}

function accountsOf(status, channel) {
  return status.channelAccounts?.[channel] || status.channels?.[channel]?.accounts || [];
}

export default {
  title: "Channels",
  mount(root, { client, toast }) {
    const statusBox = h("div", { class: "grid", id: "channel-status" });
    const pairingBox = h("section", { class: "card", id: "pairing" });

    async function loadStatus() {
      if (!client.methods.has("channels.status")) {
        statusBox.replaceChildren(h("p", { class: "muted", text: "This gateway does not report channel status yet." }));
        return;
      }
      try {
        const status = await client.request("channels.status", {});
        const order = status.channelOrder?.length ? status.channelOrder : Object.keys(status.channels || {});
        if (!order.length) {
          statusBox.replaceChildren(h("p", { class: "muted", text: "No channels are configured. Add channels.telegram or channels.discord in Config." }));
          return;
        }
        statusBox.replaceChildren(
          ...order.map((channel) => {
            const accounts = accountsOf(status, channel);
            return h(
              "section",
              { class: "card", dataset: { channel } },
              h("h2", { text: status.channelLabels?.[channel] || channel }),
              accounts.length
                ? accounts.map((acc) => {
                    const bot = acc.bot || {};
                    const identity = bot.username ? `@${bot.username}` : bot.name || acc.name || "";
                    return h(
                      "div",
                      { class: "account" },
                      h("div", { class: "row" }, h("strong", { text: acc.accountId }), identity ? h("span", { class: "muted", text: identity }) : null),
                      h(
                        "div",
                        { class: "row" },
                        // The account exists because its config block does: what it lacks is a token.
                        badge(acc.configured !== false, "token set", "no token"),
                        badge(acc.running, "running", "stopped"),
                        badge(acc.connected, "connected", "disconnected"),
                      ),
                      acc.lastError ? h("p", { class: "error", text: `Last error: ${acc.lastError}` }) : null,
                      acc.lastInboundAt ? h("p", { class: "muted", text: `Last message ${ago(acc.lastInboundAt)}` }) : null,
                    );
                  })
                : h("p", { class: "muted", text: "No accounts." }),
            );
          }),
        );
      } catch (err) {
        statusBox.replaceChildren(h("p", { class: "error", text: err.message }));
      }
    }

    async function decide(kind, req) {
      const params = { channel: req.channel, accountId: req.accountId, requestId: req.requestId };
      if (kind === "dismiss" && !(await confirmDialog(`Dismiss the request from ${req.senderLabel || req.senderId}?`, "Dismiss"))) return;
      try {
        await client.request(`channels.pairing.${kind}`, params);
        toast(kind === "approve" ? `Approved ${req.senderLabel || req.senderId}` : "Request dismissed");
        loadPairing();
      } catch (err) {
        toast(err.message, "error");
      }
    }

    async function loadPairing() {
      const title = h("h2", { text: "DM access requests" });
      if (!client.methods.has("channels.pairing.list")) {
        pairingBox.replaceChildren(title, h("p", { class: "muted", text: "Pairing requests are not available on this gateway yet." }));
        return;
      }
      try {
        const res = await client.request("channels.pairing.list", {});
        const requests = res.requests || [];
        // Newcomers the gateway turned away because the pending list was full.
        const status = await client.request("channels.status", {});
        const turnedAway = Object.values(status.channels || {}).reduce(
          (n, c) => n + (c.pairingTurnedAway || 0),
          0,
        );
        const full = turnedAway
          ? h(
              "p",
              { class: "overflow" },
              h("span", { class: "badge bad", id: "pairing-overflow", text: `${turnedAway} turned away` }),
              h("span", {
                class: "muted",
                text: ` the pending list was full (${res.limits?.pendingPerAccount ?? "?"} per account); approve or dismiss requests to make room`,
              }),
            )
          : null;
        pairingBox.replaceChildren(
          title,
          full ?? "",
          requests.length
            ? h(
                "ul",
                { class: "requests" },
                requests.map((req) =>
                  h(
                    "li",
                    { class: "request", dataset: { requestId: req.requestId } },
                    h(
                      "div",
                      {},
                      h("strong", { text: req.senderLabel || req.senderId }),
                      h("span", { class: "muted", text: ` · ${req.channelLabel || req.channel} (${req.accountId}) · id ${req.senderId}` }),
                      h("div", { class: "muted", text: `asked ${when(req.createdAt)} · expires ${when(req.expiresAt)}` }),
                    ),
                    h(
                      "div",
                      { class: "row end" },
                      client.methods.has("channels.pairing.dismiss")
                        ? h("button", { type: "button", class: "ghost", text: "Dismiss", onclick: () => decide("dismiss", req) })
                        : null,
                      h("button", { type: "button", text: "Approve", onclick: () => decide("approve", req) }),
                    ),
                  ),
                ),
              )
            : h("p", { class: "muted", text: "No pending requests. When someone messages the bot, their request shows up here." }),
        );
      } catch (err) {
        pairingBox.replaceChildren(title, h("p", { class: "error", text: err.message }));
      }
    }

    const refresh = () => {
      loadStatus();
      loadPairing();
    };
    root.append(
      h("h1", { text: "Channels" }),
      h("div", { class: "row" }, h("button", { type: "button", class: "ghost", text: "Refresh", onclick: refresh })),
      statusBox,
      pairingBox,
    );
    refresh();
    const timer = setInterval(refresh, 10000);
    return () => clearInterval(timer);
  },
};

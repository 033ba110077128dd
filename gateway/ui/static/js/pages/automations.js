// Automations: scheduled jobs (cron.*): list, create, enable/disable, run now, run history.

import { confirmDialog, h } from "../dom.js";
import { when } from "../format.js";

const DURATION = /^\s*(\d+)\s*(s|m|h|d)\s*$/i;
const UNIT_MS = { s: 1000, m: 60000, h: 3600000, d: 86400000 };

function scheduleText(s) {
  if (!s) return "—";
  if (s.kind === "at") return `at ${when(s.at)}`;
  if (s.kind === "every") return `every ${Math.round(s.everyMs / 60000)} min`;
  if (s.kind === "cron") return `cron ${s.expr}${s.tz ? ` (${s.tz})` : ""}`;
  return s.kind;
}

function buildSchedule(kind, value, tz) {
  const text = value.trim();
  if (kind === "every") {
    const m = text.match(DURATION);
    if (!m) throw new Error("Every: use a duration like 30m, 2h or 1d.");
    return { kind: "every", everyMs: Number(m[1]) * UNIT_MS[m[2].toLowerCase()] };
  }
  if (kind === "cron") {
    const schedule = { kind: "cron", expr: text };
    if (tz.trim()) schedule.tz = tz.trim();
    return schedule;
  }
  const m = text.match(DURATION);
  if (m) return { kind: "at", at: new Date(Date.now() + Number(m[1]) * UNIT_MS[m[2].toLowerCase()]).toISOString() };
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new Error("At: use a duration like 20m or a date and time.");
  return { kind: "at", at: date.toISOString() };
}

export default {
  title: "Automations",
  mount(root, { client, toast }) {
    const status = h("p", { class: "muted", id: "cron-status" });
    const tbody = h("tbody");
    const history = h("section", { class: "card", id: "cron-history", hidden: true });
    const error = h("p", { class: "error", id: "cron-form-error", hidden: true });

    const form = h(
      "form",
      { class: "card", id: "cron-form" },
      h("h2", { text: "New job" }),
      h("label", {}, "Name ", h("input", { name: "name", required: true, placeholder: "standup" })),
      h(
        "label",
        {},
        "Schedule ",
        h(
          "select",
          { name: "kind" },
          h("option", { value: "at", text: "once (at)" }),
          h("option", { value: "every", text: "every" }),
          h("option", { value: "cron", text: "cron expression" }),
        ),
      ),
      h("label", {}, "When ", h("input", { name: "when", required: true, placeholder: "20m · 2026-12-01 09:00 · 30m · 0 9 * * 1-5" })),
      h("label", {}, "Time zone ", h("input", { name: "tz", placeholder: "Europe/Berlin (cron only)" })),
      h("label", {}, "Message for the agent ", h("textarea", { name: "message", required: true, rows: 2 })),
      h("label", {}, "Deliver to ", h(
        "select",
        { name: "deliver" },
        h("option", { value: "none", text: "nowhere (history only)" }),
        h("option", { value: "last", text: "last chat" }),
        h("option", { value: "telegram", text: "Telegram chat…" }),
        h("option", { value: "discord", text: "Discord channel…" }),
      )),
      h("label", {}, "Chat id ", h("input", { name: "to", placeholder: "for Telegram/Discord" })),
      error,
      h("div", { class: "row end" }, h("button", { type: "submit", text: "Create" })),
    );

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      error.hidden = true;
      let params;
      try {
        const deliver = f.get("deliver");
        const delivery =
          deliver === "none"
            ? { mode: "none" }
            : deliver === "last"
              ? { mode: "announce", channel: "last" }
              : { mode: "announce", channel: deliver, to: String(f.get("to") || "").trim() || undefined };
        params = {
          name: String(f.get("name")).trim(),
          schedule: buildSchedule(f.get("kind"), String(f.get("when")), String(f.get("tz") || "")),
          sessionTarget: "isolated",
          wakeMode: "now",
          payload: { kind: "agentTurn", message: String(f.get("message")) },
          delivery,
        };
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
        return;
      }
      try {
        await client.request("cron.add", params);
        toast(`Created ${params.name}`);
        form.reset();
        load();
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
      }
    });

    let openJob = null;

    async function showHistory(job) {
      openJob = job;
      history.hidden = false;
      const list = h("tbody");
      history.replaceChildren(
        h("div", { class: "row" }, h("h2", { text: `History: ${job.name}` }),
          h("button", { type: "button", class: "ghost", text: "Close", onclick: () => { history.hidden = true; openJob = null; } })),
        h("table", {}, h("thead", {}, h("tr", {}, h("th", { text: "Ran" }), h("th", { text: "Status" }), h("th", { text: "Delivery" }), h("th", { text: "Result" }))), list),
      );
      try {
        const res = await client.request("cron.runs", { id: job.id, limit: 50 });
        const entries = res.entries || [];
        if (!entries.length) list.replaceChildren(h("tr", {}, h("td", { colspan: 4, class: "muted", text: "No runs yet." })));
        else
          list.replaceChildren(
            ...entries.map((e) =>
              h(
                "tr",
                { class: "run", dataset: { status: e.status } },
                h("td", { text: when(e.runAtMs || e.ts) }),
                h("td", {}, h("span", { class: `badge ${e.status === "ok" ? "ok" : "bad"}`, text: e.status })),
                h("td", { text: e.deliveryStatus || "—" }),
                h("td", { text: e.error || e.summary || "" }),
              ),
            ),
          );
      } catch (err) {
        list.replaceChildren(h("tr", {}, h("td", { colspan: 4, class: "error", text: err.message })));
      }
    }

    async function act(job, kind) {
      try {
        if (kind === "toggle") {
          await client.request("cron.update", { id: job.id, patch: { enabled: !job.enabled } });
          toast(`${job.enabled ? "Disabled" : "Enabled"} ${job.name}`);
        } else if (kind === "run") {
          const res = await client.request("cron.run", { id: job.id, mode: "force" });
          toast(res.enqueued ? `Started ${job.name}` : `Not started: ${res.reason}`);
        } else if (kind === "remove") {
          if (!(await confirmDialog(`Delete the job ${job.name}?`, "Delete"))) return;
          await client.request("cron.remove", { id: job.id });
          toast(`Deleted ${job.name}`);
        }
        load();
      } catch (err) {
        toast(err.message, "error");
      }
    }

    async function load() {
      try {
        const [st, page] = await Promise.all([
          client.request("cron.status", {}),
          client.request("cron.list", { includeDisabled: true, limit: 200, includeDeliveryPreviews: false }),
        ]);
        status.textContent = `${st.enabled ? "Scheduler on" : "Scheduler off"} · ${page.total} job(s)` +
          (st.nextWakeAtMs ? ` · next run ${when(st.nextWakeAtMs)}` : "");
        const jobs = page.jobs || [];
        if (!jobs.length) {
          tbody.replaceChildren(h("tr", {}, h("td", { colspan: 6, class: "muted", text: "No jobs yet. Create one below, or ask the assistant to remind you." })));
          return;
        }
        tbody.replaceChildren(
          ...jobs.map((job) => {
            const system = job.payload?.kind === "heartbeat";
            return h(
              "tr",
              { dataset: { id: job.id, name: job.name, enabled: String(job.enabled) } },
              h("td", {}, h("strong", { text: job.displayName || job.name }), job.description ? h("div", { class: "muted", text: job.description }) : null),
              h("td", { text: scheduleText(job.schedule) }),
              h("td", { class: "next", text: job.enabled ? when(job.state?.nextRunAtMs) : "disabled" }),
              h("td", { class: "last" }, job.state?.lastRunStatus
                ? h("span", { class: `badge ${job.state.lastRunStatus === "ok" ? "ok" : "bad"}`, text: job.state.lastRunStatus })
                : "—"),
              h("td", { text: job.delivery?.mode === "announce" ? `${job.delivery.channel || "last"}${job.delivery.to ? ` → ${job.delivery.to}` : ""}` : "—" }),
              h(
                "td",
                { class: "row end" },
                system ? h("span", { class: "tag", text: "from config" }) : h("button", { type: "button", class: "ghost toggle", text: job.enabled ? "Disable" : "Enable", onclick: () => act(job, "toggle") }),
                h("button", { type: "button", class: "ghost run", text: "Run now", onclick: () => act(job, "run") }),
                h("button", { type: "button", class: "ghost history", text: "History", onclick: () => showHistory(job) }),
                system ? null : h("button", { type: "button", class: "ghost remove", text: "Delete", onclick: () => act(job, "remove") }),
              ),
            );
          }),
        );
      } catch (err) {
        tbody.replaceChildren(h("tr", {}, h("td", { colspan: 6, class: "error", text: err.message })));
      }
    }

    root.append(
      h("h1", { text: "Automations" }),
      status,
      h("table", { id: "cron-jobs" },
        h("thead", {}, h("tr", {}, ...["Job", "Schedule", "Next run", "Last run", "Delivery", ""].map((t) => h("th", { text: t })))),
        tbody),
      history,
      form,
    );
    if (!client.methods.has("cron.list")) {
      tbody.replaceChildren(h("tr", {}, h("td", { colspan: 6, class: "muted", text: "This gateway has no scheduler." })));
      return null;
    }
    load();
    // The scheduler announces added/updated/removed/started/finished jobs.
    const off = client.on("event:cron", (ev) => {
      load();
      if (openJob && ev?.jobId === openJob.id && ev.action === "finished") showHistory(openJob);
    });
    return () => off();
  },
};

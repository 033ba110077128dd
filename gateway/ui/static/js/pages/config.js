// Config: the file as JSON5 text (secrets redacted), validation errors next to their line,
// save with the base hash (a concurrent change is refused), and a quick model-chain form.

import { h } from "../dom.js";

const REDACTED = "__OPENCLAW_REDACTED__";

function modelChain(parsed) {
  const model = parsed?.agents?.defaults?.model;
  if (typeof model === "string") return { primary: model, fallbacks: [] };
  return { primary: model?.primary || "", fallbacks: model?.fallbacks || [] };
}

export default {
  title: "Config",
  mount(root, { client, toast }) {
    let snapshot = null;
    let issues = [];
    const meta = h("p", { class: "muted", id: "config-meta" });
    const gutter = h("div", { class: "gutter", "aria-hidden": "true" });
    const editor = h("textarea", {
      id: "config-editor",
      class: "code",
      spellcheck: "false",
      autocapitalize: "off",
      autocomplete: "off",
      wrap: "off",
      "aria-label": "Config file (JSON5)",
      "aria-describedby": "config-issues",
    });
    const issueList = h("ul", { class: "issues", id: "config-issues", "aria-live": "polite" });
    const result = h("p", { id: "config-result", role: "status" });
    const save = h("button", { type: "button", id: "config-save", text: "Save" });
    const reload = h("button", { type: "button", class: "ghost", id: "config-reload", text: "Reload" });
    const primary = h("input", { id: "model-primary", spellcheck: "false", placeholder: "openai/gpt-5" });
    const fallbacks = h("input", { id: "model-fallbacks", spellcheck: "false", placeholder: "anthropic/claude-sonnet, openai/gpt-5-mini" });
    const saveChain = h("button", { type: "submit", id: "model-save", text: "Save model chain" });

    function paintGutter() {
      const lines = editor.value.split("\n").length;
      const byLine = new Map();
      for (const issue of issues) if (issue.line) byLine.set(issue.line, [...(byLine.get(issue.line) || []), issue.message]);
      const nodes = [];
      for (let n = 1; n <= lines; n += 1) {
        const messages = byLine.get(n);
        nodes.push(h("div", { class: messages ? "ln err" : "ln", title: messages ? messages.join("\n") : null, text: String(n) }));
      }
      gutter.replaceChildren(...nodes);
      gutter.scrollTop = editor.scrollTop;
    }

    function goToLine(line) {
      const lines = editor.value.split("\n");
      const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
      editor.focus();
      editor.setSelectionRange(start, start + (lines[line - 1] || "").length);
      const lineHeight = editor.scrollHeight / Math.max(1, lines.length);
      editor.scrollTop = Math.max(0, (line - 3) * lineHeight);
    }

    function showIssues(list, heading) {
      issues = list || [];
      paintGutter();
      issueList.replaceChildren(
        ...issues.map((issue) =>
          h(
            "li",
            { class: "issue" },
            issue.line
              ? h("button", { type: "button", class: "link", text: `line ${issue.line}`, onclick: () => goToLine(issue.line) })
              : h("span", { class: "muted", text: "file" }),
            h("span", { text: ` ${issue.path && issue.path !== "<root>" ? issue.path + ": " : ""}${issue.message}` }),
          ),
        ),
      );
      if (issues.length && heading) issueList.prepend(h("li", { class: "error", text: heading }));
    }

    function setResult(text, kind = "") {
      result.textContent = text;
      result.className = kind;
    }

    async function load() {
      try {
        snapshot = await client.request("config.get", {});
        editor.value = snapshot.raw ?? "{\n  gateway: { mode: \"local\" },\n}\n";
        meta.textContent = `${snapshot.path} · ${snapshot.exists ? `hash ${String(snapshot.hash).slice(0, 12)}…` : "not created yet"}${snapshot.restartRequired ? ` · restart pending for ${snapshot.restartPaths.join(", ")}` : ""}`;
        const chain = modelChain(snapshot.parsed);
        primary.value = chain.primary;
        fallbacks.value = chain.fallbacks.join(", ");
        showIssues(snapshot.valid ? [] : snapshot.issues, "The file on disk is not valid:");
        setResult("");
      } catch (err) {
        setResult(err.message, "error");
      }
    }

    function describeSaved(res) {
      const parts = ["Saved."];
      if (res.applied?.length) parts.push(`Applied live: ${res.applied.join(", ")}.`);
      if (res.restartRequired) parts.push(`Restart the gateway to apply: ${res.restartPaths.join(", ")}.`);
      if (!res.applied?.length && !res.restartRequired) parts.push("No effective change.");
      return parts.join(" ");
    }

    function handleError(err) {
      if (err.code === "CONFLICT") {
        setResult("The config changed on the gateway since you loaded it, so nothing was saved. Press Reload to get the latest version (copy your edits first).", "error");
        showIssues([]);
      } else if (err.details?.issues) {
        showIssues(err.details.issues, "Not saved — fix these:");
        setResult("The config is not valid; nothing was saved.", "error");
      } else {
        setResult(err.message, "error");
      }
    }

    async function write(method, raw) {
      save.disabled = saveChain.disabled = true;
      try {
        const params = { raw };
        if (snapshot?.hash) params.baseHash = snapshot.hash;
        const res = await client.request(method, params);
        await load();
        setResult(describeSaved(res), "ok");
        toast("Config saved");
      } catch (err) {
        handleError(err);
      } finally {
        save.disabled = saveChain.disabled = false;
      }
    }

    save.addEventListener("click", () => write("config.set", editor.value));
    reload.addEventListener("click", load);
    editor.addEventListener("input", paintGutter);
    editor.addEventListener("scroll", () => {
      gutter.scrollTop = editor.scrollTop;
    });
    editor.addEventListener("keydown", (ev) => {
      if ((ev.ctrlKey || ev.metaKey) && ev.key === "s") {
        ev.preventDefault();
        save.click();
      }
    });
    const chainForm = h(
      "form",
      { class: "card chain-form", id: "model-form" },
      h("h2", { text: "Default model chain" }),
      h("p", { class: "muted", text: "The primary model answers; on failure the fallbacks are tried in order." }),
      h("label", { for: "model-primary", class: "label", text: "Primary" }),
      primary,
      h("label", { for: "model-fallbacks", class: "label", text: "Fallbacks (comma-separated)" }),
      fallbacks,
      h("div", { class: "row end" }, saveChain),
    );
    chainForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const model = { fallbacks: fallbacks.value.split(/[\s,]+/).filter(Boolean) };
      if (primary.value.trim()) model.primary = primary.value.trim();
      write("config.patch", JSON.stringify({ agents: { defaults: { model } } }));
    });

    root.append(
      h("h1", { text: "Config" }),
      meta,
      chainForm,
      h(
        "section",
        { class: "card" },
        h("h2", { text: "Config file (JSON5)" }),
        h("p", { class: "muted" }, "Secrets show as ", h("code", { text: REDACTED }), "; leave them as they are to keep the stored value."),
        h("div", { class: "editor" }, gutter, editor),
        issueList,
        h("div", { class: "row end" }, result, reload, save),
      ),
    );
    load();
    return null;
  },
};

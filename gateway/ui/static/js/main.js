// Boot: login, connection state, hash routing between pages.

import { forgetCredentials, loadCredentials, saveCredentials } from "./auth.js";
import { mountApprovals } from "./approvals.js";
import { $, clear, toast } from "./dom.js";
import { GatewayClient } from "./gateway.js";
import automations from "./pages/automations.js";
import channels from "./pages/channels.js";
import chat from "./pages/chat.js";
import config from "./pages/config.js";
import logs from "./pages/logs.js";
import overview from "./pages/overview.js";
import sessions from "./pages/sessions.js";
import usage from "./pages/usage.js";

const PAGES = { overview, chat, sessions, usage, channels, automations, config, logs };
const client = new GatewayClient();
// Exec approvals show above whatever page is open (they block a running tool call).
mountApprovals(client, $("#main"));
let current = { name: null, cleanup: null };

const STATE_TEXT = {
  idle: "not connected",
  connecting: "connecting…",
  connected: "connected",
  reconnecting: "reconnecting…",
  "auth-failed": "not authorized",
  error: "refused",
  closed: "disconnected",
};

function showLogin(message) {
  unmountPage();
  $("#page").hidden = true;
  $("#nav").hidden = true;
  $("#logout").hidden = true;
  $("#login").hidden = false;
  const error = $("#login-error");
  error.hidden = !message;
  error.textContent = message || "";
  $("#secret").focus();
}

function showApp() {
  $("#login").hidden = true;
  $("#page").hidden = false;
  $("#nav").hidden = false;
  $("#logout").hidden = false;
  route();
}

function unmountPage() {
  if (current.cleanup) {
    try {
      current.cleanup();
    } catch (err) {
      console.error(err);
    }
  }
  current = { name: null, cleanup: null };
}

function route() {
  if (client.state !== "connected" && !client.hello) return;
  const name = (location.hash.match(/^#\/([\w-]+)/) || [])[1] || "overview";
  const page = PAGES[name] || PAGES.overview;
  const pageName = PAGES[name] ? name : "overview";
  if (current.name === pageName) return;
  unmountPage();
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.page === pageName) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  // A fresh container per visit: late async renders of the page we left land in a detached node.
  const root = document.createElement("div");
  root.className = "page";
  root.dataset.page = pageName;
  clear($("#page")).append(root);
  document.title = `${page.title} · clawgate`;
  current = { name: pageName, cleanup: page.mount(root, { client, toast }) || null };
}

client.on("state", ({ state, error, retryInMs }) => {
  const badge = $("#conn");
  badge.dataset.state = state;
  let text = STATE_TEXT[state] || state;
  if (state === "reconnecting" && retryInMs) text = `reconnecting in ${Math.ceil(retryInMs / 1000)}s…`;
  badge.textContent = text;
  if (state === "auth-failed") {
    forgetCredentials();
    showLogin(error?.message || "The gateway refused the secret.");
  }
});

async function login(creds) {
  const button = $("#login-submit");
  button.disabled = true;
  $("#login-error").hidden = true;
  try {
    await client.connect(creds);
    saveCredentials(creds);
    showApp();
  } catch (err) {
    showLogin(err.message || String(err));
  } finally {
    button.disabled = false;
  }
}

$("#login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const form = ev.currentTarget;
  const secret = form.secret.value.trim();
  if (!secret) return;
  login({ kind: form.kind.value, secret, remember: form.remember.checked });
});

$("#logout").addEventListener("click", () => {
  forgetCredentials();
  client.disconnect();
  showLogin("");
});

window.addEventListener("hashchange", route);

const saved = loadCredentials();
if (saved) login(saved);
else showLogin("");

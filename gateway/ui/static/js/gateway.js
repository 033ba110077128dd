// The gateway's WebSocket protocol (v4) for the browser: handshake, requests, events,
// reconnect with back-off. Emits "state" ({state, error, attempt, retryInMs}) and "event" frames.

const PROTOCOL = 4;
const REQUEST_TIMEOUT_MS = 30000;
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];

export class RpcError extends Error {
  constructor(error) {
    super(error?.message || "request failed");
    this.code = error?.code || "UNAVAILABLE";
    this.details = error?.details || null;
  }
}

function isAuthFailure(error) {
  const code = error?.details?.code || "";
  return (
    code.startsWith("AUTH_") ||
    code === "ORIGIN_NOT_ALLOWED" ||
    String(error?.message || "").startsWith("unauthorized")
  );
}

export function gatewayUrl() {
  const url = new URL(".", document.baseURI);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.hash = "";
  url.search = "";
  return url.href;
}

export class GatewayClient extends EventTarget {
  constructor(url = gatewayUrl()) {
    super();
    this.url = url;
    this.ws = null;
    this.state = "idle";
    this.hello = null;
    this.creds = null;
    this.pending = new Map();
    this.nextId = 1;
    this.attempt = 0;
    this.retryTimer = 0;
    this.instanceId = crypto.randomUUID();
  }

  get methods() {
    return new Set(this.hello?.features?.methods || []);
  }

  setState(state, extra = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, ...extra } }));
  }

  /** Connect (or reconnect) with these credentials; resolves with hello-ok, rejects on refusal. */
  connect(creds) {
    this.creds = creds;
    this.attempt = 0;
    clearTimeout(this.retryTimer);
    return this.open();
  }

  open() {
    this.closeSocket();
    this.setState(this.attempt ? "reconnecting" : "connecting", { attempt: this.attempt });
    return new Promise((resolve, reject) => {
      let settled = false;
      const ws = new WebSocket(this.url);
      this.ws = ws;
      const connectId = `c${this.nextId++}`;
      ws.onmessage = (msg) => {
        let frame;
        try {
          frame = JSON.parse(msg.data);
        } catch {
          return;
        }
        if (frame.type === "event" && frame.event === "connect.challenge") {
          ws.send(JSON.stringify({ type: "req", id: connectId, method: "connect", params: this.connectParams() }));
          return;
        }
        if (frame.type === "res" && frame.id === connectId) {
          settled = true;
          if (frame.ok) {
            this.hello = frame.payload;
            this.attempt = 0;
            this.setState("connected", { hello: frame.payload });
            resolve(frame.payload);
          } else {
            const error = new RpcError(frame.error);
            this.lastRefusal = error;
            if (isAuthFailure(frame.error)) {
              this.creds = null;
              this.setState("auth-failed", { error });
            } else {
              this.setState("error", { error });
            }
            reject(error);
          }
          return;
        }
        this.onFrame(frame);
      };
      ws.onclose = (ev) => {
        if (this.ws !== ws) return;
        this.ws = null;
        this.failPending("connection lost");
        if (!settled) {
          settled = true;
          reject(new RpcError({ code: "UNAVAILABLE", message: ev.reason || "could not reach the gateway" }));
        }
        if (this.creds && this.state !== "auth-failed") this.scheduleReconnect(ev.reason);
        else if (this.state !== "auth-failed") this.setState("closed");
      };
    });
  }

  scheduleReconnect(reason) {
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    const jitter = Math.round(delay * 0.2 * Math.random());
    this.attempt += 1;
    this.setState("reconnecting", { attempt: this.attempt, retryInMs: delay + jitter, reason });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.open().catch(() => {});
    }, delay + jitter);
  }

  connectParams() {
    const auth = this.creds?.kind === "password" ? { password: this.creds.secret } : { token: this.creds?.secret };
    return {
      minProtocol: PROTOCOL,
      maxProtocol: PROTOCOL,
      client: {
        id: "openclaw-control-ui",
        displayName: "Control UI",
        version: "clawgate-ui",
        platform: navigator.platform || "web",
        mode: "webchat",
        instanceId: this.instanceId,
      },
      // agent tool events for the chat's tool cards; exec approvals for the approval card
      caps: ["tool-events", "exec-approvals"],
      role: "operator",
      scopes: ["operator.admin"],
      auth,
    };
  }

  onFrame(frame) {
    if (frame.type === "res") {
      const pending = this.pending.get(frame.id);
      if (!pending) return;
      this.pending.delete(frame.id);
      clearTimeout(pending.timer);
      if (frame.ok) pending.resolve(frame.payload);
      else pending.reject(new RpcError(frame.error));
    } else if (frame.type === "event") {
      this.dispatchEvent(new CustomEvent("event", { detail: frame }));
      this.dispatchEvent(new CustomEvent(`event:${frame.event}`, { detail: frame.payload }));
    }
  }

  request(method, params = {}, timeoutMs = REQUEST_TIMEOUT_MS) {
    if (!this.ws || this.state !== "connected") {
      return Promise.reject(new RpcError({ code: "UNAVAILABLE", message: "not connected to the gateway" }));
    }
    const id = `r${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RpcError({ code: "UNAVAILABLE", message: `${method} timed out` }));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ type: "req", id, method, params }));
    });
  }

  on(name, fn) {
    const handler = (ev) => fn(ev.detail);
    this.addEventListener(name, handler);
    return () => this.removeEventListener(name, handler);
  }

  failPending(message) {
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new RpcError({ code: "UNAVAILABLE", message }));
      this.pending.delete(id);
    }
  }

  closeSocket() {
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      ws.onmessage = null;
      ws.close(1000, "client closing");
    }
  }

  disconnect() {
    this.creds = null;
    clearTimeout(this.retryTimer);
    this.closeSocket();
    this.failPending("disconnected");
    this.setState("closed");
  }
}

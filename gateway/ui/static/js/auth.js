// Where the login secret lives: sessionStorage by default, localStorage only if "remember".

const KEY = "clawgate.auth";

export function loadCredentials() {
  for (const store of [sessionStorage, localStorage]) {
    try {
      const raw = store.getItem(KEY);
      if (raw) {
        const creds = JSON.parse(raw);
        if (creds && typeof creds.secret === "string" && creds.secret) return creds;
      }
    } catch {
      // Corrupt entry: ignore it.
    }
  }
  return null;
}

export function saveCredentials(creds) {
  const value = JSON.stringify({ kind: creds.kind, secret: creds.secret });
  sessionStorage.setItem(KEY, value);
  if (creds.remember) localStorage.setItem(KEY, value);
  else localStorage.removeItem(KEY);
}

export function forgetCredentials() {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
}

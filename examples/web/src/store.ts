// The app's one ChatClient, its persistence in sessionStorage, and a render signal.
//
// sessionStorage (per tab) rather than localStorage: refresh tokens are single use, so two
// tabs sharing one session would refresh it twice and the server would revoke it.
import init, { ChatClient, type ClientEvent, type Session } from "chatico-wasm";

// The SDK class, for the end-to-end test's reconnect storm (it drives clients of its own in
// the page, next to the app's).
(globalThis as unknown as { chaticoSdk: { ChatClient: typeof ChatClient } }).chaticoSdk = { ChatClient };

const SESSION_KEY = "chatico.session";
const STATE_KEY = "chatico.state";

export let client: ChatClient;

type Listener = () => void;
const listeners = new Set<Listener>();
let scheduled = false;

/** Re-render everything that subscribed (at most once per animation frame). */
export function invalidate(): void {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    for (const l of listeners) l();
  });
}

export function subscribe(l: Listener): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

let saveTimer: number | undefined;
function saveState(): void {
  if (saveTimer !== undefined) return;
  saveTimer = window.setTimeout(() => {
    saveTimer = undefined;
    if (client.userId) sessionStorage.setItem(STATE_KEY, client.exportState());
  }, 200);
}

export const eventHooks = new Set<(ev: ClientEvent) => void>();

export async function boot(): Promise<boolean> {
  await init({ module_or_path: new URL("assets/chatico_wasm_bg.wasm", document.baseURI) });
  client = new ChatClient(location.origin, { device: browserName() });
  client.onEvent((ev: ClientEvent) => {
    switch (ev.type) {
      case "session_refreshed":
        sessionStorage.setItem(SESSION_KEY, JSON.stringify(ev.session));
        break;
      case "session_expired":
        sessionStorage.removeItem(SESSION_KEY);
        sessionStorage.removeItem(STATE_KEY);
        break;
      case "queued":
      case "sent":
      case "send_failed":
      case "synced":
        saveState();
        break;
    }
    for (const h of eventHooks) h(ev);
    invalidate();
  });
  window.addEventListener("online", () => client.reconnectNow());
  const saved = sessionStorage.getItem(SESSION_KEY);
  if (!saved) return false;
  try {
    const session = JSON.parse(saved) as Session;
    if (session.refresh_expires_at < Date.now()) throw new Error("expired");
    client.restoreSession(session);
    const state = sessionStorage.getItem(STATE_KEY);
    if (state) client.importState(state);
    client.connect();
    return true;
  } catch {
    sessionStorage.removeItem(SESSION_KEY);
    sessionStorage.removeItem(STATE_KEY);
    return false;
  }
}

export async function login(phone: string, code: string): Promise<void> {
  await client.verifyOtp(phone, code);
  const s = client.session();
  if (s) sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
  sessionStorage.removeItem(STATE_KEY);
  client.connect();
}

export async function logout(): Promise<void> {
  try {
    await client.logout();
  } finally {
    sessionStorage.removeItem(SESSION_KEY);
    sessionStorage.removeItem(STATE_KEY);
  }
}

function browserName(): string {
  const ua = navigator.userAgent;
  if (/Firefox\//.test(ua)) return "Firefox";
  if (/Edg\//.test(ua)) return "Edge";
  if (/Chrom(e|ium)\//.test(ua)) return "Chromium";
  if (/Safari\//.test(ua)) return "Safari";
  return "Browser";
}

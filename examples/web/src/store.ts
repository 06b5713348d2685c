// The app's one ChatClient, its persistence in localStorage, and a render signal.
//
// One session per browser, used by one tab at a time: refresh tokens are single use, so two
// tabs refreshing one session would get it revoked. A tab that opens takes the session over
// (a BroadcastChannel tells the others, which save their state, disconnect and offer
// "Use here"), as WhatsApp Web does. Per-tab UI memory (draft, open chat) is in sessionStorage.
import init, { ChatClient, type ClientEvent, type Message, type PendingMessage, type Session } from "chatico-wasm";

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
    if (client.userId && !inactive) localStorage.setItem(STATE_KEY, client.exportState());
  }, 200);
}

export const eventHooks = new Set<(ev: ClientEvent) => void>();

/** The conversation on screen (notifications are for the others, or for a hidden page). */
export let openConversation: string | null = null;
export function setOpenConversation(id: string | null): void {
  openConversation = id;
  if (id) sessionStorage.setItem(OPEN_KEY, id);
  else sessionStorage.removeItem(OPEN_KEY);
}
export const savedOpenConversation = (): string | null => sessionStorage.getItem(OPEN_KEY);
const OPEN_KEY = "chatico.open";

/** Messages the server refused for good (the outbox drops them): shown as "not sent" until
 * the user dismisses them. */
export interface Failed {
  pending: PendingMessage;
  code: string;
}
const queuedById = new Map<string, PendingMessage>();
export const failed: Failed[] = [];

/** Per-tab UI memory (draft, scroll anchor) that survives a reload. */
export function remember(key: string, value: string | null): void {
  if (value === null || value === "") sessionStorage.removeItem(`chatico.ui.${key}`);
  else sessionStorage.setItem(`chatico.ui.${key}`, value);
}
export const recall = (key: string): string | null => sessionStorage.getItem(`chatico.ui.${key}`);

/** Groups I left: they stay in the list, marked as left (the SDK's view drops them). */
export interface LeftGroup {
  id: string;
  title: string;
  at: number;
}
const leftKey = () => `chatico.left.${client.userId ?? ""}`;
export function leftGroups(): LeftGroup[] {
  try {
    return JSON.parse(localStorage.getItem(leftKey()) ?? "[]") as LeftGroup[];
  } catch {
    return [];
  }
}
export function rememberLeft(g: LeftGroup | null, forget?: string): void {
  const list = leftGroups().filter((x) => x.id !== (g?.id ?? forget));
  if (g) list.unshift(g);
  localStorage.setItem(leftKey(), JSON.stringify(list));
  invalidate();
}

// ---- notifications: the tab title, a desktop notification and a sound ----------------

let audio: AudioContext | undefined;
function chime(): void {
  try {
    audio ??= new AudioContext();
    const o = audio.createOscillator();
    const g = audio.createGain();
    o.frequency.value = 880;
    g.gain.setValueAtTime(0.08, audio.currentTime);
    g.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.25);
    o.connect(g).connect(audio.destination);
    o.start();
    o.stop(audio.currentTime + 0.25);
  } catch {
    // No audio on this page: the notification and the title still tell.
  }
}

export function notifyText(m: Message): string {
  if (!m.content) return "";
  if (m.content.type === "text") return m.content.text;
  if (m.content.type === "media") return `📷 ${m.content.caption ?? "Photo"}`;
  return "";
}

const lastRing = new Map<string, number>();
function onMessage(m: Message): void {
  if (m.sender_id === client.userId || !m.content || m.content.type === "system") return;
  // Catch-up after a reconnect is not news: only messages of the last minute ring.
  if (Date.now() - m.created_at > 60_000) return;
  if (m.conversation_id === openConversation && document.visibilityState === "visible") return;
  const view = client.conversation(m.conversation_id);
  if (view?.archived) return;
  // A burst (a backlog arriving) rings once.
  const now = Date.now();
  if (now - (lastRing.get(m.conversation_id) ?? 0) < 1500) return;
  lastRing.set(m.conversation_id, now);
  chime();
  if (typeof Notification !== "undefined" && Notification.permission === "granted") {
    const who = client.profile(m.sender_id)?.display_name ?? "New message";
    const title = view?.conversation.kind === "group" ? `${who} in ${view.conversation.title ?? "a group"}` : who;
    const n = new Notification(title, { body: notifyText(m), tag: m.conversation_id });
    n.onclick = () => {
      window.focus();
      openRequests.forEach((f) => f(m.conversation_id));
      n.close();
    };
  }
}
/** Who opens a conversation when a notification is clicked. */
export const openRequests = new Set<(id: string) => void>();

export function updateTitle(): void {
  const n = client.userId ? client.totalUnread() : 0;
  const t = n > 0 ? `(${n}) ChatiCO` : "ChatiCO";
  if (document.title !== t) document.title = t;
}

export async function boot(): Promise<boolean> {
  await init({ module_or_path: new URL("assets/chatico_wasm_bg.wasm", document.baseURI) });
  client = new ChatClient(location.origin, { device: browserName() });
  client.onEvent((ev: ClientEvent) => {
    switch (ev.type) {
      case "session_refreshed":
        if (!inactive) localStorage.setItem(SESSION_KEY, JSON.stringify(ev.session));
        break;
      case "session_expired":
        localStorage.removeItem(SESSION_KEY);
        localStorage.removeItem(STATE_KEY);
        break;
      case "queued":
        queuedById.set(ev.pending.client_msg_id, ev.pending);
        saveState();
        break;
      case "sent":
        queuedById.delete(ev.client_msg_id);
        saveState();
        break;
      case "send_failed": {
        const p = queuedById.get(ev.client_msg_id);
        queuedById.delete(ev.client_msg_id);
        if (p) failed.push({ pending: p, code: ev.error.code });
        saveState();
        break;
      }
      case "synced":
        saveState();
        break;
      case "change":
        if (ev.change.kind.type === "message") onMessage(ev.change.kind.message);
        break;
    }
    for (const h of eventHooks) h(ev);
    updateTitle();
    invalidate();
  });
  window.addEventListener("online", () => client.reconnectNow());
  channel.onmessage = (e: MessageEvent<{ type: string; tab: string }>) => {
    if (e.data.tab === TAB) return;
    if (e.data.type === "logout") location.reload();
    if (e.data.type === "claim" && client.userId && !inactive) {
      localStorage.setItem(STATE_KEY, client.exportState());
      client.disconnect();
      inactive = true;
      invalidate();
    }
  };
  if (!localStorage.getItem(SESSION_KEY)) return false;
  return takeOver();
}

const channel = new BroadcastChannel("chatico.tabs");
const TAB = crypto.randomUUID();
/** True while another tab of this browser uses the session. */
export let inactive = false;

/** Takes the saved session over from any other tab ("Use here"). */
export async function takeOver(): Promise<boolean> {
  channel.postMessage({ type: "claim", tab: TAB });
  // The other tab saves its state and lets go of the session (same process: quick).
  await new Promise((r) => setTimeout(r, 150));
  const saved = localStorage.getItem(SESSION_KEY);
  if (!saved) return false;
  try {
    const session = JSON.parse(saved) as Session;
    if (session.refresh_expires_at < Date.now()) throw new Error("expired");
    client.restoreSession(session);
    const state = localStorage.getItem(STATE_KEY);
    if (state) client.importState(state);
    for (const p of client.pending()) queuedById.set(p.client_msg_id, p);
    inactive = false;
    client.connect();
    invalidate();
    return true;
  } catch {
    localStorage.removeItem(SESSION_KEY);
    localStorage.removeItem(STATE_KEY);
    return false;
  }
}

export async function login(phone: string, code: string): Promise<boolean> {
  const tokens = await client.verifyOtp(phone, code);
  const s = client.session();
  if (s) localStorage.setItem(SESSION_KEY, JSON.stringify(s));
  localStorage.removeItem(STATE_KEY);
  channel.postMessage({ type: "claim", tab: TAB });
  client.connect();
  return tokens.new_user;
}

export async function logout(): Promise<void> {
  try {
    await client.logout();
  } finally {
    localStorage.removeItem(SESSION_KEY);
    localStorage.removeItem(STATE_KEY);
    channel.postMessage({ type: "logout", tab: TAB });
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

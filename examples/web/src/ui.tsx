// Small presentational pieces and formatting helpers.
import type { ConversationView, Message, UserId } from "chatico-wasm";
import { client } from "./store";

const PALETTE = ["#e17076", "#7bc862", "#e5ca77", "#65aadd", "#a695e7", "#ee7aae", "#6ec9cb", "#faa774"];

export function colorOf(id: string): string {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

const seg = new Intl.Segmenter(undefined, { granularity: "grapheme" });
const firstGrapheme = (s: string): string => seg.segment(s)[Symbol.iterator]().next().value?.segment ?? "";

/** Up to two letters of a name (whole graphemes: an emoji or an accented letter stays whole;
 * a name that starts with a symbol gives that symbol alone). */
export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  if (parts.length === 0) return "?";
  if (parts[0].startsWith("+")) return parts[0].slice(-2);
  const first = firstGrapheme(parts[0]);
  if (!/\p{L}|\p{N}/u.test(first)) return first;
  const last = parts.length > 1 ? firstGrapheme(parts[parts.length - 1]) : "";
  return (first + (/\p{L}/u.test(last) ? last : "")).toUpperCase();
}

export function Avatar(props: { id: string; name: string; url?: string | null; size?: number; online?: boolean }) {
  const size = props.size ?? 44;
  return (
    <span class="avatar" style={{ width: `${size}px`, height: `${size}px`, fontSize: `${Math.round(size * 0.4)}px` }}>
      {props.url ? (
        // A stored `/v1/blobs/{key}` becomes a URL with the current access token.
        <img src={client.imageUrl(props.url)} alt="" data-testid="avatar-img" />
      ) : (
        <span class="avatar-fallback" style={{ background: colorOf(props.id) }}>
          {initials(props.name)}
        </span>
      )}
      {props.online ? <span class="avatar-online" data-testid="online-dot" /> : null}
    </span>
  );
}

export function clock(ts: number): string {
  return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function shortDate(ts: number): string {
  const d = new Date(ts);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return clock(ts);
  const y = new Date(now);
  y.setDate(now.getDate() - 1);
  if (d.toDateString() === y.toDateString()) return "Yesterday";
  return d.toLocaleDateString([], { day: "numeric", month: "short" });
}

export function lastSeen(ts: number | null | undefined): string {
  if (!ts) return "offline";
  const d = new Date(ts);
  const today = new Date().toDateString() === d.toDateString();
  return today ? `last seen today at ${clock(ts)}` : `last seen ${d.toLocaleDateString()} at ${clock(ts)}`;
}

/** The other member of a direct conversation. */
export function peerOf(c: ConversationView): UserId | undefined {
  const me = client.userId;
  return c.members.find((m) => m.user_id !== me)?.user_id;
}

export function memberName(c: ConversationView, id: UserId): string {
  const m = c.members.find((x) => x.user_id === id);
  return knownName(id) || m?.display_name || "…";
}

export function titleOf(c: ConversationView): string {
  if (c.conversation.kind === "group") return c.conversation.title ?? "Group";
  const peer = peerOf(c);
  return peer ? memberName(c, peer) : "Saved messages";
}

/** Whose colour a conversation's avatar takes: the peer's in a direct chat (one colour per
 * person everywhere), the group's own otherwise. */
export function colorKeyOf(c: ConversationView): string {
  return c.conversation.kind === "direct" ? (peerOf(c) ?? client.userId ?? c.conversation.id) : c.conversation.id;
}

export function avatarOf(c: ConversationView): string | null {
  if (c.conversation.kind === "group") return c.conversation.avatar_url;
  const peer = peerOf(c);
  if (!peer) return null;
  return client.profile(peer)?.avatar_url ?? c.members.find((m) => m.user_id === peer)?.avatar_url ?? null;
}

export type Tick = "pending" | "sent" | "delivered" | "read";

/** Sent / delivered to everyone else / read by everyone else. */
export function tickOf(c: ConversationView, m: Message): Tick {
  const others = c.members.filter((x) => x.user_id !== m.sender_id);
  if (others.length === 0) return "read";
  if (others.every((x) => x.read_seq >= m.seq)) return "read";
  if (others.every((x) => x.delivered_seq >= m.seq)) return "delivered";
  return "sent";
}

export function Ticks(props: { tick: Tick }) {
  const t = props.tick;
  if (t === "pending") {
    return (
      <span class="ticks pending" data-testid="tick" data-tick="pending" title="Waiting to send">
        <svg viewBox="0 0 16 16" width="14" height="14"><circle cx="8" cy="8" r="6.2" fill="none" stroke="currentColor" stroke-width="1.4" /><path d="M8 4.5V8l2.4 1.6" fill="none" stroke="currentColor" stroke-width="1.4" stroke-linecap="round" /></svg>
      </span>
    );
  }
  const double = t !== "sent";
  return (
    <span class={`ticks ${t}`} data-testid="tick" data-tick={t} title={t === "read" ? "Read" : t === "delivered" ? "Delivered" : "Sent"}>
      <svg viewBox="0 0 18 12" width="18" height="12">
        <path d="M1.5 6.5l3.2 3.2L11 3" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round" />
        {double ? <path d="M7.5 9.2l0.5 0.5L14.8 3" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round" /> : null}
      </svg>
    </span>
  );
}

/** The one-line preview of a message in the conversation list. */
export function Preview(props: { m: Message | null | undefined }) {
  const m = props.m;
  if (!m) return null;
  if (!m.content) {
    return (
      <span class="inline-icon deleted-text">
        <Icon name="ban" size={15} /> This message was deleted
      </span>
    );
  }
  switch (m.content.type) {
    case "text":
      return <bdi>{m.content.text}</bdi>;
    case "media":
      return (
        <span class="inline-icon">
          <Icon name="camera" size={16} /> {m.content.caption ?? "Photo"}
        </span>
      );
    case "system":
      return <>{systemText(m.content)}</>;
  }
}

export function systemText(n: { notice: string; [k: string]: unknown }): string {
  switch (n.notice) {
    case "group_created":
      return `Group “${n.title as string}” created`;
    case "members_added":
      return `${(n.users as string[]).map(nameOf).join(", ")} joined`;
    case "member_removed":
      return `${nameOf(n.user as string)} was removed`;
    case "member_left":
      return `${nameOf(n.user as string)} left`;
    case "role_changed":
      return n.role === "member" ? `${nameOf(n.user as string)} is no longer an admin` : `${nameOf(n.user as string)} is now ${n.role === "owner" ? "the owner" : "an admin"}`;
    case "title_changed":
      return `Title changed to “${n.title as string}”`;
    default:
      return "";
  }
}

const asked = new Set<string>();
/** A user's name from the local view; an unknown user (e.g. one who left a group before a
 * reload) is fetched once and the view redraws when the profile arrives. */
export function knownName(id: string): string | undefined {
  const p = client.profile(id);
  if (p) return p.display_name;
  if (!asked.has(id)) {
    asked.add(id);
    client.getUser(id).catch(() => {});
  }
  return undefined;
}

export function nameOf(id: string): string {
  if (id === client.userId) return "You";
  return knownName(id) ?? "…";
}

/** A text for a person instead of a developer's error message. */
export function humanError(e: unknown): string {
  const err = e as { code?: string; message?: string; field?: string; retry_after_ms?: number; limit?: number };
  switch (err?.code) {
    case "unavailable":
      return "Can't reach the server right now. Check your connection and try again.";
    case "rate_limited":
      return `Too many tries. Wait ${Math.max(1, Math.ceil((err.retry_after_ms ?? 1000) / 1000))} seconds and try again.`;
    case "forbidden":
      return "You're not allowed to do that here.";
    case "not_found":
      return "That isn't there any more.";
    case "too_large":
      if (err.message?.startsWith("pins")) return `You can pin up to ${err.limit ?? 5} chats. Unpin one first.`;
      return "That file is too big.";
    case "conflict":
      return "That was changed meanwhile. Try again.";
    case "unauthorized":
      return "Your session ended. Please sign in again.";
    case "invalid_input":
      switch (err.field) {
        case "phone":
          return "That doesn't look like a phone number. Start with + and the country code, e.g. +1 415 555 0100.";
        case "code":
          return "The code is the 6 digits we texted you.";
        case "display_name":
          return "Please enter a name (up to 64 characters).";
        case "title":
          return "Please enter a group name (up to 100 characters).";
        case "mentions":
          return "Only members of this group can be mentioned.";
        case "content_type":
        case "image":
          return "Only PNG, JPEG, GIF and WebP pictures can be sent.";
        default:
          return "Something in what you entered isn't right. Please check it.";
      }
    default:
      return "Something went wrong. Please try again.";
  }
}

export function dayLabel(ts: number): string {
  const d = new Date(ts);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return "Today";
  const y = new Date(now);
  y.setDate(now.getDate() - 1);
  if (d.toDateString() === y.toDateString()) return "Yesterday";
  return d.toLocaleDateString([], { weekday: "long", day: "numeric", month: "long", year: d.getFullYear() === now.getFullYear() ? undefined : "numeric" });
}

export function Icon(props: { name: "search" | "send" | "clip" | "back" | "more" | "archive" | "group" | "people" | "close" | "camera" | "logout" | "chat" | "ban" | "smile" | "down" | "reply" | "pin"; size?: number }) {
  const paths: Record<string, string> = {
    search: "M10.5 3a7.5 7.5 0 015.9 12.1l4.2 4.2-1.4 1.4-4.2-4.2A7.5 7.5 0 1110.5 3zm0 2a5.5 5.5 0 100 11 5.5 5.5 0 000-11z",
    send: "M3 20.5v-7l9-1.5-9-1.5v-7L22 12z",
    clip: "M16.5 6.5l-7.8 7.8a1.8 1.8 0 002.5 2.5l8.1-8.1a3.6 3.6 0 00-5.1-5.1L5.4 11.4a5.4 5.4 0 007.6 7.6l6.3-6.3 1.4 1.4-6.3 6.3A7.4 7.4 0 014 10l8.8-8.8a5.6 5.6 0 017.9 7.9l-8.1 8.1a3.8 3.8 0 01-5.4-5.4L15 4z",
    back: "M20 11H7.8l5.6-5.6L12 4l-8 8 8 8 1.4-1.4L7.8 13H20z",
    more: "M12 7a2 2 0 110-4 2 2 0 010 4zm0 7a2 2 0 110-4 2 2 0 010 4zm0 7a2 2 0 110-4 2 2 0 010 4z",
    archive: "M20.5 5.2L19.1 3.5A1.5 1.5 0 0018 3H6a1.5 1.5 0 00-1.2.5L3.5 5.2A2 2 0 003 6.5V19a2 2 0 002 2h14a2 2 0 002-2V6.5a2 2 0 00-.5-1.3zM12 17.5L6.5 12H10v-2h4v2h3.5zM5.1 5l.8-1h12l.9 1z",
    group: "M16 11a3 3 0 100-6 3 3 0 000 6zm-8 0a3 3 0 100-6 3 3 0 000 6zm0 2c-2.3 0-7 1.2-7 3.5V19h14v-2.5C15 14.2 10.3 13 8 13zm8 0l-1 .1c1.2.8 2 2 2 3.4V19h6v-2.5c0-2.3-4.7-3.5-7-3.5z",
    people: "M12 12a4 4 0 100-8 4 4 0 000 8zm0 2c-2.7 0-8 1.3-8 4v2h16v-2c0-2.7-5.3-4-8-4z",
    close: "M19 6.4L17.6 5 12 10.6 6.4 5 5 6.4 10.6 12 5 17.6 6.4 19 12 13.4 17.6 19 19 17.6 13.4 12z",
    camera: "M12 9a4 4 0 100 8 4 4 0 000-8zm8-3h-3.2l-1.8-2H9L7.2 6H4a2 2 0 00-2 2v11a2 2 0 002 2h16a2 2 0 002-2V8a2 2 0 00-2-2z",
    logout: "M16 17v-3H9v-4h7V7l5 5zM14 2a2 2 0 012 2v2h-2V4H5v16h9v-2h2v2a2 2 0 01-2 2H5a2 2 0 01-2-2V4a2 2 0 012-2z",
    chat: "M4 4h16a2 2 0 012 2v10a2 2 0 01-2 2H8l-5 4V6a2 2 0 011-2z",
    smile: "M12 2a10 10 0 110 20 10 10 0 010-20zm0 2a8 8 0 100 16 8 8 0 000-16zm-3.5 5a1.5 1.5 0 110 3 1.5 1.5 0 010-3zm7 0a1.5 1.5 0 110 3 1.5 1.5 0 010-3zM7 14h10a5 5 0 01-10 0z",
    down: "M7.4 8.6L12 13.2l4.6-4.6L18 10l-6 6-6-6z",
    reply: "M10 9V5l-7 7 7 7v-4.1c5 0 8.5 1.6 11 5.1-1-5-4-10-11-11z",
    pin: "M16 3v2h-1v5l3 3v2h-5v6l-1 1-1-1v-6H6v-2l3-3V5H8V3z",
    ban: "M12 2a10 10 0 110 20 10 10 0 010-20zm0 2a8 8 0 00-6.3 12.9L16.9 5.7A8 8 0 0012 4zm6.3 3.1L7.1 18.3A8 8 0 0018.3 7.1z",
  };
  const size = props.size ?? 22;
  return (
    <svg class="icon" viewBox="0 0 24 24" width={size} height={size} aria-hidden="true">
      <path d={paths[props.name]} fill="currentColor" />
    </svg>
  );
}

// One open conversation: header (presence, typing), messages (history paging, unread
// divider, date separators, replies, ticks, images, deletions, a keyboard/touch message
// menu) and the composer (multi-line text, replies, emoji, images with a preview).
import { Component, h, type FunctionComponent } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import type { ClientEvent, ConversationView, Mention, Message, PendingMessage, UserId } from "chatico-wasm";
import { client, eventHooks, failed, invalidate, recall, remember, type Failed } from "./store";
import {
  Avatar,
  Icon,
  Ticks,
  avatarOf,
  clock,
  colorKeyOf,
  colorOf,
  dayLabel,
  humanError,
  lastSeen,
  memberName,
  peerOf,
  systemText,
  tickOf,
  titleOf,
} from "./ui";
import { ConfirmDialog, Menu, PhotoViewer, type MenuItem } from "./menu";

const TYPING_REFRESH_MS = 3000;
const TYPING_IDLE_MS = 4000;
/** One page of older history. */
const PAGE = 100;
/** Pages loaded at most to reach the first unread message when a chat opens. */
const MAX_UNREAD_PAGES = 20;

/** Older messages than the SDK's window (it keeps the newest 500) are the app's to hold. */
function merge(older: Message[], recent: Message[]): Message[] {
  if (older.length === 0) return recent;
  const bySeq = new Map<number, Message>();
  for (const m of older) bySeq.set(m.seq, m);
  for (const m of recent) bySeq.set(m.seq, m);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

/** Re-renders a component only when its `sig` changes (a chat can hold a thousand
 * bubbles; a keystroke or the clock must not redraw them all). */
function memoBySig<P extends { sig: string }>(C: FunctionComponent<P>) {
  return class extends Component<P> {
    shouldComponentUpdate(next: P) {
      return next.sig !== this.props.sig;
    }
    render() {
      return h(C, this.props);
    }
  };
}

export function Chat(props: {
  c: ConversationView;
  /** A message to show (a search result): loaded, scrolled to and flashed once ready. */
  focus?: { seq: number; n: number };
  onBack: () => void;
  onClosed: () => void;
  onInfo: () => void;
}) {
  const c = props.c;
  const id = c.conversation.id;
  const me = client.userId;
  const peer = c.conversation.kind === "direct" ? peerOf(c) : undefined;
  const blocked = peer ? client.blockedIds().includes(peer) : false;
  const [older, setOlder] = useState<Message[]>([]);
  const messages = merge(older, client.messages(id));
  const pending = client.pending().filter((p) => p.conversation_id === id);
  const notSent = failed.filter((f) => f.pending.conversation_id === id);
  const [menu, setMenu] = useState(false);
  const [error, setError] = useState("");
  const [hasMore, setHasMore] = useState(true);
  const [loading, setLoading] = useState(false);
  const [ready, setReady] = useState(false);
  const [newCount, setNewCount] = useState(0);
  const [replyTo, setReplyTo] = useState<Message | null>(null);
  const [viewer, setViewer] = useState<Message | null>(null);
  const [refusedBy, setRefusedBy] = useState(false);
  // The unread divider stays where it was when the chat opened.
  const [divider] = useState(() => (c.unread > 0 ? c.read_seq + 1 : 0));
  const scroller = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const loadingRef = useRef(false);
  const prepend = useRef<{ height: number; top: number } | null>(null);
  const lastSeq = messages.length ? messages[messages.length - 1].seq : 0;
  const firstSeq = messages.length ? messages[0].seq : 0;
  const prevLast = useRef(lastSeq);
  const connected = client.connectionState().state === "connected";
  const composerRef = useRef<HTMLTextAreaElement>(null);
  const menuBtn = useRef<HTMLButtonElement>(null);

  async function loadOlder(): Promise<number> {
    const first = merge(older, client.messages(id))[0]?.seq;
    if (loadingRef.current || !hasMore) return first ?? 0;
    loadingRef.current = true;
    setLoading(true);
    const el = scroller.current;
    try {
      const page = await client.history(id, first, PAGE);
      if (page.length < PAGE) setHasMore(false);
      if (el) prepend.current = { height: el.scrollHeight, top: el.scrollTop };
      setOlder((o) => merge(page, o));
      return page[0]?.seq ?? first ?? 0;
    } catch (e) {
      setError(humanError(e));
      return first ?? 0;
    } finally {
      loadingRef.current = false;
      setLoading(false);
    }
  }

  // When the chat opens: the newest page, then older pages until the first unread message is
  // loaded; then show that message (or the saved scroll position, or the bottom).
  useEffect(() => {
    let gone = false;
    (async () => {
      try {
        let page = await client.history(id, undefined, PAGE);
        let acc = page;
        if (page.length < PAGE) setHasMore(false);
        for (let i = 0; divider && page.length === PAGE && (acc[0]?.seq ?? 0) > divider && i < MAX_UNREAD_PAGES; i++) {
          page = await client.history(id, acc[0].seq, PAGE);
          acc = merge(page, acc);
          if (page.length < PAGE) setHasMore(false);
        }
        if (!gone) setOlder(acc);
      } catch {
        // Offline: what the local view holds is shown.
      }
      if (!gone) setReady(true);
    })();
    if (peer) client.getUser(peer).catch(() => {});
    return () => {
      gone = true;
    };
  }, [id]);

  // First placement once loaded: the unread divider, a saved position, or the bottom.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!ready || !el) return;
    const saved = recall(`scroll.${id}`);
    const target = divider
      ? el.querySelector<HTMLElement>('[data-testid="unread-divider"]')
      : saved
        ? el.querySelector<HTMLElement>(`[data-seq="${saved}"]`)
        : null;
    if (target) {
      el.scrollTop = target.offsetTop - el.offsetTop - 8;
    } else {
      el.scrollTop = el.scrollHeight;
    }
    onScroll();
  }, [ready]);

  // Keeps the reading position when older messages are put above it.
  useLayoutEffect(() => {
    const el = scroller.current;
    const p = prepend.current;
    if (el && p) {
      el.scrollTop = p.top + (el.scrollHeight - p.height);
      prepend.current = null;
    }
  }, [firstSeq]);

  // New messages: follow them when at the bottom (or when they are mine); otherwise count
  // them on the "new messages" button.
  useLayoutEffect(() => {
    const el = scroller.current;
    const before = prevLast.current;
    prevLast.current = lastSeq;
    if (!el || !ready) return;
    const arrived = messages.filter((m) => m.seq > before);
    const mineOnly = arrived.length > 0 && arrived.every((m) => m.sender_id === me);
    if (atBottom.current || mineOnly) {
      el.scrollTop = el.scrollHeight;
      setNewCount(0);
    } else if (arrived.length > 0 && before > 0) {
      setNewCount((n) => n + arrived.filter((m) => m.sender_id !== me).length);
    }
  }, [lastSeq, pending.length, notSent.length]);

  // Read receipts: read up to the last message actually on screen while the page is visible.
  function markVisible() {
    const el = scroller.current;
    const view = client.conversation(id);
    if (!el || !view || !ready || document.visibilityState !== "visible") return;
    const bottom = el.getBoundingClientRect().bottom;
    const rows = el.querySelectorAll<HTMLElement>("[data-seq]");
    let seen = 0;
    for (let i = rows.length - 1; i >= 0; i--) {
      const r = rows[i].getBoundingClientRect();
      if (r.top + Math.min(r.height, 24) <= bottom) {
        seen = Number(rows[i].dataset.seq);
        break;
      }
    }
    // A system notice or a message deleted for me above the last one shown counts too.
    if (atBottom.current) seen = Math.max(seen, view.conversation.last_seq);
    if (seen > view.read_seq) client.markRead(id, seen).catch(() => {});
  }

  useEffect(() => {
    markVisible();
    document.addEventListener("visibilitychange", markVisible);
    return () => document.removeEventListener("visibilitychange", markVisible);
  }, [id, ready, lastSeq, c.read_seq, c.conversation.last_seq]);

  function onScroll() {
    const el = scroller.current;
    if (!el) return;
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    if (atBottom.current) setNewCount(0);
    if (ready && el.scrollTop < 300 && hasMore) void loadOlder();
    // Remember the first message on screen, for a reload.
    const top = el.getBoundingClientRect().top;
    const first = [...el.querySelectorAll<HTMLElement>("[data-seq]")].find((r) => r.getBoundingClientRect().bottom > top);
    remember(`scroll.${id}`, atBottom.current ? null : (first?.dataset.seq ?? null));
    markVisible();
  }

  function toBottom() {
    const el = scroller.current;
    if (el) el.scrollTo({ top: el.scrollHeight });
    atBottom.current = true;
    setNewCount(0);
  }

  async function jumpTo(seq: number) {
    const el = scroller.current;
    if (!el) return;
    let row = el.querySelector<HTMLElement>(`[data-seq="${seq}"]`);
    for (let i = 0; !row && i < MAX_UNREAD_PAGES && hasMore; i++) {
      const first = await loadOlder();
      await new Promise((r) => requestAnimationFrame(r));
      row = el.querySelector<HTMLElement>(`[data-seq="${seq}"]`);
      if (first <= seq) break;
    }
    if (row) {
      row.scrollIntoView({ block: "center" });
      row.classList.add("flash");
      window.setTimeout(() => row?.classList.remove("flash"), 1200);
    }
  }

  // A send the server refused for good (e.g. the peer blocked us) stays as "not sent".
  useEffect(() => {
    const hook = (ev: ClientEvent) => {
      if (ev.type === "send_failed" && failed.some((f) => f.pending.client_msg_id === ev.client_msg_id && f.pending.conversation_id === id)) {
        if (ev.error.code === "forbidden" && peer) setRefusedBy(true);
        setError(
          ev.error.code === "forbidden"
            ? peer
              ? `Not delivered: ${memberName(c, peer)} isn't accepting your messages.`
              : "Not delivered: you can't write in this group any more."
            : `Not delivered. ${humanError(ev.error)}`,
        );
      }
    };
    eventHooks.add(hook);
    return () => eventHooks.delete(hook);
  }, [id]);

  // Memoized bubbles keep their first callbacks: they call the current ones through this.
  const latest = useRef({ jumpTo });
  latest.current.jumpTo = jumpTo;

  // Opened from a search result: go to that message once the first page is placed.
  useEffect(() => {
    if (ready && props.focus) void latest.current.jumpTo(props.focus.seq);
  }, [ready, props.focus?.n]);

  const typing = c.typing.filter((u) => u !== me);
  const presence = peer ? client.presence(peer) : undefined;
  let status: string;
  if (typing.length > 0) {
    status = c.conversation.kind === "group" ? `${typing.map((u) => memberName(c, u)).join(", ")} typing…` : "typing…";
  } else if (peer) {
    // Presence is only known while connected, and not at all from someone who blocked us.
    status =
      blocked || refusedBy
        ? ""
        : !connected
          ? "waiting for network…"
          : presence?.online
            ? "online"
            : lastSeen(presence?.last_seen_at ?? client.profile(peer)?.last_seen_at);
  } else {
    status = c.members.map((m) => (m.user_id === me ? "You" : memberName(c, m.user_id))).join(", ");
  }

  async function act(f: () => Promise<unknown>) {
    setMenu(false);
    setError("");
    try {
      await f();
    } catch (e) {
      setError(humanError(e));
    }
  }

  const chatMenu: MenuItem[] = [
    { id: "info", label: c.conversation.kind === "group" ? "Group info" : "Contact info", run: props.onInfo },
    { id: "archive", label: c.archived ? "Unarchive chat" : "Archive chat", run: () => act(() => client.setArchived(id, !c.archived)) },
    { id: "pin", label: c.pinned ? "Unpin chat" : "Pin chat", run: () => act(() => (c.pinned ? client.unpin(id) : client.pin(id))) },
  ];
  if (peer) {
    chatMenu.push({
      id: "block",
      label: `${blocked ? "Unblock" : "Block"} ${memberName(c, peer)}`,
      run: () => act(() => (blocked ? client.unblock(peer) : client.block(peer))),
    });
  }

  const byseq = new Map(messages.map((m) => [m.seq, m]));
  const rows: preact.JSX.Element[] = [];
  let prevDay = "";
  messages.forEach((m, i) => {
    const day = new Date(m.created_at).toDateString();
    if (day !== prevDay) {
      rows.push(
        <div class="day-sep" data-testid="day-separator" key={`d${m.seq}`}>
          <span>{dayLabel(m.created_at)}</span>
        </div>,
      );
      prevDay = day;
    }
    if (divider && m.seq === divider) {
      rows.push(
        <div class="unread-sep" data-testid="unread-divider" key="unread">
          <span>Unread messages</span>
        </div>,
      );
    } else if (divider && m.seq > divider && messages[i - 1] && messages[i - 1].seq < divider) {
      rows.push(
        <div class="unread-sep" data-testid="unread-divider" key="unread">
          <span>Unread messages</span>
        </div>,
      );
    }
    const quoted = m.reply_to_seq ? byseq.get(m.reply_to_seq) : undefined;
    const sig = [
      m.content ? JSON.stringify(m.content) : "deleted",
      m.edited_at ?? "",
      JSON.stringify(m.reactions ?? []),
      m.sender_id === me ? tickOf(c, m) : "",
      messages[i - 1]?.sender_id ?? "",
      memberName(c, m.sender_id),
      // Names inside (a notice about someone, a quoted sender) arrive later after a reload.
      m.content?.type === "system" ? systemText(m.content) : "",
      quoted ? `${memberName(c, quoted.sender_id)}:${snippet(quoted)}` : "",
    ].join("\u0001");
    rows.push(
      <MemoBubble
        key={m.seq}
        sig={sig}
        c={c}
        m={m}
        prev={messages[i - 1]}
        quoted={quoted}
        onReply={() => {
          setReplyTo(m);
          composerRef.current?.focus();
        }}
        onJump={(seq) => latest.current.jumpTo(seq)}
        onView={() => setViewer(m)}
        onError={setError}
      />,
    );
  });

  return (
    <section class="chat" data-testid="chat" data-conversation={id}>
      <header class="bar chat-bar">
        <button class="icon-btn back" onClick={props.onBack} title="Back" aria-label="Back to chats">
          <Icon name="back" />
        </button>
        <button class="chat-head" onClick={props.onInfo} data-testid="chat-info" aria-label={c.conversation.kind === "group" ? "Group info" : "Contact info"}>
          <Avatar id={colorKeyOf(c)} name={titleOf(c)} url={avatarOf(c)} size={40} />
          <span class="bar-title">
            <b data-testid="chat-title" dir="auto">{titleOf(c)}</b>
            <span class={`status ${typing.length ? "typing-text" : ""}`} data-testid="chat-status">
              {status}
            </span>
          </span>
        </button>
        <div class="menu-wrap">
          <button ref={menuBtn} class="icon-btn" onClick={() => setMenu(!menu)} title="Menu" aria-label="Chat menu" aria-haspopup="menu" aria-expanded={menu} data-testid="chat-menu">
            <Icon name="more" />
          </button>
          {menu ? <Menu items={chatMenu} anchor={menuBtn.current} onClose={() => setMenu(false)} class="chat-menu-pop" /> : null}
        </div>
      </header>
      <div class="messages" ref={scroller} data-testid="messages" onScroll={onScroll} tabIndex={0} aria-label="Messages">
        {loading ? <div class="loading" data-testid="loading-older">Loading older messages…</div> : null}
        {!hasMore && messages.length > 0 ? <div class="history-start muted small" data-testid="history-start">This is the beginning of the chat.</div> : null}
        {rows}
        {pending.map((p) => (
          <PendingBubble key={p.client_msg_id} p={p} />
        ))}
        {notSent.map((f) => (
          <FailedBubble key={f.pending.client_msg_id} f={f} />
        ))}
      </div>
      {newCount > 0 ? (
        <button class="new-messages" onClick={toBottom} data-testid="new-messages">
          <Icon name="down" size={18} /> {newCount} new {newCount === 1 ? "message" : "messages"}
        </button>
      ) : null}
      {error ? (
        <div class="banner error" role="alert" data-testid="chat-error">
          <span>{error}</span>
          <button class="icon-btn small" onClick={() => setError("")} aria-label="Dismiss">
            <Icon name="close" size={16} />
          </button>
        </div>
      ) : null}
      {blocked && peer ? (
        <div class="banner" data-testid="blocked-banner">
          You blocked {memberName(c, peer)}.{" "}
          <button class="link" onClick={() => act(() => client.unblock(peer))} data-testid="unblock">
            Unblock
          </button>
        </div>
      ) : (
        <Composer id={id} c={c} replyTo={replyTo} onCancelReply={() => setReplyTo(null)} onError={setError} inputRef={composerRef} />
      )}
      {viewer && viewer.content?.type === "media" ? <PhotoViewer m={viewer} onClose={() => setViewer(null)} /> : null}
    </section>
  );
}

function snippet(m: Message | undefined): string {
  if (!m) return "Original message";
  if (!m.content) return "This message was deleted";
  if (m.content.type === "text") return m.content.text;
  if (m.content.type === "media") return `📷 ${m.content.caption ?? "Photo"}`;
  return systemText(m.content);
}

function Bubble(props: {
  sig: string;
  c: ConversationView;
  m: Message;
  prev?: Message;
  quoted?: Message;
  onReply: () => void;
  onJump: (seq: number) => void;
  onView: () => void;
  onError: (e: string) => void;
}) {
  const { c, m } = props;
  const [menu, setMenu] = useState(false);
  const [confirm, setConfirm] = useState(false);
  const [editing, setEditing] = useState<string | null>(null);
  const [picker, setPicker] = useState(false);
  const more = useRef<HTMLButtonElement>(null);
  const mine = m.sender_id === client.userId;
  if (m.content?.type === "system") {
    return (
      <div class="system-note" data-seq={m.seq} data-testid="system-note">
        {systemText(m.content)}
      </div>
    );
  }
  const group = c.conversation.kind === "group";
  const showName = group && !mine && props.prev?.sender_id !== m.sender_id;
  const deleted = !m.content;
  const del = (scope: "me" | "everyone") =>
    client.deleteMessage(c.conversation.id, m.seq, scope).catch((e) => props.onError(humanError(e)));
  const items: MenuItem[] = [{ id: "reply", label: "Reply", run: props.onReply }];
  items.push({ id: "react", label: "React", run: () => setPicker(true) });
  // The server refuses edits after its window (15 minutes by default): offer it until then.
  if (mine && m.content && Date.now() - m.created_at < EDIT_WINDOW_MS) {
    const current = m.content.type === "text" ? m.content.text : m.content.type === "media" ? m.content.caption ?? "" : null;
    if (current !== null) items.push({ id: "edit", label: m.content.type === "media" ? "Edit caption" : "Edit", run: () => setEditing(current) });
  }
  if (m.content?.type === "text") {
    const text = m.content.text;
    items.push({ id: "copy", label: "Copy", run: () => void navigator.clipboard?.writeText(text).catch(() => {}) });
  }
  if (m.content?.type === "media") items.push({ id: "download", label: "Download", href: client.blobUrl(m.content.blob_key) });
  items.push({ id: "delete-me", label: "Delete for me", run: () => void del("me") });
  if (mine) items.push({ id: "delete-everyone", label: "Delete for everyone", danger: true, run: () => setConfirm(true) });
  return (
    <div class={`row ${mine ? "mine" : "theirs"}`} data-testid="message" data-seq={m.seq} onContextMenu={(e) => {
      if (deleted) return;
      e.preventDefault();
      setMenu(true);
    }}>
      <div class={`bubble ${deleted ? "deleted" : ""} ${m.content?.type === "media" ? "media" : ""}`}>
        {showName ? (
          <div class="sender" style={{ color: colorOf(m.sender_id) }} dir="auto">
            {memberName(c, m.sender_id)}
          </div>
        ) : null}
        {m.reply_to_seq && !deleted ? (
          <button class="quote" onClick={() => props.onJump(m.reply_to_seq!)} data-testid="quote" dir="auto">
            <b style={{ color: props.quoted ? colorOf(props.quoted.sender_id) : undefined }}>
              {props.quoted ? (props.quoted.sender_id === client.userId ? "You" : memberName(c, props.quoted.sender_id)) : ""}
            </b>
            <span>{snippet(props.quoted)}</span>
          </button>
        ) : null}
        {deleted ? (
          <span class="text inline-icon" data-testid="deleted">
            <Icon name="ban" size={16} /> This message was deleted
          </span>
        ) : m.content?.type === "media" ? (
          <>
            <button class="photo-btn" onClick={props.onView} aria-label="Open photo" data-testid="open-photo">
              <img
                class="photo"
                data-testid="photo"
                src={client.blobUrl(m.content.blob_key)}
                alt={m.content.caption ?? "Photo"}
                style={m.content.width && m.content.height ? { aspectRatio: `${m.content.width} / ${m.content.height}` } : undefined}
              />
            </button>
            {m.content.caption ? <span class="text" dir="auto" data-testid="caption">{m.content.caption}</span> : null}
          </>
        ) : m.content?.type === "text" ? (
          <span class="text" data-testid="text" dir="auto">
            <MentionText c={c} text={m.content.text} mentions={m.content.mentions} />
          </span>
        ) : null}
        {editing !== null ? (
          <EditBox
            value={editing}
            onCancel={() => setEditing(null)}
            onSave={(text) => {
              setEditing(null);
              client.editMessage(c.conversation.id, m.seq, text).catch((e) => props.onError(humanError(e)));
            }}
          />
        ) : null}
        <span class="meta">
          {m.edited_at && !deleted ? (
            <span class="edited" data-testid="edited" title={`Edited ${clock(m.edited_at)}`}>
              edited
            </span>
          ) : null}
          {clock(m.created_at)}
          {mine && !deleted ? <Ticks tick={tickOf(c, m)} /> : null}
        </span>
        {!deleted ? (
          <button
            ref={more}
            class="bubble-more"
            onClick={() => setMenu(!menu)}
            title="Message menu"
            aria-label="Message menu"
            aria-haspopup="menu"
            aria-expanded={menu}
            data-testid="message-menu"
          >
            <Icon name="down" size={18} />
          </button>
        ) : null}
        {menu ? <Menu items={items} anchor={more.current} onClose={() => setMenu(false)} class={`bubble-menu ${mine ? "left" : "right"}`} /> : null}
        {picker ? (
          <div class={`reaction-picker ${mine ? "left" : "right"}`} role="menu" aria-label="Pick a reaction" data-testid="reaction-picker">
            {QUICK_REACTIONS.map((e) => (
              <button
                key={e}
                role="menuitem"
                class="pick"
                aria-label={`React ${e}`}
                data-testid="pick-reaction"
                data-emoji={e}
                onClick={() => {
                  setPicker(false);
                  toggleReaction(c, m, e, props.onError);
                }}
              >
                {e}
              </button>
            ))}
            <button class="pick close" aria-label="Close" onClick={() => setPicker(false)}>
              <Icon name="close" size={14} />
            </button>
          </div>
        ) : null}
        {confirm ? (
          <ConfirmDialog
            title="Delete for everyone?"
            text="The message will be replaced by “This message was deleted” for everyone in this chat."
            confirm="Delete for everyone"
            onCancel={() => {
              setConfirm(false);
              more.current?.focus();
            }}
            onConfirm={() => {
              setConfirm(false);
              void del("everyone");
            }}
          />
        ) : null}
        {!deleted && m.reactions?.length ? (
          <div class="reactions" data-testid="reactions">
            {m.reactions.map((r) => {
              const own = r.users.includes(client.userId ?? "");
              return (
                <button
                  key={r.emoji}
                  class={`chip ${own ? "own" : ""}`}
                  data-testid="reaction-chip"
                  data-emoji={r.emoji}
                  data-count={r.count}
                  aria-pressed={own}
                  title={r.users.map((u) => (u === client.userId ? "You" : memberName(c, u))).join(", ")}
                  onClick={() => toggleReaction(c, m, r.emoji, props.onError)}
                >
                  {r.emoji} <span class="count">{r.count}</span>
                </button>
              );
            })}
          </div>
        ) : null}
      </div>
    </div>
  );
}

/** The edit window the server applies by default (15 minutes). */
const EDIT_WINDOW_MS = 15 * 60 * 1000;
const QUICK_REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🙏"];

/** Adds the user's reaction `emoji`, or takes it back when it is there. */
function toggleReaction(c: ConversationView, m: Message, emoji: string, onError: (e: string) => void) {
  const mine = m.reactions?.some((r) => r.emoji === emoji && r.users.includes(client.userId ?? ""));
  const call = mine ? client.unreact(c.conversation.id, m.seq, emoji) : client.react(c.conversation.id, m.seq, emoji);
  call.catch((e) => onError(humanError(e)));
}

/** The inline editor of a message's text (or a photo's caption). */
function EditBox(props: { value: string; onSave: (text: string) => void; onCancel: () => void }) {
  const [text, setText] = useState(props.value);
  const ref = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    ref.current?.focus();
  }, []);
  const save = () => {
    if (text === props.value) props.onCancel();
    else props.onSave(text);
  };
  return (
    <div class="edit-box">
      <textarea
        ref={ref}
        value={text}
        dir="auto"
        rows={2}
        aria-label="Edit message"
        data-testid="edit-input"
        onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && !e.shiftKey) {
            e.preventDefault();
            save();
          } else if (e.key === "Escape") {
            props.onCancel();
          }
        }}
      />
      <div class="edit-actions">
        <button class="link" onClick={props.onCancel} data-testid="edit-cancel">Cancel</button>
        <button class="link strong" onClick={save} data-testid="edit-save">Save</button>
      </div>
    </div>
  );
}

const MemoBubble = memoBySig(Bubble);

function PendingBubble(props: { p: PendingMessage }) {
  const p = props.p;
  return (
    <div class="row mine" data-testid="message" data-pending="true">
      <div class="bubble pending">
        {p.content.type === "text" ? (
          <span class="text" dir="auto">{p.content.text}</span>
        ) : (
          <span class="text inline-icon" dir="auto">
            <Icon name="camera" size={16} /> {p.content.type === "media" ? (p.content.caption ?? "Photo") : ""}
          </span>
        )}
        <span class="meta">
          {clock(p.queued_at)}
          <Ticks tick="pending" />
        </span>
      </div>
    </div>
  );
}

function FailedBubble(props: { f: Failed }) {
  const p = props.f.pending;
  return (
    <div class="row mine" data-testid="message" data-failed="true">
      <div class="bubble failed">
        <span class="text" dir="auto">{p.content.type === "text" ? p.content.text : p.content.type === "media" ? `📷 ${p.content.caption ?? "Photo"}` : ""}</span>
        <span class="meta not-sent" data-testid="not-sent">
          <Icon name="ban" size={14} /> Not delivered
          <button
            class="link small"
            onClick={() => {
              const i = failed.indexOf(props.f);
              if (i >= 0) failed.splice(i, 1);
              invalidate();
            }}
            data-testid="dismiss-failed"
          >
            Remove
          </button>
        </span>
      </div>
    </div>
  );
}

const EMOJI = ["😀", "😂", "😊", "😍", "😘", "😉", "😎", "🤔", "😢", "😭", "😡", "👍", "👎", "👏", "🙏", "💪", "🎉", "❤️", "🔥", "✅", "👀", "🙌", "🤝", "☕"];

function Composer(props: {
  id: string;
  c: ConversationView;
  replyTo: Message | null;
  onCancelReply: () => void;
  onError: (e: string) => void;
  inputRef: { current: HTMLTextAreaElement | null };
}) {
  const id = props.id;
  const [text, setText] = useState(() => recall(`draft.${id}`) ?? "");
  // Members picked from the @-suggestions: their `@Name` in the text becomes a mention.
  const [picked, setPicked] = useState<Pick[]>([]);
  const [suggest, setSuggest] = useState<{ at: number; query: string; index: number } | null>(null);
  const group = props.c.conversation.kind === "group";
  const [emoji, setEmoji] = useState(false);
  const [staged, setStaged] = useState<{ file: File; url: string } | null>(null);
  const [caption, setCaption] = useState("");
  const [uploading, setUploading] = useState(false);
  const [drag, setDrag] = useState(false);
  const typing = useRef({ sentAt: 0, idle: 0 as number | undefined });
  const file = useRef<HTMLInputElement>(null);
  const input = props.inputRef;
  const emojiBtn = useRef<HTMLButtonElement>(null);

  function stopTyping() {
    if (typing.current.sentAt) {
      typing.current.sentAt = 0;
      client.setTyping(id, false).catch(() => {});
    }
    window.clearTimeout(typing.current.idle);
  }

  useEffect(() => stopTyping, [id]);

  // The textarea grows with its text (up to a few lines, then scrolls).
  useLayoutEffect(() => {
    const el = input.current;
    if (!el) return;
    el.style.height = "auto";
    el.style.height = `${Math.min(el.scrollHeight, 140)}px`;
  }, [text]);

  /** Opens the member suggestions while the word before the caret starts with `@`. */
  function findMention(v: string) {
    if (!group) return setSuggest(null);
    const caret = input.current?.selectionStart ?? v.length;
    const m = /(^|\s)@([^\s@]{0,32})$/.exec(v.slice(0, caret));
    setSuggest(m ? { at: caret - m[2].length - 1, query: m[2], index: 0 } : null);
  }

  const candidates: Pick[] = suggest
    ? props.c.members
        .filter((m) => m.user_id !== client.userId)
        .map((m) => ({ user_id: m.user_id, name: memberName(props.c, m.user_id), avatar_url: m.avatar_url }))
        .filter((m) => m.name !== "…" && m.name.toLowerCase().startsWith(suggest.query.toLowerCase()))
        .slice(0, 8)
    : [];

  function pick(m: Pick) {
    if (!suggest) return;
    const end = suggest.at + 1 + suggest.query.length;
    const token = `@${m.name} `;
    const v = text.slice(0, suggest.at) + token + text.slice(end);
    setPicked((p) => (p.some((x) => x.user_id === m.user_id) ? p : [...p, m]));
    setSuggest(null);
    setText(v);
    remember(`draft.${id}`, v);
    const caret = suggest.at + token.length;
    requestAnimationFrame(() => {
      input.current?.focus();
      input.current?.setSelectionRange(caret, caret);
    });
  }

  function onInput(v: string) {
    setText(v);
    findMention(v);
    remember(`draft.${id}`, v);
    if (!v) return stopTyping();
    const now = Date.now();
    if (now - typing.current.sentAt > TYPING_REFRESH_MS) {
      typing.current.sentAt = now;
      client.setTyping(id, true).catch(() => {});
    }
    window.clearTimeout(typing.current.idle);
    typing.current.idle = window.setTimeout(stopTyping, TYPING_IDLE_MS);
  }

  function send(e?: Event) {
    e?.preventDefault();
    const t = text.trim();
    if (!t) return;
    const mentions = group ? mentionsIn(t, picked) : [];
    try {
      client.send(id, mentions.length > 0 ? { type: "text", text: t, mentions } : { type: "text", text: t }, props.replyTo?.seq);
    } catch (err) {
      props.onError(humanError(err));
      return;
    }
    setText("");
    setPicked([]);
    setSuggest(null);
    remember(`draft.${id}`, null);
    props.onCancelReply();
    stopTyping();
  }

  function onKeyDown(e: KeyboardEvent) {
    if (suggest && candidates.length > 0) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const d = e.key === "ArrowDown" ? 1 : -1;
        setSuggest({ ...suggest, index: (suggest.index + d + candidates.length) % candidates.length });
        return;
      }
      if ((e.key === "Enter" && !e.shiftKey && !e.isComposing) || e.key === "Tab") {
        e.preventDefault();
        pick(candidates[Math.min(suggest.index, candidates.length - 1)]);
        return;
      }
      if (e.key === "Escape") {
        e.preventDefault();
        setSuggest(null);
        return;
      }
    }
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    } else if (e.key === "Escape") {
      // Escape closes the emoji picker first, then drops the reply.
      if (emoji) setEmoji(false);
      else if (props.replyTo) props.onCancelReply();
    }
  }

  function insert(s: string) {
    const el = input.current;
    const at = el?.selectionStart ?? text.length;
    const end = el?.selectionEnd ?? text.length;
    const v = text.slice(0, at) + s + text.slice(end);
    onInput(v);
    requestAnimationFrame(() => {
      el?.focus();
      el?.setSelectionRange(at + s.length, at + s.length);
    });
  }

  function stage(f: File | undefined | null) {
    if (!f) return;
    if (!/^image\/(png|jpeg|gif|webp)$/.test(f.type)) {
      props.onError("Only PNG, JPEG, GIF and WebP pictures can be sent.");
      return;
    }
    setStaged({ file: f, url: URL.createObjectURL(f) });
    setCaption("");
  }

  function unstage() {
    if (staged) URL.revokeObjectURL(staged.url);
    setStaged(null);
    if (file.current) file.current.value = "";
  }

  async function sendImage() {
    if (!staged) return;
    const f = staged.file;
    const cap = caption.trim() || undefined;
    unstage();
    setUploading(true);
    try {
      await queueImage(id, f, cap);
    } catch (e) {
      props.onError(`The picture was not sent. ${humanError(e)}`);
    } finally {
      setUploading(false);
    }
  }

  const waiting = imageQueue.filter((q) => q.id === id);

  return (
    <div
      class={`composer-wrap ${drag ? "drag" : ""}`}
      onDragOver={(e) => {
        if (e.dataTransfer?.types.includes("Files")) {
          e.preventDefault();
          setDrag(true);
        }
      }}
      onDragLeave={() => setDrag(false)}
      onDrop={(e) => {
        e.preventDefault();
        setDrag(false);
        stage(e.dataTransfer?.files?.[0]);
      }}
    >
      {staged ? (
        <div class="stage" role="dialog" aria-label="Send a picture" data-testid="image-preview">
          <img src={staged.url} alt="Picture to send" />
          <input
            class="caption-input"
            placeholder="Add a caption"
            value={caption}
            dir="auto"
            autoFocus
            data-testid="caption-input"
            onInput={(e) => setCaption((e.target as HTMLInputElement).value)}
            onKeyDown={(e) => {
              if (e.key === "Enter") {
                e.preventDefault();
                void sendImage();
              } else if (e.key === "Escape") unstage();
            }}
          />
          <div class="stage-actions">
            <button class="ghost" onClick={unstage} data-testid="cancel-image">Cancel</button>
            <button class="primary" onClick={() => void sendImage()} data-testid="send-image">Send</button>
          </div>
        </div>
      ) : null}
      {uploading ? (
        <div class="upload-progress" data-testid="upload-progress" role="status">
          <progress /> Sending picture…
        </div>
      ) : null}
      {waiting.map((q) => (
        <div class="upload-progress" data-testid="image-queued" role="status" key={q.key}>
          <Icon name="camera" size={16} /> Picture waits for the connection{q.caption ? `: ${q.caption}` : ""}
        </div>
      ))}
      {props.replyTo ? (
        <div class="reply-bar" data-testid="reply-bar">
          <Icon name="reply" size={18} />
          <div class="reply-body" dir="auto">
            <b>{props.replyTo.sender_id === client.userId ? "You" : memberName(props.c, props.replyTo.sender_id)}</b>
            <span>{snippet(props.replyTo)}</span>
          </div>
          <button class="icon-btn small" onClick={props.onCancelReply} aria-label="Cancel reply" data-testid="cancel-reply">
            <Icon name="close" size={18} />
          </button>
        </div>
      ) : null}
      {suggest && candidates.length > 0 ? (
        <ul class="mention-suggest" role="listbox" aria-label="Mention a member" data-testid="mention-suggestions">
          {candidates.map((m, i) => (
            <li key={m.user_id} role="option" aria-selected={i === suggest.index}>
              <button
                type="button"
                class={i === suggest.index ? "active" : ""}
                data-testid="mention-option"
                data-name={m.name}
                onMouseDown={(e) => e.preventDefault()}
                onClick={() => pick(m)}
              >
                <Avatar id={m.user_id} name={m.name} url={m.avatar_url} size={28} />
                <span dir="auto">{m.name}</span>
              </button>
            </li>
          ))}
        </ul>
      ) : null}
      <form class="composer" onSubmit={send}>
        <div class="menu-wrap">
          <button ref={emojiBtn} type="button" class="icon-btn" title="Emoji" aria-label="Emoji" aria-expanded={emoji} onClick={() => setEmoji(!emoji)} data-testid="emoji-button">
            <Icon name="smile" />
          </button>
          {emoji ? (
            <Menu
              class="emoji-pop"
              grid
              anchor={emojiBtn.current}
              items={EMOJI.map((s) => ({ id: `emoji-${s}`, label: s, run: () => insert(s) }))}
              onClose={() => setEmoji(false)}
              keepOpen
            />
          ) : null}
        </div>
        <button type="button" class="icon-btn" title="Send a picture" aria-label="Send a picture" onClick={() => file.current?.click()}>
          <Icon name="clip" />
        </button>
        <input
          ref={file}
          type="file"
          accept="image/png,image/jpeg,image/gif,image/webp"
          hidden
          data-testid="image-input"
          onChange={(e) => stage((e.target as HTMLInputElement).files?.[0])}
        />
        <textarea
          ref={input}
          class="compose-input"
          data-testid="composer"
          placeholder="Type a message"
          aria-label="Message"
          rows={1}
          dir="auto"
          value={text}
          onInput={(e) => onInput((e.target as HTMLTextAreaElement).value)}
          onKeyDown={onKeyDown}
          onPaste={(e) => {
            const f = [...(e.clipboardData?.files ?? [])].find((x) => x.type.startsWith("image/"));
            if (f) {
              e.preventDefault();
              stage(f);
            }
          }}
        />
        <button class="send" title="Send" aria-label="Send" data-testid="send" disabled={!text.trim()}>
          <Icon name="send" />
        </button>
      </form>
    </div>
  );
}

// ---- pictures sent while offline wait here (the upload needs the server) ---------------

interface QueuedImage {
  key: number;
  id: string;
  file: File;
  caption?: string;
}
const imageQueue: QueuedImage[] = [];
let queueKey = 0;
let flushing = false;

async function queueImage(id: string, file: File, caption?: string): Promise<void> {
  if (client.connectionState().state !== "connected") {
    imageQueue.push({ key: ++queueKey, id, file, caption });
    return;
  }
  await client.sendImage(id, file, caption);
}

async function flushImages(): Promise<void> {
  if (flushing) return;
  flushing = true;
  try {
    while (imageQueue.length > 0 && client.connectionState().state === "connected") {
      const q = imageQueue[0];
      try {
        await client.sendImage(q.id, q.file, q.caption);
        imageQueue.shift();
      } catch (e) {
        if ((e as { code?: string }).code === "unavailable") break;
        imageQueue.shift();
      }
    }
  } finally {
    flushing = false;
  }
}

eventHooks.add((ev) => {
  if (ev.type === "connection" && ev.state.state === "connected") void flushImages();
});

// ---- mentions -------------------------------------------------------------------------

/** The mentions of the members picked from the suggestions whose `@Name` is in `text`:
 * ranges in UTF-16 code units (JavaScript string indices), ascending, not overlapping. */
/** A member picked from the @-suggestions, by the name inserted. */
interface Pick {
  user_id: UserId;
  name: string;
  avatar_url?: string | null;
}

export function mentionsIn(text: string, picked: Pick[]): Mention[] {
  const found: Mention[] = [];
  // Longer names first, so "@Ann Lee" wins over "@Ann" at the same place.
  for (const m of [...picked].sort((a, b) => b.name.length - a.name.length)) {
    const token = `@${m.name}`;
    for (let at = text.indexOf(token); at >= 0; at = text.indexOf(token, at + token.length)) {
      const end = at + token.length;
      if (!found.some((f) => at < f.end && end > f.start)) found.push({ user_id: m.user_id, start: at, end });
    }
  }
  return found.sort((a, b) => a.start - b.start);
}

/** A text with its mentions highlighted (the member's current name is the tooltip). */
function MentionText(props: { c: ConversationView; text: string; mentions?: Mention[] }) {
  const ms = props.mentions ?? [];
  if (ms.length === 0) return <>{props.text}</>;
  const parts: preact.JSX.Element[] = [];
  let from = 0;
  ms.forEach((m, i) => {
    if (m.start > from) parts.push(<span key={`t${i}`}>{props.text.slice(from, m.start)}</span>);
    parts.push(
      <span
        key={`m${i}`}
        class={`mention ${m.user_id === client.userId ? "me" : ""}`}
        title={memberName(props.c, m.user_id)}
        data-testid="mention"
        data-user={m.user_id}
      >
        {props.text.slice(m.start, m.end)}
      </span>,
    );
    from = m.end;
  });
  if (from < props.text.length) parts.push(<span key="tail">{props.text.slice(from)}</span>);
  return <>{parts}</>;
}

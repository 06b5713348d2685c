// One open conversation: header (presence, typing), messages (ticks, images, deletions) and
// the composer (text, images, typing indicator).
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import type { ClientEvent, ConversationView, Message, PendingMessage } from "chatico-wasm";
import { client, eventHooks } from "./store";
import { Avatar, Icon, Ticks, avatarOf, clock, colorOf, lastSeen, memberName, peerOf, systemText, tickOf, titleOf } from "./ui";

const TYPING_REFRESH_MS = 3000;
const TYPING_IDLE_MS = 4000;

export function Chat(props: { c: ConversationView; onBack: () => void; onClosed: () => void }) {
  const c = props.c;
  const id = c.conversation.id;
  const me = client.userId;
  const peer = c.conversation.kind === "direct" ? peerOf(c) : undefined;
  const blocked = peer ? client.blockedIds().includes(peer) : false;
  const messages = client.messages(id);
  const pending = client.pending().filter((p) => p.conversation_id === id);
  const [menu, setMenu] = useState(false);
  const [error, setError] = useState("");
  const scroller = useRef<HTMLDivElement>(null);
  const lastSeq = messages.length ? messages[messages.length - 1].seq : 0;

  // History and the peer's profile (for "last seen") when the chat opens.
  useEffect(() => {
    client.history(id, undefined, 50).catch(() => {});
    if (peer) client.getUser(peer).catch(() => {});
  }, [id]);

  // Read receipts: everything shown while the page is visible is read.
  useEffect(() => {
    const mark = () => {
      const view = client.conversation(id);
      if (!view || document.visibilityState !== "visible") return;
      const top = view.conversation.last_seq;
      if (top > view.read_seq) client.markRead(id, top).catch(() => {});
    };
    mark();
    document.addEventListener("visibilitychange", mark);
    return () => document.removeEventListener("visibilitychange", mark);
  }, [id, lastSeq, c.read_seq, c.conversation.last_seq]);

  // A send the server refused for good (e.g. the peer blocked us) leaves the outbox: say so.
  useEffect(() => {
    const hook = (ev: ClientEvent) => {
      if (ev.type === "send_failed") setError(`Message not sent: ${ev.error.message}`);
    };
    eventHooks.add(hook);
    return () => eventHooks.delete(hook);
  }, [id]);

  useLayoutEffect(() => {
    const el = scroller.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [id, messages.length, pending.length]);

  const typing = c.typing.filter((u) => u !== me);
  const presence = peer ? client.presence(peer) : undefined;
  let status: string;
  if (typing.length > 0) {
    status = c.conversation.kind === "group" ? `${typing.map((u) => memberName(c, u)).join(", ")} typing…` : "typing…";
  } else if (peer) {
    status = blocked ? "" : presence?.online ? "online" : lastSeen(presence?.last_seen_at ?? client.profile(peer)?.last_seen_at);
  } else {
    status = c.members.map((m) => (m.user_id === me ? "You" : memberName(c, m.user_id))).join(", ");
  }

  async function act(f: () => Promise<unknown>) {
    setMenu(false);
    setError("");
    try {
      await f();
    } catch (e) {
      setError((e as Error).message);
    }
  }

  return (
    <section class="chat" data-testid="chat" data-conversation={id}>
      <header class="bar chat-bar">
        <button class="icon-btn back" onClick={props.onBack} title="Back">
          <Icon name="back" />
        </button>
        <Avatar id={id} name={titleOf(c)} url={avatarOf(c)} size={40} />
        <div class="bar-title">
          <b data-testid="chat-title">{titleOf(c)}</b>
          <span class={`status ${typing.length ? "typing-text" : ""}`} data-testid="chat-status">
            {status}
          </span>
        </div>
        <div class="menu-wrap">
          <button class="icon-btn" onClick={() => setMenu(!menu)} title="Menu" data-testid="chat-menu">
            <Icon name="more" />
          </button>
          {menu ? (
            <div class="menu" onMouseLeave={() => setMenu(false)}>
              <button data-testid="archive" onClick={() => act(() => client.setArchived(id, !c.archived))}>
                {c.archived ? "Unarchive chat" : "Archive chat"}
              </button>
              {peer ? (
                <button data-testid="block" onClick={() => act(() => (blocked ? client.unblock(peer) : client.block(peer)))}>
                  {blocked ? "Unblock" : "Block"} {memberName(c, peer)}
                </button>
              ) : (
                <button
                  data-testid="leave"
                  onClick={() =>
                    act(async () => {
                      await client.leave(id);
                      props.onClosed();
                    })
                  }
                >
                  Leave group
                </button>
              )}
            </div>
          ) : null}
        </div>
      </header>
      <div class="messages" ref={scroller} data-testid="messages">
        {messages.map((m, i) => (
          <Bubble key={m.seq} c={c} m={m} prev={messages[i - 1]} />
        ))}
        {pending.map((p) => (
          <PendingBubble key={p.client_msg_id} p={p} />
        ))}
      </div>
      {error ? (
        <div class="banner error" onClick={() => setError("")} data-testid="chat-error">
          {error}
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
        <Composer id={id} onError={setError} />
      )}
    </section>
  );
}

function Bubble(props: { c: ConversationView; m: Message; prev?: Message }) {
  const { c, m } = props;
  const [menu, setMenu] = useState(false);
  const mine = m.sender_id === client.userId;
  if (m.content?.type === "system") {
    return <div class="system-note">{systemText(m.content)}</div>;
  }
  const group = c.conversation.kind === "group";
  const showName = group && !mine && props.prev?.sender_id !== m.sender_id;
  const deleted = !m.content;
  return (
    <div class={`row ${mine ? "mine" : "theirs"}`} data-testid="message" data-seq={m.seq}>
      <div class={`bubble ${deleted ? "deleted" : ""} ${m.content?.type === "media" ? "media" : ""}`}>
        {showName ? (
          <div class="sender" style={{ color: colorOf(m.sender_id) }}>
            {memberName(c, m.sender_id)}
          </div>
        ) : null}
        {deleted ? (
          <span class="text inline-icon" data-testid="deleted">
            <Icon name="ban" size={16} /> This message was deleted
          </span>
        ) : m.content?.type === "media" ? (
          <>
            <img
              class="photo"
              data-testid="photo"
              src={client.blobUrl(m.content.blob_key)}
              alt={m.content.caption ?? "Photo"}
              style={m.content.width && m.content.height ? { aspectRatio: `${m.content.width} / ${m.content.height}` } : undefined}
            />
            {m.content.caption ? <span class="text">{m.content.caption}</span> : null}
          </>
        ) : m.content?.type === "text" ? (
          <span class="text" data-testid="text">{m.content.text}</span>
        ) : null}
        <span class="meta">
          {clock(m.created_at)}
          {mine && !deleted ? <Ticks tick={tickOf(c, m)} /> : null}
        </span>
        {!deleted ? (
          <button class="bubble-more" onClick={() => setMenu(!menu)} title="Message menu" data-testid="message-menu">
            ⌄
          </button>
        ) : null}
        {menu ? (
          <div class={`menu bubble-menu ${mine ? "left" : "right"}`} onMouseLeave={() => setMenu(false)}>
            <button
              data-testid="delete-me"
              onClick={() => {
                setMenu(false);
                client.deleteMessage(c.conversation.id, m.seq, "me").catch(() => {});
              }}
            >
              Delete for me
            </button>
            {mine ? (
              <button
                data-testid="delete-everyone"
                onClick={() => {
                  setMenu(false);
                  client.deleteMessage(c.conversation.id, m.seq, "everyone").catch(() => {});
                }}
              >
                Delete for everyone
              </button>
            ) : null}
          </div>
        ) : null}
      </div>
    </div>
  );
}

function PendingBubble(props: { p: PendingMessage }) {
  const p = props.p;
  return (
    <div class="row mine" data-testid="message" data-pending="true">
      <div class="bubble pending">
        {p.content.type === "text" ? (
          <span class="text">{p.content.text}</span>
        ) : (
          <span class="text inline-icon">
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

function Composer(props: { id: string; onError: (e: string) => void }) {
  const [text, setText] = useState("");
  const [uploading, setUploading] = useState(false);
  const typing = useRef({ sentAt: 0, idle: 0 as number | undefined });
  const file = useRef<HTMLInputElement>(null);
  const id = props.id;

  function stopTyping() {
    if (typing.current.sentAt) {
      typing.current.sentAt = 0;
      client.setTyping(id, false).catch(() => {});
    }
    window.clearTimeout(typing.current.idle);
  }

  useEffect(() => stopTyping, [id]);

  function onInput(v: string) {
    setText(v);
    if (!v) return stopTyping();
    const now = Date.now();
    if (now - typing.current.sentAt > TYPING_REFRESH_MS) {
      typing.current.sentAt = now;
      client.setTyping(id, true).catch(() => {});
    }
    window.clearTimeout(typing.current.idle);
    typing.current.idle = window.setTimeout(stopTyping, TYPING_IDLE_MS);
  }

  function send(e: Event) {
    e.preventDefault();
    const t = text.trim();
    if (!t) return;
    client.sendText(id, t);
    setText("");
    stopTyping();
  }

  async function sendImage(f: File | undefined) {
    if (!f) return;
    setUploading(true);
    try {
      await client.sendImage(id, f, undefined);
    } catch (e) {
      props.onError(`Could not send the picture: ${(e as Error).message}`);
    } finally {
      setUploading(false);
      if (file.current) file.current.value = "";
    }
  }

  return (
    <form class="composer" onSubmit={send}>
      <button type="button" class="icon-btn" title="Send a picture" onClick={() => file.current?.click()} disabled={uploading}>
        <Icon name="clip" />
      </button>
      <input
        ref={file}
        type="file"
        accept="image/png,image/jpeg,image/gif,image/webp"
        hidden
        data-testid="image-input"
        onChange={(e) => sendImage((e.target as HTMLInputElement).files?.[0])}
      />
      <input
        class="compose-input"
        data-testid="composer"
        placeholder={uploading ? "Uploading picture…" : "Type a message"}
        value={text}
        onInput={(e) => onInput((e.target as HTMLInputElement).value)}
        autoComplete="off"
      />
      <button class="send" title="Send" data-testid="send" disabled={!text.trim()}>
        <Icon name="send" />
      </button>
    </form>
  );
}

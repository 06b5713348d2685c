// The logged-in screen: the conversation list on the left, the open chat on the right (one
// at a time on a narrow screen), and side panels for the profile, people and a new group.
import { useEffect, useState } from "preact/hooks";
import type { ConversationView, User } from "chatico-wasm";
import { client, leftGroups, logout, openRequests, rememberLeft, savedOpenConversation, setOpenConversation, updateTitle } from "./store";
import { Avatar, Icon, Preview, Ticks, avatarOf, colorKeyOf, peerOf, shortDate, tickOf, titleOf } from "./ui";
import { Chat } from "./chat";
import { ContactInfo, GroupInfo, NewGroupPanel, PeoplePanel, ProfilePanel } from "./panels";
import { MessageSearch } from "./search";

type Panel = "none" | "profile" | "people" | "group";

export function Shell(props: { onLogout: () => void }) {
  const [open, setOpenState] = useState<string | null>(savedOpenConversation);
  const [info, setInfo] = useState(false);
  const [notif, setNotif] = useState(typeof Notification !== "undefined" ? Notification.permission : "denied");
  const setOpen = (id: string | null) => {
    setOpenState(id);
    setOpenConversation(id);
    setInfo(false);
  };
  const [archived, setArchived] = useState(false);
  const [panel, setPanel] = useState<Panel>("none");
  const [filter, setFilter] = useState("");
  // A search result to show once its conversation is open (n tells two clicks apart).
  const [focus, setFocus] = useState<{ conversation: string; seq: number; n: number } | null>(null);
  const [me, setMe] = useState<User | null>(null);
  const [, tick] = useState(0);

  useEffect(() => {
    client.me().then(setMe, () => {});
    setOpenConversation(open);
    const t = window.setInterval(() => tick((n) => n + 1), 1000);
    openRequests.add(setOpen);
    return () => {
      window.clearInterval(t);
      openRequests.delete(setOpen);
    };
  }, []);
  updateTitle();

  const state = client.connectionState();
  const list = client.conversations(archived).filter((c) => titleOf(c).toLowerCase().includes(filter.toLowerCase()));
  const archivedCount = archived ? 0 : client.conversations(true).length;
  const current = open ? client.conversation(open) : undefined;
  const left = archived ? [] : leftGroups().filter((g) => !client.conversation(g.id) && g.title.toLowerCase().includes(filter.toLowerCase()));
  const leftOpen = open && !current ? left.find((g) => g.id === open) : undefined;

  async function doLogout() {
    await logout().catch(() => {});
    props.onLogout();
  }

  return (
    <div class={`shell ${current || leftOpen ? "has-chat" : ""} ${info ? "has-info" : ""}`}>
      <aside class="sidebar">
        {panel === "profile" ? (
          <ProfilePanel me={me} onSaved={setMe} onClose={() => setPanel("none")} onLogout={doLogout} />
        ) : panel === "people" ? (
          <PeoplePanel
            onClose={() => setPanel("none")}
            onOpen={(id) => {
              setOpen(id);
              setArchived(false);
              setPanel("none");
            }}
          />
        ) : panel === "group" ? (
          <NewGroupPanel
            onClose={() => setPanel("none")}
            onCreated={(id) => {
              setOpen(id);
              setPanel("none");
            }}
          />
        ) : (
          <>
            <header class="bar">
              <button class="me" onClick={() => setPanel("profile")} title="Profile" aria-label="Your profile" data-testid="open-profile">
                <Avatar id={client.userId ?? "me"} name={me?.display_name ?? ""} url={me?.avatar_url} size={40} />
              </button>
              <div class="bar-title">
                <b>{archived ? "Archived" : "Chats"}</b>
                <span class={`conn ${state.state}`} data-testid="connection" data-state={state.state}>
                  {state.state === "connected"
                    ? "online"
                    : state.state === "reconnecting"
                      ? "reconnecting…"
                      : state.state === "syncing"
                        ? "syncing…"
                        : state.state === "connecting"
                          ? "connecting…"
                          : state.state.replace("_", " ")}
                </span>
              </div>
              <button class="icon-btn" onClick={() => setPanel("people")} title="People" aria-label="People" data-testid="open-people">
                <Icon name="people" />
              </button>
              <button class="icon-btn" onClick={() => setPanel("group")} title="New group" aria-label="New group" data-testid="open-new-group">
                <Icon name="group" />
              </button>
            </header>
            <div class="search">
              <Icon name="search" />
              <input
                placeholder="Search chats and messages"
                aria-label="Search chats and messages"
                data-testid="search"
                value={filter}
                onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
              />
            </div>
            {notif === "default" ? (
              <button
                class="archived-row notify-row"
                data-testid="enable-notifications"
                onClick={() => void Notification.requestPermission().then(setNotif)}
              >
                <Icon name="chat" /> Turn on desktop notifications
              </button>
            ) : null}
            {archived ? (
              <button class="archived-row" onClick={() => setArchived(false)} data-testid="show-chats">
                <Icon name="back" /> Back to chats
              </button>
            ) : archivedCount > 0 ? (
              <button class="archived-row" onClick={() => setArchived(true)} data-testid="show-archived">
                <Icon name="archive" /> Archived <span class="count">{archivedCount}</span>
              </button>
            ) : null}
            <ul class="conv-list" data-testid="conversations">
              {list.map((c) => (
                <ConversationRow key={c.conversation.id} c={c} active={c.conversation.id === open} onClick={() => setOpen(c.conversation.id)} />
              ))}
              {left.map((g) => (
                <li key={g.id} class={`conv left ${g.id === open ? "active" : ""}`} data-testid="conversation" data-title={g.title} data-left="true">
                  <button class="conv-btn" onClick={() => setOpen(g.id)}>
                    <Avatar id={g.id} name={g.title} />
                    <span class="conv-body">
                      <span class="conv-top">
                        <span class="conv-title" dir="auto">{g.title}</span>
                      </span>
                      <span class="conv-bottom">
                        <span class="conv-preview">You left this group</span>
                      </span>
                    </span>
                  </button>
                </li>
              ))}
              {archived ? null : (
                <MessageSearch
                  query={filter}
                  onOpen={(conversation, seq) => {
                    setOpen(conversation);
                    setFocus({ conversation, seq, n: Date.now() });
                  }}
                />
              )}
              {list.length === 0 && !filter.trim() ? (
                <li class="empty">
                  {archived ? "No archived chats." : (
                    <>
                      No chats yet.
                      <button class="primary small" onClick={() => setPanel("people")}>Find people</button>
                    </>
                  )}
                </li>
              ) : null}
            </ul>
          </>
        )}
      </aside>
      <main class="main">
        {current ? (
          <>
            <Chat
              key={current.conversation.id}
              c={current}
              focus={focus && focus.conversation === current.conversation.id ? focus : undefined}
              onBack={() => setOpen(null)} onClosed={() => setOpen(null)} onInfo={() => setInfo(true)} />
            {info ? (
              current.conversation.kind === "group" ? (
                <GroupInfo
                  c={current}
                  onClose={() => setInfo(false)}
                  onLeft={() => {
                    rememberLeft({ id: current.conversation.id, title: current.conversation.title ?? "Group", at: Date.now() });
                    setOpen(null);
                  }}
                />
              ) : (
                <ContactInfo c={current} onClose={() => setInfo(false)} />
              )
            ) : null}
          </>
        ) : leftOpen ? (
          <div class="welcome" data-testid="left-group">
            <Icon name="group" />
            <h2 dir="auto">{leftOpen.title}</h2>
            <p>You left this group on {new Date(leftOpen.at).toLocaleDateString()}. You no longer receive its messages.</p>
            <button
              class="ghost"
              data-testid="forget-group"
              onClick={() => {
                rememberLeft(null, leftOpen.id);
                setOpen(null);
              }}
            >
              Remove from the list
            </button>
          </div>
        ) : (
          <div class="welcome">
            <Icon name="chat" />
            <h2>ChatiCO for the web</h2>
            <p>Pick a chat on the left, or find people to start one.</p>
            <p class="muted small">Messages you send offline wait in the outbox and go out when you reconnect.</p>
          </div>
        )}
      </main>
    </div>
  );
}

function ConversationRow(props: { c: ConversationView; active: boolean; onClick: () => void }) {
  const c = props.c;
  const peer = peerOf(c);
  // Presence is only current while connected, and never shown for someone blocked.
  const online =
    c.conversation.kind === "direct" && peer && client.connectionState().state === "connected" && !client.blockedIds().includes(peer)
      ? client.presence(peer)?.online
      : false;
  const last = c.last_message;
  const mine = last && last.sender_id === client.userId && last.content;
  const typing = c.typing.filter((u) => u !== client.userId);
  return (
    <li class={`conv ${props.active ? "active" : ""}`} data-testid="conversation" data-title={titleOf(c)} data-pinned={c.pinned ? "true" : undefined}>
      <button class="conv-btn" onClick={props.onClick} aria-current={props.active ? "true" : undefined}>
      <Avatar id={colorKeyOf(c)} name={titleOf(c)} url={avatarOf(c)} online={online} />
      <span class="conv-body">
        <span class="conv-top">
          <span class="conv-title" dir="auto">{titleOf(c)}</span>
          {c.pinned ? (
            <span class="pin-mark" data-testid="pinned" aria-label="Pinned" title="Pinned">
              <Icon name="pin" size={14} />
            </span>
          ) : null}
          <span class={`conv-time ${c.unread > 0 ? "unread" : ""}`}>{last ? shortDate(last.created_at) : ""}</span>
        </span>
        <span class="conv-bottom">
          {typing.length > 0 ? (
            <span class="typing-text">typing…</span>
          ) : (
            <span class="conv-preview" dir="auto">
              {mine && last ? <Ticks tick={tickOf(c, last)} /> : null}
              <Preview m={last} />
            </span>
          )}
          {c.unread_mentions > 0 ? (
            <span class="badge mention-badge" data-testid="mention-badge" aria-label={`${c.unread_mentions} unread mentions`}>
              @
            </span>
          ) : null}
          {c.unread > 0 ? (
            <span class="badge" data-testid="unread" aria-label={`${c.unread} unread`}>
              {c.unread}
            </span>
          ) : null}
        </span>
      </span>
      </button>
    </li>
  );
}

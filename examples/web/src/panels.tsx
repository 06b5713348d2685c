// Side panels: my profile (name, bio, picture), people (browse users, contacts, block) and a
// new group.
import { useEffect, useRef, useState } from "preact/hooks";
import type { ConversationView, MemberInfo, User, UserProfile } from "chatico-wasm";
import { client } from "./store";
import { Avatar, Icon, humanError, lastSeen, memberName, peerOf } from "./ui";
import { ConfirmDialog, Menu, type MenuItem } from "./menu";

function PanelHeader(props: { title: string; onClose: () => void }) {
  return (
    <header class="bar panel-bar">
      <button class="icon-btn" onClick={props.onClose} title="Back" aria-label="Back" data-testid="panel-back">
        <Icon name="back" />
      </button>
      <b>{props.title}</b>
    </header>
  );
}

export function ProfilePanel(props: { me: User | null; onSaved: (u: User) => void; onClose: () => void; onLogout: () => void }) {
  const me = props.me;
  const [name, setName] = useState(me?.display_name ?? "");
  const [bio, setBio] = useState(me?.bio ?? "");
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState("");
  const file = useRef<HTMLInputElement>(null);

  useEffect(() => {
    setName(me?.display_name ?? "");
    setBio(me?.bio ?? "");
  }, [me?.id]);

  async function save(e: Event) {
    e.preventDefault();
    setBusy(true);
    setNote("");
    try {
      props.onSaved(await client.updateProfile({ display_name: name.trim(), bio }));
      setNote("Saved");
    } catch (err) {
      setNote(humanError(err));
    } finally {
      setBusy(false);
    }
  }

  async function upload(f: File | undefined) {
    if (!f) return;
    setBusy(true);
    setNote("");
    try {
      const meta = await client.uploadBlob(f, "avatar");
      // Store the server-relative path (no credential); Avatar turns it into an image URL.
      props.onSaved(await client.updateProfile({ avatar_url: client.blobPath(meta.key) }));
      setNote("Picture updated");
    } catch (err) {
      setNote(humanError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div class="panel" data-testid="profile-panel">
      <PanelHeader title="Profile" onClose={props.onClose} />
      <form class="panel-body profile" onSubmit={save}>
        <button type="button" class="avatar-edit" onClick={() => file.current?.click()} title="Change picture" data-testid="avatar-button">
          <Avatar id={me?.id ?? "me"} name={name} url={me?.avatar_url} size={160} />
          <span class="avatar-overlay">
            <Icon name="camera" />
            Change picture
          </span>
        </button>
        <input ref={file} type="file" accept="image/*" hidden data-testid="avatar-input" onChange={(e) => upload((e.target as HTMLInputElement).files?.[0])} />
        {me?.avatar_url ? (
          <button type="button" class="link" onClick={async () => props.onSaved(await client.updateProfile({ avatar_url: null }))}>
            Remove picture
          </button>
        ) : null}
        <label class="field">
          <span>Your name</span>
          <input data-testid="profile-name" value={name} maxLength={64} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </label>
        <label class="field">
          <span>About</span>
          <textarea data-testid="profile-bio" value={bio} rows={3} maxLength={500} onInput={(e) => setBio((e.target as HTMLTextAreaElement).value)} />
        </label>
        <label class="field">
          <span>Phone</span>
          <input value={me?.phone ?? ""} disabled />
        </label>
        <button class="primary" disabled={busy || !name.trim()} data-testid="profile-save">
          Save
        </button>
        {note ? <p class="muted" data-testid="profile-note">{note}</p> : null}
        <button type="button" class="danger-link" onClick={props.onLogout} data-testid="logout">
          <Icon name="logout" /> Log out
        </button>
      </form>
    </div>
  );
}

export function PeoplePanel(props: { onClose: () => void; onOpen: (conversationId: string) => void }) {
  const [q, setQ] = useState("");
  const [users, setUsers] = useState<UserProfile[]>([]);
  const [error, setError] = useState("");
  const contacts = client.contactIds();
  const blocked = client.blockedIds();

  useEffect(() => {
    const t = window.setTimeout(() => {
      client.listUsers(q, undefined, 100).then(
        (list) => setUsers(list.filter((u) => u.id !== client.userId)),
        (e) => setError(humanError(e)),
      );
    }, 200);
    return () => window.clearTimeout(t);
  }, [q]);

  async function act(f: () => Promise<unknown>) {
    setError("");
    try {
      await f();
    } catch (e) {
      setError(humanError(e));
    }
  }

  const sorted = [...users].sort((a, b) => Number(contacts.includes(b.id)) - Number(contacts.includes(a.id)));
  return (
    <div class="panel" data-testid="people-panel">
      <PanelHeader title="People" onClose={props.onClose} />
      <div class="search">
        <Icon name="search" />
        <input data-testid="people-search" placeholder="Search by name or phone" value={q} onInput={(e) => setQ((e.target as HTMLInputElement).value)} />
      </div>
      {error ? <p class="error pad">{error}</p> : null}
      <ul class="people">
        {sorted.map((u) => {
          const contact = contacts.includes(u.id);
          const isBlocked = blocked.includes(u.id);
          const presence = client.presence(u.id);
          const online = presence?.online ?? u.online;
          return (
            <li key={u.id} class="person" data-testid="person" data-name={u.display_name}>
              <Avatar id={u.id} name={u.display_name} url={u.avatar_url} online={online && !isBlocked} />
              <div class="person-body">
                <div class="person-name">
                  {u.display_name}
                  {contact ? <span class="tag">contact</span> : null}
                  {isBlocked ? <span class="tag danger">blocked</span> : null}
                </div>
                <div class="muted small">{isBlocked ? (u.phone ?? "") : online ? "online" : u.bio || lastSeen(presence?.last_seen_at ?? u.last_seen_at)}</div>
              </div>
              <div class="person-actions">
                <button class="primary small" disabled={isBlocked} data-testid="message-user" onClick={() => act(async () => props.onOpen((await client.openDirect(u.id)).id))}>
                  Message
                </button>
                <button class="ghost small" data-testid="toggle-contact" onClick={() => act(() => (contact ? client.removeContact(u.id) : client.addContact(u.id)))}>
                  {contact ? "Remove" : "Add"}
                </button>
                <button class="ghost small" data-testid="toggle-block" onClick={() => act(() => (isBlocked ? client.unblock(u.id) : client.block(u.id)))}>
                  {isBlocked ? "Unblock" : "Block"}
                </button>
              </div>
            </li>
          );
        })}
        {users.length === 0 ? <li class="empty">{q ? "Nobody matches." : "Nobody else here yet."}</li> : null}
      </ul>
    </div>
  );
}

export function NewGroupPanel(props: { onClose: () => void; onCreated: (id: string) => void }) {
  const [title, setTitle] = useState("");
  const [users, setUsers] = useState<UserProfile[]>([]);
  const [picked, setPicked] = useState<string[]>([]);
  const [error, setError] = useState("");

  useEffect(() => {
    client.listUsers(undefined, undefined, 200).then((l) => setUsers(l.filter((u) => u.id !== client.userId)), () => {});
  }, []);

  async function create(e: Event) {
    e.preventDefault();
    setError("");
    try {
      const c = await client.createGroup(title.trim(), picked);
      props.onCreated(c.id);
    } catch (err) {
      setError(humanError(err));
    }
  }

  return (
    <div class="panel" data-testid="group-panel">
      <PanelHeader title="New group" onClose={props.onClose} />
      <form class="panel-body" onSubmit={create}>
        <label class="field">
          <span>Group name</span>
          <input data-testid="group-title" value={title} maxLength={100} onInput={(e) => setTitle((e.target as HTMLInputElement).value)} required />
        </label>
        <p class="muted small">Members ({picked.length})</p>
        <ul class="people pick">
          {users.map((u) => (
            <li key={u.id} class="person">
              <label class="pick-row">
                <input
                  type="checkbox"
                  data-testid="pick-member"
                  data-name={u.display_name}
                  checked={picked.includes(u.id)}
                  onChange={(e) => setPicked((p) => ((e.target as HTMLInputElement).checked ? [...p, u.id] : p.filter((x) => x !== u.id)))}
                />
                <Avatar id={u.id} name={u.display_name} url={u.avatar_url} size={36} />
                <span>{u.display_name}</span>
              </label>
            </li>
          ))}
        </ul>
        {error ? <p class="error">{error}</p> : null}
        <button class="primary" disabled={!title.trim() || picked.length === 0} data-testid="create-group">
          Create group
        </button>
      </form>
    </div>
  );
}

/** Someone's profile, opened from a direct chat's header. */
export function ContactInfo(props: { c: ConversationView; onClose: () => void }) {
  const peer = peerOf(props.c);
  const [p, setP] = useState<UserProfile | undefined>(peer ? client.profile(peer) : undefined);
  useEffect(() => {
    if (peer) client.getUser(peer).then(setP, () => {});
  }, [peer]);
  if (!peer) return null;
  const name = p?.display_name ?? memberName(props.c, peer);
  return (
    <aside class="panel info-panel" data-testid="contact-info" aria-label="Contact info">
      <PanelHeader title="Contact info" onClose={props.onClose} />
      <div class="panel-body profile">
        <Avatar id={peer} name={name} url={p?.avatar_url} size={160} />
        <h2 dir="auto" data-testid="contact-name">{name}</h2>
        {p?.phone ? <p class="muted">{p.phone}</p> : null}
        {p?.bio ? <p dir="auto" data-testid="contact-bio">{p.bio}</p> : null}
        <p class="muted small">{client.blockedIds().includes(peer) ? "Blocked" : lastSeen(client.presence(peer)?.last_seen_at ?? p?.last_seen_at)}</p>
      </div>
    </aside>
  );
}

/** A group's info: picture, name, members with roles; admins add, remove and rename,
 * the owner appoints admins; anyone leaves. */
export function GroupInfo(props: { c: ConversationView; onClose: () => void; onLeft: () => void }) {
  const c = props.c;
  const id = c.conversation.id;
  const me = client.userId;
  const myRole = c.members.find((m) => m.user_id === me)?.role ?? "member";
  const admin = myRole === "admin" || myRole === "owner";
  const [title, setTitle] = useState(c.conversation.title ?? "");
  const [error, setError] = useState("");
  const [adding, setAdding] = useState(false);
  const [confirmLeave, setConfirmLeave] = useState(false);
  const file = useRef<HTMLInputElement>(null);

  async function act(f: () => Promise<unknown>) {
    setError("");
    try {
      await f();
    } catch (e) {
      setError(humanError(e));
    }
  }

  const order = { owner: 0, admin: 1, member: 2 } as const;
  const members = [...c.members].sort((a, b) => order[a.role] - order[b.role] || memberName(c, a.user_id).localeCompare(memberName(c, b.user_id)));
  return (
    <aside class="panel info-panel" data-testid="group-info" aria-label="Group info">
      <PanelHeader title="Group info" onClose={props.onClose} />
      <div class="panel-body">
        <div class="profile">
          {admin ? (
            <button type="button" class="avatar-edit" onClick={() => file.current?.click()} title="Change group picture" aria-label="Change group picture" data-testid="group-photo-button">
              <Avatar id={id} name={c.conversation.title ?? ""} url={c.conversation.avatar_url} size={120} />
              <span class="avatar-overlay">
                <Icon name="camera" />
                Change picture
              </span>
            </button>
          ) : (
            <Avatar id={id} name={c.conversation.title ?? ""} url={c.conversation.avatar_url} size={120} />
          )}
          <input
            ref={file}
            type="file"
            accept="image/*"
            hidden
            data-testid="group-photo-input"
            onChange={(e) => {
              const f = (e.target as HTMLInputElement).files?.[0];
              if (f) void act(async () => updateGroup(id, { avatar_url: client.blobPath((await client.uploadBlob(f, "avatar")).key) }));
            }}
          />
        </div>
        {admin ? (
          <form
            class="rename"
            onSubmit={(e) => {
              e.preventDefault();
              void act(() => updateGroup(id, { title: title.trim() }));
            }}
          >
            <label class="field">
              <span>Group name</span>
              <input data-testid="group-rename" dir="auto" value={title} maxLength={100} onInput={(e) => setTitle((e.target as HTMLInputElement).value)} />
            </label>
            <button class="primary small" disabled={!title.trim() || title.trim() === c.conversation.title} data-testid="group-rename-save">
              Rename
            </button>
          </form>
        ) : (
          <h2 dir="auto">{c.conversation.title}</h2>
        )}
        <p class="muted small">{c.members.length} members</p>
        {admin ? (
          <button class="ghost small" onClick={() => setAdding(!adding)} data-testid="add-members" aria-expanded={adding}>
            Add members
          </button>
        ) : null}
        {adding ? <AddMembers c={c} onDone={() => setAdding(false)} onError={setError} /> : null}
        <ul class="people" data-testid="group-members">
          {members.map((m) => (
            <MemberRow key={m.user_id} c={c} m={m} myRole={myRole} act={act} />
          ))}
        </ul>
        {error ? (
          <p class="error" role="alert" data-testid="group-error">
            {error}
          </p>
        ) : null}
        <button class="danger-link" onClick={() => setConfirmLeave(true)} data-testid="leave">
          <Icon name="logout" /> Leave group
        </button>
      </div>
      {confirmLeave ? (
        <ConfirmDialog
          title={`Leave “${c.conversation.title ?? "group"}”?`}
          text="You will stop receiving its messages. The group stays in your list as left."
          confirm="Leave group"
          onCancel={() => setConfirmLeave(false)}
          onConfirm={() => {
            setConfirmLeave(false);
            void act(async () => {
              await client.leave(id);
              props.onLeft();
            });
          }}
        />
      ) : null}
    </aside>
  );
}

function updateGroup(id: string, patch: { title?: string; avatar_url?: string | null }) {
  return client.updateGroup(id, patch);
}

function MemberRow(props: { c: ConversationView; m: MemberInfo; myRole: string; act: (f: () => Promise<unknown>) => Promise<void> }) {
  const { c, m } = props;
  const [menu, setMenu] = useState(false);
  const btn = useRef<HTMLButtonElement>(null);
  const self = m.user_id === client.userId;
  const name = self ? "You" : memberName(c, m.user_id);
  const id = c.conversation.id;
  const items: MenuItem[] = [];
  if (!self && props.myRole === "owner" && m.role !== "owner") {
    items.push(
      m.role === "admin"
        ? { id: "dismiss-admin", label: "Dismiss as admin", run: () => void props.act(() => client.setRole(id, m.user_id, "member")) }
        : { id: "make-admin", label: "Make group admin", run: () => void props.act(() => client.setRole(id, m.user_id, "admin")) },
    );
  }
  const canRemove = props.myRole === "owner" ? m.role !== "owner" : props.myRole === "admin" && m.role === "member";
  if (!self && canRemove) {
    items.push({ id: "remove-member", label: `Remove ${name}`, danger: true, run: () => void props.act(() => client.removeMember(id, m.user_id)) });
  }
  return (
    <li class="person" data-testid="group-member" data-name={name} data-role={m.role}>
      <Avatar id={m.user_id} name={memberName(c, m.user_id)} url={client.profile(m.user_id)?.avatar_url ?? m.avatar_url} size={36} />
      <div class="person-body">
        <div class="person-name" dir="auto">
          {name}
          {m.role !== "member" ? <span class="tag" data-testid="role-tag">{m.role === "owner" ? "owner" : "admin"}</span> : null}
        </div>
      </div>
      {items.length > 0 ? (
        <div class="menu-wrap">
          <button ref={btn} class="icon-btn" onClick={() => setMenu(!menu)} aria-label={`Options for ${name}`} aria-haspopup="menu" aria-expanded={menu} data-testid="member-menu">
            <Icon name="more" />
          </button>
          {menu ? <Menu items={items} anchor={btn.current} onClose={() => setMenu(false)} /> : null}
        </div>
      ) : null}
    </li>
  );
}

function AddMembers(props: { c: ConversationView; onDone: () => void; onError: (e: string) => void }) {
  const [users, setUsers] = useState<UserProfile[]>([]);
  const [picked, setPicked] = useState<string[]>([]);
  useEffect(() => {
    const inGroup = new Set(props.c.members.map((m) => m.user_id));
    client.listUsers(undefined, undefined, 200).then((l) => setUsers(l.filter((u) => !inGroup.has(u.id))), (e) => props.onError(humanError(e)));
  }, []);
  return (
    <div class="add-members" data-testid="add-members-panel">
      <ul class="people pick">
        {users.map((u) => (
          <li key={u.id} class="person">
            <label class="pick-row">
              <input
                type="checkbox"
                data-testid="add-pick"
                data-name={u.display_name}
                checked={picked.includes(u.id)}
                onChange={(e) => setPicked((p) => ((e.target as HTMLInputElement).checked ? [...p, u.id] : p.filter((x) => x !== u.id)))}
              />
              <Avatar id={u.id} name={u.display_name} url={u.avatar_url} size={32} />
              <span dir="auto">{u.display_name}</span>
            </label>
          </li>
        ))}
        {users.length === 0 ? <li class="empty">Everyone is already here.</li> : null}
      </ul>
      <button
        class="primary small"
        disabled={picked.length === 0}
        data-testid="add-confirm"
        onClick={async () => {
          try {
            await client.addMembers(props.c.conversation.id, picked);
            props.onDone();
          } catch (e) {
            props.onError(humanError(e));
          }
        }}
      >
        Add {picked.length || ""}
      </button>
    </div>
  );
}

// Side panels: my profile (name, bio, picture), people (browse users, contacts, block) and a
// new group.
import { useEffect, useRef, useState } from "preact/hooks";
import type { User, UserProfile } from "chatico-wasm";
import { client } from "./store";
import { Avatar, Icon, lastSeen } from "./ui";

function PanelHeader(props: { title: string; onClose: () => void }) {
  return (
    <header class="bar panel-bar">
      <button class="icon-btn" onClick={props.onClose} title="Back" data-testid="panel-back">
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
      setNote((err as Error).message);
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
      setNote((err as Error).message);
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
        (e) => setError((e as Error).message),
      );
    }, 200);
    return () => window.clearTimeout(t);
  }, [q]);

  async function act(f: () => Promise<unknown>) {
    setError("");
    try {
      await f();
    } catch (e) {
      setError((e as Error).message);
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
      setError((err as Error).message);
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

// Message search in the sidebar: what the user types in the search box also searches the
// messages they can read (GET /v1/search through the SDK), a moment after they stop typing.
// A result opens its conversation at that message.
import { useEffect, useState } from "preact/hooks";
import type { Message, SearchResults } from "chatico-wasm";
import { client } from "./store";
import { Icon, humanError, shortDate, titleOf } from "./ui";

const DEBOUNCE_MS = 250;
const PAGE = 20;
/** How much text around the first match a result shows. */
const SNIPPET = 90;

/** The words of a query, as the server splits them: runs of letters and digits. */
export function wordsOf(q: string): string[] {
  return (q.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).slice(0, 8);
}

function textOf(m: Message): string {
  if (!m.content) return "";
  if (m.content.type === "text") return m.content.text;
  if (m.content.type === "media") return m.content.caption ?? "";
  return "";
}

/** The text around the first matching word, with every matching word marked. */
function Highlighted(props: { text: string; words: string[] }) {
  const words = new Set(props.words);
  let text = props.text.replace(/\s+/g, " ");
  const parts = text.split(/([\p{L}\p{N}]+)/u);
  const firstHit = parts.findIndex((p) => words.has(p.toLowerCase()));
  if (text.length > SNIPPET && firstHit > 0) {
    const offset = parts.slice(0, firstHit).join("").length;
    if (offset > SNIPPET / 3) text = "…" + text.slice(offset - 20);
  }
  if (text.length > SNIPPET) text = text.slice(0, SNIPPET) + "…";
  return (
    <bdi>
      {text.split(/([\p{L}\p{N}]+)/u).map((p, i) => (words.has(p.toLowerCase()) ? <mark key={i}>{p}</mark> : p))}
    </bdi>
  );
}

export function MessageSearch(props: { query: string; onOpen: (conversationId: string, seq: number) => void }) {
  const words = wordsOf(props.query);
  const key = words.join(" ");
  const [results, setResults] = useState<Message[]>([]);
  const [cursor, setCursor] = useState<string | undefined>(undefined);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState("");

  useEffect(() => {
    setResults([]);
    setCursor(undefined);
    setError("");
    setDone("");
    if (!key) return;
    let gone = false;
    const t = window.setTimeout(() => {
      setBusy(true);
      client
        .search(key, undefined, undefined, PAGE)
        .then(
          (r: SearchResults) => {
            if (gone) return;
            setResults(r.messages);
            setCursor(r.next_cursor);
            setDone(key);
          },
          (e: unknown) => !gone && setError(humanError(e)),
        )
        .finally(() => !gone && setBusy(false));
    }, DEBOUNCE_MS);
    return () => {
      gone = true;
      window.clearTimeout(t);
    };
  }, [key]);

  async function more() {
    if (!cursor) return;
    setBusy(true);
    try {
      const r = await client.search(key, undefined, cursor, PAGE);
      setResults((old) => [...old, ...r.messages]);
      setCursor(r.next_cursor);
    } catch (e) {
      setError(humanError(e));
    } finally {
      setBusy(false);
    }
  }

  if (!key) return null;
  return (
    <>
      <li class="list-heading" data-testid="search-heading">
        <Icon name="search" size={15} /> Messages
        {busy ? <span class="muted small"> searching…</span> : null}
      </li>
      {error ? (
        <li class="empty small" data-testid="search-error">{error}</li>
      ) : done === key && results.length === 0 ? (
        <li class="empty small" data-testid="search-empty">No messages found.</li>
      ) : null}
      {results.map((m) => {
        const c = client.conversation(m.conversation_id);
        const title = c ? titleOf(c) : "Chat";
        return (
          <li key={`${m.conversation_id}/${m.seq}`} class="conv search-result" data-testid="search-result" data-seq={m.seq} data-conversation={m.conversation_id}>
            <button class="conv-btn" onClick={() => props.onOpen(m.conversation_id, m.seq)}>
              <span class="conv-body">
                <span class="conv-top">
                  <span class="conv-title" dir="auto">{title}</span>
                  <span class="conv-time">{shortDate(m.created_at)}</span>
                </span>
                <span class="conv-bottom">
                  <span class="conv-preview" dir="auto">
                    <Highlighted text={textOf(m)} words={words} />
                  </span>
                </span>
              </span>
            </button>
          </li>
        );
      })}
      {cursor ? (
        <li class="list-more">
          <button class="ghost small" data-testid="search-more" disabled={busy} onClick={() => void more()}>
            More results
          </button>
        </li>
      ) : null}
    </>
  );
}

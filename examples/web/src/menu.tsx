// Pop-up menus and dialogs that work with a keyboard, a mouse and a finger: a menu opens
// where it fits on screen (above its button near the bottom), takes the focus, moves with
// the arrow keys, and closes on Escape (focus back to its button), Tab, an outside click or
// a choice. Dialogs trap the focus and close on Escape.
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import type { ComponentChildren } from "preact";
import type { Message } from "chatico-wasm";
import { client } from "./store";
import { Icon } from "./ui";

export interface MenuItem {
  id: string;
  label: string;
  run?: () => void;
  href?: string;
  danger?: boolean;
}

export function Menu(props: {
  items: MenuItem[];
  anchor: HTMLElement | null;
  onClose: () => void;
  class?: string;
  grid?: boolean;
  keepOpen?: boolean;
}) {
  const ref = useRef<HTMLDivElement>(null);
  const [pos, setPos] = useState<{ top: number; left: number } | null>(null);

  useLayoutEffect(() => {
    const el = ref.current;
    const a = props.anchor;
    if (!el || !a) return;
    const r = a.getBoundingClientRect();
    const w = el.offsetWidth;
    const h = el.offsetHeight;
    const vw = window.innerWidth;
    const vh = window.innerHeight;
    const below = r.bottom + 4 + h <= vh - 8;
    const top = below ? r.bottom + 4 : Math.max(8, r.top - h - 4);
    // Right-aligned to the button when that fits, else left-aligned; always inside.
    let left = r.right - w;
    if (left < 8) left = r.left;
    left = Math.min(Math.max(8, left), vw - w - 8);
    setPos({ top, left });
  }, []);

  // The first item takes the focus once the menu is placed (a hidden one cannot), before
  // the menu is painted: it never shows unfocused.
  useLayoutEffect(() => {
    if (pos) ref.current?.querySelector<HTMLElement>("[role=menuitem]")?.focus();
  }, [pos !== null]);

  useEffect(() => {
    const onDown = (e: PointerEvent) => {
      const t = e.target as Node;
      if (ref.current?.contains(t) || props.anchor?.contains(t)) return;
      props.onClose();
    };
    document.addEventListener("pointerdown", onDown, true);
    return () => document.removeEventListener("pointerdown", onDown, true);
  }, []);

  function close(refocus: boolean) {
    props.onClose();
    if (refocus) props.anchor?.focus();
  }

  function onKeyDown(e: KeyboardEvent) {
    const items = [...(ref.current?.querySelectorAll<HTMLElement>("[role=menuitem]") ?? [])];
    const i = items.indexOf(document.activeElement as HTMLElement);
    const step = props.grid ? { ArrowRight: 1, ArrowLeft: -1, ArrowDown: 6, ArrowUp: -6 } : { ArrowDown: 1, ArrowUp: -1 };
    const d = (step as Record<string, number>)[e.key];
    if (d !== undefined) {
      e.preventDefault();
      items[(i + d + items.length) % items.length]?.focus();
    } else if (e.key === "Home" || e.key === "End") {
      e.preventDefault();
      items[e.key === "Home" ? 0 : items.length - 1]?.focus();
    } else if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      close(true);
    } else if (e.key === "Tab") {
      close(false);
    }
  }

  return (
    <div
      ref={ref}
      role="menu"
      class={`menu ${props.grid ? "grid" : ""} ${props.class ?? ""}`}
      style={pos ? { position: "fixed", top: `${pos.top}px`, left: `${pos.left}px`, right: "auto", bottom: "auto" } : { position: "fixed", visibility: "hidden", top: "0", left: "0", right: "auto", bottom: "auto" }}
      onKeyDown={onKeyDown}
      data-testid="menu"
    >
      {props.items.map((it) =>
        it.href ? (
          <a key={it.id} role="menuitem" tabIndex={-1} href={it.href} download target="_blank" rel="noopener" data-testid={it.id} onClick={() => close(false)}>
            {it.label}
          </a>
        ) : (
          <button
            key={it.id}
            type="button"
            role="menuitem"
            tabIndex={-1}
            class={it.danger ? "danger" : ""}
            data-testid={it.id}
            onClick={() => {
              if (!props.keepOpen) close(false);
              it.run?.();
            }}
          >
            {it.label}
          </button>
        ),
      )}
    </div>
  );
}

/** A modal dialog: focus moves in and stays in; Escape or the backdrop cancels; the focus
 * goes back where it was. */
export function Dialog(props: { label: string; onClose: () => void; children: ComponentChildren; class?: string; testid?: string }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    const el = ref.current;
    (el?.querySelector<HTMLElement>("[data-autofocus]") ?? el?.querySelector<HTMLElement>("button, input, a, textarea"))?.focus();
    return () => before?.focus?.();
  }, []);
  function onKeyDown(e: KeyboardEvent) {
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      props.onClose();
    } else if (e.key === "Tab") {
      const f = [...(ref.current?.querySelectorAll<HTMLElement>("button:not([disabled]), input, a[href], textarea") ?? [])];
      if (f.length === 0) return;
      const i = f.indexOf(document.activeElement as HTMLElement);
      const next = e.shiftKey ? (i <= 0 ? f.length - 1 : i - 1) : i === f.length - 1 ? 0 : i + 1;
      e.preventDefault();
      f[next].focus();
    }
  }
  return (
    <div class="backdrop" onClick={(e) => e.target === e.currentTarget && props.onClose()}>
      <div ref={ref} class={`dialog ${props.class ?? ""}`} role="dialog" aria-modal="true" aria-label={props.label} onKeyDown={onKeyDown} data-testid={props.testid ?? "dialog"}>
        {props.children}
      </div>
    </div>
  );
}

export function ConfirmDialog(props: { title: string; text: string; confirm: string; onCancel: () => void; onConfirm: () => void }) {
  return (
    <Dialog label={props.title} onClose={props.onCancel} testid="confirm-dialog">
      <h3>{props.title}</h3>
      <p class="muted">{props.text}</p>
      <div class="dialog-actions">
        <button class="ghost" onClick={props.onCancel} data-autofocus data-testid="confirm-cancel">
          Cancel
        </button>
        <button class="primary danger-bg" onClick={props.onConfirm} data-testid="confirm-ok">
          {props.confirm}
        </button>
      </div>
    </Dialog>
  );
}

/** A photo full size, with its caption and a download link. */
export function PhotoViewer(props: { m: Message; onClose: () => void }) {
  const c = props.m.content;
  if (c?.type !== "media") return null;
  const url = client.blobUrl(c.blob_key);
  return (
    <Dialog label="Photo" onClose={props.onClose} class="viewer" testid="photo-viewer">
      <div class="viewer-bar">
        <a class="icon-btn" href={url} download={`photo-${props.m.seq}`} target="_blank" rel="noopener" aria-label="Download" title="Download" data-testid="viewer-download">
          <Icon name="down" />
        </a>
        <button class="icon-btn" onClick={props.onClose} aria-label="Close" title="Close" data-autofocus data-testid="viewer-close">
          <Icon name="close" />
        </button>
      </div>
      <img src={url} alt={c.caption ?? "Photo"} data-testid="viewer-img" />
      {c.caption ? <p dir="auto">{c.caption}</p> : null}
    </Dialog>
  );
}

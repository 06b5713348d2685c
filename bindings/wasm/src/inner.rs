//! The state every part of the client shares (one JS thread: `Rc` + `RefCell`, and no borrow
//! is ever held across an `await` or a call into JavaScript).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use chatico_core::client::{LocalView, Outbox, SyncState, ViewUpdate};
use chatico_core::error::{Error, Result};
use chatico_core::protocol::{AckResult, ClientRequest};
use futures::channel::{mpsc, oneshot};
use futures::future::{Either, select};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;

use crate::connection::Input;
use crate::js;
use crate::rest;
use crate::types::{ClientEvent, ClientOptions, ConnectionState, Session};

/// What the client keeps between connections (`exportState` / `importState`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Durable {
    pub sync: SyncState,
    pub outbox: Outbox,
    /// Whether a subscription ever succeeded: the first one starts "from now" and loads the
    /// conversation list over REST; every later one resumes from the cursor.
    pub subscribed_before: bool,
}

pub(crate) struct State {
    pub durable: Durable,
    pub view: Option<LocalView>,
}

pub(crate) struct Inner {
    pub base_url: String,
    pub options: ClientOptions,
    pub session: RefCell<Option<Session>>,
    /// One refresh at a time (refresh tokens are single use; reuse revokes the session).
    pub refresh_lock: futures::lock::Mutex<()>,
    pub state: RefCell<State>,
    listeners: RefCell<Vec<(u32, js_sys::Function)>>,
    next_listener: Cell<u32>,
    pub conn: RefCell<ConnectionState>,
    /// The running driver's id and input queue.
    pub driver: RefCell<Option<(u64, mpsc::UnboundedSender<Input>)>>,
    pub next_driver: Cell<u64>,
    /// True while a connection is subscribed (requests may go over the WebSocket).
    pub link_up: Cell<bool>,
    reloading: Cell<bool>,
    reload_again: Cell<bool>,
    /// Whether this client has loaded the conversation list since its view was created (a
    /// view restored with `importState` resumes changes but starts empty).
    pub view_loaded: Cell<bool>,
    frame_ids: Cell<u64>,
    /// A refresh started by `blobUrl` (image URLs carry the token) is running.
    pub refreshing_for_images: Cell<bool>,
}

impl Inner {
    pub(crate) fn new(base_url: String, options: ClientOptions) -> Self {
        Inner {
            base_url,
            options,
            session: RefCell::new(None),
            refresh_lock: futures::lock::Mutex::new(()),
            state: RefCell::new(State {
                durable: Durable::default(),
                view: None,
            }),
            listeners: RefCell::new(Vec::new()),
            next_listener: Cell::new(1),
            conn: RefCell::new(ConnectionState::Disconnected),
            driver: RefCell::new(None),
            next_driver: Cell::new(1),
            link_up: Cell::new(false),
            reloading: Cell::new(false),
            reload_again: Cell::new(false),
            view_loaded: Cell::new(false),
            frame_ids: Cell::new(1),
            refreshing_for_images: Cell::new(false),
        }
    }

    pub(crate) fn add_listener(&self, f: js_sys::Function) -> u32 {
        let id = self.next_listener.get();
        self.next_listener.set(id.wrapping_add(1));
        self.listeners.borrow_mut().push((id, f));
        id
    }

    pub(crate) fn remove_listener(&self, id: u32) -> bool {
        let mut l = self.listeners.borrow_mut();
        let before = l.len();
        l.retain(|(i, _)| *i != id);
        l.len() != before
    }

    /// Hands an event to every listener. A listener that throws is reported and skipped.
    pub(crate) fn emit(&self, ev: ClientEvent) {
        let listeners: Vec<js_sys::Function> = self.listeners.borrow().iter().map(|(_, f)| f.clone()).collect();
        if listeners.is_empty() {
            return;
        }
        let Ok(value) = js::to_js(&ev) else { return };
        for f in listeners {
            if f.call1(&JsValue::NULL, &value).is_err() {
                tracing::warn!("an event listener threw");
            }
        }
    }

    pub(crate) fn emit_updates(&self, updates: Vec<ViewUpdate>) {
        for update in updates {
            self.emit(ClientEvent::View { update });
        }
    }

    pub(crate) fn set_state(&self, s: ConnectionState) {
        {
            let mut cur = self.conn.borrow_mut();
            if *cur == s {
                return;
            }
            *cur = s.clone();
        }
        self.emit(ClientEvent::Connection { state: s });
    }

    pub(crate) fn next_frame_id(&self) -> String {
        let id = self.frame_ids.get();
        self.frame_ids.set(id + 1);
        id.to_string()
    }

    /// Sends to the running driver, if any.
    pub(crate) fn to_driver(&self, input: Input) -> bool {
        match self.driver.borrow().as_ref() {
            Some((_, tx)) => tx.unbounded_send(input).is_ok(),
            None => false,
        }
    }

    /// Sends a request on the live connection and waits for its answer.
    pub(crate) async fn ws_request(&self, request: ClientRequest) -> Result<AckResult> {
        if !self.link_up.get() {
            return Err(Error::unavailable("not connected"));
        }
        let (reply, rx) = oneshot::channel();
        if !self.to_driver(Input::Request { request, reply }) {
            return Err(Error::unavailable("not connected"));
        }
        let timeout = Box::pin(js::sleep(self.options.request_timeout_ms));
        match select(rx, timeout).await {
            Either::Left((Ok(r), _)) => r,
            Either::Left((Err(_), _)) => Err(Error::unavailable("connection closed before the answer")),
            Either::Right(_) => Err(Error::unavailable("request timed out")),
        }
    }

    pub(crate) fn with_view<R>(&self, f: impl FnOnce(&mut LocalView) -> R) -> Option<R> {
        self.state.borrow_mut().view.as_mut().map(f)
    }

    /// Reloads conversations, contacts and blocks into the view (after the first
    /// subscription, and whenever a change names a conversation or member the view cannot
    /// draw yet). One at a time; a request during a reload runs once more after it.
    pub(crate) fn spawn_reload(self: &Rc<Self>) {
        if self.reloading.replace(true) {
            self.reload_again.set(true);
            return;
        }
        let inner = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            loop {
                inner.reload_again.set(false);
                if let Err(e) = inner.reload().await {
                    tracing::warn!(error = %e, "reloading the conversation list failed");
                }
                if !inner.reload_again.get() {
                    break;
                }
            }
            inner.reloading.set(false);
        });
    }

    async fn reload(self: &Rc<Self>) -> Result<()> {
        let mut summaries = rest::list_conversations(self, false).await?;
        summaries.extend(rest::list_conversations(self, true).await?);
        let contacts = rest::list_contacts(self).await?;
        let blocked = rest::list_blocked(self).await?;
        self.view_loaded.set(true);
        let updates = self
            .with_view(|v| {
                let mut u = v.load_summaries(summaries);
                u.extend(v.load_contacts(
                    contacts.iter().map(|p| p.id).collect(),
                    blocked.iter().map(|p| p.id).collect(),
                ));
                for p in contacts.into_iter().chain(blocked) {
                    u.push(v.load_profile(p));
                }
                u
            })
            .unwrap_or_default();
        self.emit_updates(updates);
        Ok(())
    }
}

//! The state every part of the client shares (one JS thread: `Rc` + `RefCell`, and no borrow
//! is ever held across an `await` or a call into JavaScript).
//!
//! Every connection decision is [`ClientMachine`]'s; this module performs what it asks for:
//! events go to the JavaScript listeners, socket work to the driver ([`crate::connection`]),
//! REST calls to `fetch`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use chatico_core::client::{
    ClientEvent, ClientMachine, ConnId, ConnectionState, DurableState, LocalView, MachineConfig, Output, RequestId,
    RestCall, RestResult, Session, ViewUpdate,
};
use chatico_core::error::{Error, Result};
use chatico_core::protocol::{AckResult, ClientRequest};
use chatico_core::retry::RetryPolicy;
use futures::channel::{mpsc, oneshot};
use wasm_bindgen::JsValue;

use crate::connection::Input;
use crate::js;
use crate::rest;
use crate::socket::Socket;
use crate::types::{ClientOptions, event_to_js};

pub(crate) struct Inner {
    pub base_url: String,
    pub options: ClientOptions,
    pub session: RefCell<Option<Session>>,
    /// One refresh at a time (refresh tokens are single use; reuse revokes the session).
    pub refresh_lock: futures::lock::Mutex<()>,
    /// The connection state machine of the logged-in user (None before login).
    pub machine: RefCell<Option<ClientMachine>>,
    /// A durable state imported or a message queued before login, for the next login.
    pub staged: RefCell<Option<DurableState>>,
    listeners: RefCell<Vec<(u32, js_sys::Function)>>,
    next_listener: Cell<u32>,
    pub conn: RefCell<ConnectionState>,
    /// The running driver's input queue.
    pub driver: RefCell<Option<mpsc::UnboundedSender<Input>>>,
    /// The open (or opening) socket and the token to authenticate it with.
    pub socket: RefCell<Option<(ConnId, Socket, String)>>,
    answers: RefCell<HashMap<RequestId, oneshot::Sender<Result<AckResult>>>>,
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
            machine: RefCell::new(None),
            staged: RefCell::new(None),
            listeners: RefCell::new(Vec::new()),
            next_listener: Cell::new(1),
            conn: RefCell::new(ConnectionState::Disconnected),
            driver: RefCell::new(None),
            socket: RefCell::new(None),
            answers: RefCell::new(HashMap::new()),
            refreshing_for_images: Cell::new(false),
        }
    }

    /// The machine's settings from the JavaScript options.
    pub(crate) fn machine_config(&self) -> MachineConfig {
        let o = &self.options;
        let ms = |v: u64| i64::try_from(v).unwrap_or(i64::MAX).max(1);
        MachineConfig {
            reconnect: RetryPolicy {
                max_attempts: u32::MAX,
                initial_backoff: std::time::Duration::from_millis(o.backoff_initial_ms.max(1)),
                max_backoff: std::time::Duration::from_millis(o.backoff_max_ms.max(1)),
            },
            max_inflight_sends: o.max_inflight_sends,
            auto_delivered: o.auto_delivered,
            receipt_delay_ms: ms(o.tick_ms),
            request_timeout_ms: ms(o.request_timeout_ms),
            // The page never sees the server's WebSocket pings.
            app_ping: true,
            ..MachineConfig::default()
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
        if let ClientEvent::Connection(s) = &ev {
            *self.conn.borrow_mut() = s.clone();
        }
        let listeners: Vec<js_sys::Function> = self.listeners.borrow().iter().map(|(_, f)| f.clone()).collect();
        if listeners.is_empty() {
            return;
        }
        let Ok(value) = event_to_js(&ev) else { return };
        for f in listeners {
            if f.call1(&JsValue::NULL, &value).is_err() {
                tracing::warn!("an event listener threw");
            }
        }
    }

    pub(crate) fn emit_updates(&self, updates: Vec<ViewUpdate>) {
        for update in updates {
            self.emit(ClientEvent::View(update));
        }
    }

    /// Runs `f` on the machine (None before login), then performs what it asks for, with no
    /// borrow held (listeners may call back into the client).
    pub(crate) fn with_machine<R>(self: &Rc<Self>, f: impl FnOnce(&mut ClientMachine) -> R) -> Option<R> {
        let (r, outputs) = {
            let mut guard = self.machine.borrow_mut();
            let m = guard.as_mut()?;
            let r = f(m);
            (r, std::iter::from_fn(|| m.poll()).collect::<Vec<_>>())
        };
        for o in outputs {
            self.perform(o);
        }
        // The machine's next deadline may have moved.
        self.to_driver(Input::Wake);
        Some(r)
    }

    /// Reads the machine (None before login).
    pub(crate) fn read<R>(&self, f: impl FnOnce(&ClientMachine) -> R) -> Option<R> {
        self.machine.borrow().as_ref().map(f)
    }

    fn perform(self: &Rc<Self>, o: Output) {
        match o {
            Output::Event(ev) => self.emit(ev),
            Output::Answer { request, result } => {
                if let Some(tx) = self.answers.borrow_mut().remove(&request) {
                    let _ = tx.send(result);
                }
            }
            Output::Open { conn, refresh } => {
                let inner = self.clone();
                wasm_bindgen_futures::spawn_local(async move { inner.open(conn, refresh).await });
            }
            Output::Write { conn, frame } => {
                let failed = match self.socket.borrow().as_ref() {
                    Some((c, s, _)) if *c == conn => match serde_json::to_string(&frame) {
                        Ok(text) => s.send(&text).err(),
                        Err(e) => Some(e.to_string()),
                    },
                    _ => None,
                };
                if let Some(reason) = failed {
                    self.with_machine(|m| m.closed(js::now_ms(), conn, reason, false));
                }
            }
            Output::Close { conn, code, reason } => {
                let s = self.socket.borrow_mut().take_if(|(c, ..)| *c == conn);
                if let Some((_, s, _)) = s {
                    s.close(code, &reason);
                }
            }
            Output::Rest(call) => {
                let inner = self.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let result = inner.rest(call).await.unwrap_or_else(RestResult::Failed);
                    inner.with_machine(|m| m.rest_done(result));
                });
            }
        }
    }

    /// Gets a token and opens socket `conn`; its events reach the driver's queue.
    async fn open(self: &Rc<Self>, conn: ConnId, refresh: bool) {
        let token = if refresh {
            let stale = self
                .session
                .borrow()
                .as_ref()
                .map(|s| s.access_token.clone())
                .unwrap_or_default();
            rest::refresh_after(self, &stale).await
        } else {
            rest::access_token(self).await
        };
        let now = js::now_ms();
        let token = match token {
            Ok(t) => t,
            Err(Error::Unauthorized { .. }) => {
                self.with_machine(|m| m.logged_out(now));
                return;
            }
            Err(e) => {
                self.with_machine(|m| m.closed(now, conn, format!("token: {e}"), false));
                return;
            }
        };
        let Some(tx) = self.driver.borrow().clone() else { return };
        let url = match crate::types::ws_url(&self.base_url) {
            Ok(u) => u,
            Err(e) => {
                self.with_machine(|m| m.closed(now, conn, e.to_string(), false));
                return;
            }
        };
        match Socket::open(&url, chatico_core::protocol::SUBPROTOCOL_JSON, conn, &tx) {
            Ok(s) => *self.socket.borrow_mut() = Some((conn, s, token)),
            Err(e) => {
                self.with_machine(|m| m.closed(now, conn, e.to_string(), false));
            }
        }
    }

    /// Performs a REST call the machine asked for.
    async fn rest(self: &Rc<Self>, call: RestCall) -> Result<RestResult> {
        Ok(match call {
            RestCall::Reload => {
                let mut summaries = rest::list_conversations(self, false).await?;
                summaries.extend(rest::list_conversations(self, true).await?);
                RestResult::Reload {
                    summaries,
                    contacts: rest::list_contacts(self).await?,
                    blocked: rest::list_blocked(self).await?,
                }
            }
            RestCall::Presence(users) => {
                let mut all = Vec::new();
                for chunk in users.chunks(100) {
                    all.extend(rest::presence(self, chunk).await?);
                }
                RestResult::Presence(all)
            }
        })
    }

    /// Sends to the running driver, if any.
    pub(crate) fn to_driver(&self, input: Input) -> bool {
        match self.driver.borrow().as_ref() {
            Some(tx) => tx.unbounded_send(input).is_ok(),
            None => false,
        }
    }

    /// Sends a request on the live connection and waits for its answer (the machine times
    /// it out).
    pub(crate) async fn ws_request(self: &Rc<Self>, request: ClientRequest) -> Result<AckResult> {
        let (reply, rx) = oneshot::channel();
        let answers = &self.answers;
        let id = self
            .with_machine(|m| {
                let id = m.request(js::now_ms(), request)?;
                answers.borrow_mut().insert(id, reply);
                Ok::<_, Error>(id)
            })
            .ok_or_else(|| Error::unauthorized("not logged in"))??;
        let r = rx.await;
        self.answers.borrow_mut().remove(&id);
        r.unwrap_or_else(|_| Err(Error::unavailable("connection closed before the answer")))
    }

    /// Changes the local view (None before login); the caller reports what changed.
    pub(crate) fn with_view<R>(self: &Rc<Self>, f: impl FnOnce(&mut LocalView) -> R) -> Option<R> {
        self.with_machine(|m| f(m.view_mut()))
    }
}

//! The browser's `WebSocket`, its callbacks turned into [`Input`]s of the driver's queue.

use chatico_core::Error;
use futures::channel::mpsc::UnboundedSender;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::connection::Input;

/// What the socket reports.
#[derive(Debug)]
pub(crate) enum SocketEvent {
    Open,
    Text(String),
    Closed { code: u16, reason: String },
}

/// One WebSocket; closed (and its callbacks detached) when dropped.
pub(crate) struct Socket {
    ws: web_sys::WebSocket,
    _on_open: Closure<dyn FnMut(web_sys::Event)>,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_close: Closure<dyn FnMut(web_sys::CloseEvent)>,
}

impl Socket {
    /// Opens `url` offering `protocol`; every event goes to `tx` tagged with `conn`.
    pub(crate) fn open(url: &str, protocol: &str, conn: u64, tx: &UnboundedSender<Input>) -> Result<Self, Error> {
        let ws = web_sys::WebSocket::new_with_str(url, protocol)
            .map_err(|_| Error::invalid("base_url", "not a valid WebSocket URL"))?;
        let t = tx.clone();
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            let _ = t.unbounded_send(Input::Socket {
                conn,
                event: SocketEvent::Open,
            });
        });
        let t = tx.clone();
        let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            // The protocol is text only; a binary frame is ignored.
            if let Some(text) = e.data().as_string() {
                let _ = t.unbounded_send(Input::Socket {
                    conn,
                    event: SocketEvent::Text(text),
                });
            }
        });
        let t = tx.clone();
        let on_close = Closure::<dyn FnMut(web_sys::CloseEvent)>::new(move |e: web_sys::CloseEvent| {
            let _ = t.unbounded_send(Input::Socket {
                conn,
                event: SocketEvent::Closed {
                    code: e.code(),
                    reason: e.reason(),
                },
            });
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        // `error` is always followed by `close`, which carries the code: only `close` is used.
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Socket {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        })
    }

    pub(crate) fn send(&self, text: &str) -> Result<(), String> {
        self.ws
            .send_with_str(text)
            .map_err(|_| "the socket refused a frame".to_owned())
    }

    /// Closes with `code` (1000, or 3000-4999) and `reason`.
    pub(crate) fn close(&self, code: u16, reason: &str) {
        let _ = self.ws.close_with_code_and_reason(code, reason);
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let state = self.ws.ready_state();
        if state == web_sys::WebSocket::CONNECTING || state == web_sys::WebSocket::OPEN {
            let _ = self.ws.close();
        }
    }
}

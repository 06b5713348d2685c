//! The driver: feeds the machine what the browser's WebSocket does and the passing of time.
//!
//! Socket callbacks arrive on one queue of [`Input`]s, tagged with the socket's `conn`
//! number; between inputs the driver sleeps until the machine's next deadline and then
//! ticks it. Every decision — subscribe, catch up, resend, reconnect and when — is the
//! machine's ([`chatico_core::client::ClientMachine`]).

use std::rc::Rc;

use chatico_core::client::ConnId;
use chatico_core::protocol::{ServerFrame, close_code};
use futures::StreamExt;
use futures::channel::mpsc::UnboundedReceiver;
use futures::future::{Either, select};

use crate::inner::Inner;
use crate::js::{self, now_ms};
use crate::socket::SocketEvent;

/// Everything the driver reacts to.
pub(crate) enum Input {
    Socket {
        conn: ConnId,
        event: SocketEvent,
    },
    /// The machine's deadline may have moved: look again.
    Wake,
    /// Stop (the machine was told first).
    Stop,
}

/// Runs until [`Input::Stop`].
pub(crate) async fn run(inner: Rc<Inner>, mut rx: UnboundedReceiver<Input>) {
    loop {
        let deadline = inner.read(|m| m.poll_timeout()).flatten();
        let input = match deadline {
            Some(t) => {
                let wait = u64::try_from(t - now_ms()).unwrap_or(0);
                match select(rx.next(), Box::pin(js::sleep(wait))).await {
                    Either::Left((input, _)) => Some(input),
                    Either::Right(_) => None,
                }
            }
            None => Some(rx.next().await),
        };
        let now = now_ms();
        match input {
            None => {
                inner.with_machine(|m| m.tick(now));
            }
            Some(None | Some(Input::Stop)) => break,
            Some(Some(Input::Wake)) => {}
            Some(Some(Input::Socket { conn, event })) => match event {
                SocketEvent::Open => {
                    let token = inner
                        .socket
                        .borrow()
                        .as_ref()
                        .filter(|(c, ..)| *c == conn)
                        .map(|(_, _, t)| t.clone());
                    // A browser cannot set `Authorization` on a WebSocket: the token is the
                    // first frame.
                    if inner.with_machine(|m| m.opened(now, conn, token)) != Some(true) {
                        inner.socket.borrow_mut().take_if(|(c, ..)| *c == conn);
                    }
                }
                SocketEvent::Text(text) => match serde_json::from_str::<ServerFrame>(&text) {
                    Ok(frame) => {
                        inner.with_machine(|m| m.frame(now, conn, frame));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "unreadable server frame");
                        inner.with_machine(|m| m.unreadable(now, conn));
                    }
                },
                SocketEvent::Closed { code, reason } => {
                    inner.socket.borrow_mut().take_if(|(c, ..)| *c == conn);
                    let why = format!("closed ({code}{}{reason})", if reason.is_empty() { "" } else { ": " });
                    inner.with_machine(|m| m.closed(now, conn, why, code == close_code::UNAUTHORIZED));
                }
            },
        }
    }
    inner.socket.borrow_mut().take();
}

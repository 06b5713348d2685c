//! The transport-free half of a ChatiCO client: what the native client (`chatico-transport`),
//! the FFI bindings and the browser bindings share. Platforms only move bytes and keep time.
//!
//! - [`ClientMachine`]: the connection state machine every platform drives (outbox and send
//!   window, pending frames, catch-up, exactly-once and in-order reporting, receipts, the
//!   local view, reconnect backoff, the durable state).
//! - [`Outbox`]: messages sent while offline or unacknowledged, resent with their original
//!   `client_msg_id` so the server stores each exactly once.
//! - [`SyncState`]: the durable resume cursor (advanced only by server checkpoints) and the
//!   positions applied above it, so a change seen live and again after a resume is applied
//!   once.
//! - [`Reorder`]: reports each conversation's messages in `seq` order.
//! - [`LocalView`]: conversations, last messages, unread counts, receipts, typing and presence,
//!   kept current by applying changes and events.
//! - [`ClientEvent`], [`ConnectionState`], [`Session`]: the value types every platform shows.
//!
//! Nothing here does I/O or reads a clock by itself: time comes in as arguments.

mod machine;
mod outbox;
mod reorder;
mod sync_state;
mod types;
mod view;

pub use machine::{ClientMachine, ConnId, DurableState, MachineConfig, Output, RequestId, RestCall, RestResult};
pub use outbox::{Outbox, PendingMessage};
pub use reorder::Reorder;
pub use sync_state::SyncState;
pub use types::{ClientEvent, ConnectionState, Session};
pub use view::{ConversationView, LocalView, ViewUpdate};

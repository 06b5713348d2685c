//! The transport-free half of a ChatiCO client: what the native client (`chatico-transport`),
//! the FFI bindings and the browser bindings share.
//!
//! - [`Outbox`]: messages sent while offline or unacknowledged, resent with their original
//!   `client_msg_id` so the server stores each exactly once.
//! - [`SyncState`]: the durable resume cursor (advanced only by server checkpoints) and the
//!   positions applied above it, so a change seen live and again after a resume is applied
//!   once.
//! - [`LocalView`]: conversations, last messages, unread counts, receipts, typing and presence,
//!   kept current by applying changes and events.
//!
//! Nothing here does I/O or reads a clock by itself: time comes in as arguments.

mod outbox;
mod sync_state;
mod view;

pub use outbox::{Outbox, PendingMessage};
pub use sync_state::{KEY_MEMORY, SyncState};
pub use view::{ConversationView, LocalView, ViewUpdate};

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::SendSyncOutsideWasm;
use crate::error::Result;
use crate::sync::Fanout;

/// A stream of what any node published: deliveries and controls.
pub type EventStream = BoxStream<'static, Fanout>;

/// Fan-out between gateway nodes: in-process for one node, Redis or NATS for several.
///
/// It carries [`Fanout`]s: deliveries (events for clients) and controls (instructions every
/// node acts on, such as closing a revoked session's sockets).
///
/// Pub/sub may lose deliveries (a broker restart, a slow subscriber); clients never depend
/// on it for completeness: resume always goes through the store's `sync`. Nor do controls:
/// each node also re-validates its connections' sessions against the store periodically.
#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
pub trait Backplane: SendSyncOutsideWasm {
    /// Publishes a delivery or control to every node (including this one).
    async fn publish(&self, msg: Fanout) -> Result<()>;
    /// Subscribes to everything published from now on.
    async fn subscribe(&self) -> Result<EventStream>;
}

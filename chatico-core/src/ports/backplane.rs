use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::SendSyncOutsideWasm;
use crate::error::Result;
use crate::sync::Delivery;

/// A stream of deliveries published by any node.
pub type EventStream = BoxStream<'static, Delivery>;

/// Fan-out between gateway nodes: in-process for one node, Redis or NATS for several.
///
/// Pub/sub may lose deliveries (a broker restart, a slow subscriber); clients never depend
/// on it for completeness: resume always goes through the store's `sync`.
#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
pub trait Backplane: SendSyncOutsideWasm {
    /// Publishes a delivery to every node (including this one).
    async fn publish(&self, delivery: Delivery) -> Result<()>;
    /// Subscribes to every delivery published from now on.
    async fn subscribe(&self) -> Result<EventStream>;
}

//! Backplanes: fan-out of [`Envelope`]s (deliveries and controls) between gateway nodes.
//!
//! A gateway hands deliveries to its own connections directly and publishes an envelope for
//! the other nodes; each node subscribes once, ignores its own envelopes, routes deliveries
//! to its local connections and acts on controls ("these sessions were revoked" closes the
//! matching connections). [`InProcessBackplane`] serves a single node (or several gateways in
//! one process); [`redis::RedisBackplane`] (feature `redis`) and [`nats::NatsBackplane`]
//! (feature `nats`) connect nodes in different processes.

#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(any(feature = "redis", feature = "nats"))]
mod relay;

use async_trait::async_trait;
use chatico_core::Result;
use chatico_core::ports::{Backplane, BackplaneEvent, Envelope, EventStream};
use futures::StreamExt;
use tokio::sync::broadcast;

#[cfg(any(feature = "redis", feature = "nats"))]
pub use relay::BrokerConfig;

/// A backplane inside one process: a bounded broadcast channel. Its link never goes down.
///
/// A subscriber that falls more than `capacity` envelopes behind loses the oldest ones (it is
/// told through a `tracing` warning); clients recover them through sync, as with any
/// backplane.
#[derive(Debug, Clone)]
pub struct InProcessBackplane {
    tx: broadcast::Sender<Envelope>,
}

impl InProcessBackplane {
    /// A backplane buffering at most `capacity` envelopes per subscriber.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        InProcessBackplane { tx }
    }
}

impl Default for InProcessBackplane {
    fn default() -> Self {
        InProcessBackplane::new(65_536)
    }
}

#[async_trait]
impl Backplane for InProcessBackplane {
    async fn publish(&self, envelope: Envelope) -> Result<()> {
        // No subscriber is not an error: nobody is connected to this node.
        let _ = self.tx.send(envelope);
        Ok(())
    }

    async fn subscribe(&self) -> Result<EventStream> {
        let rx = self.tx.subscribe();
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(e) => return Some((BackplaneEvent::Envelope(e), rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(lost = n, "in-process backplane subscriber lagged; envelopes lost");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(stream.boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatico_core::ids::UserId;
    use chatico_core::ports::{EncodedDelivery, NodeId, Payload};

    fn envelope(n: u64) -> Envelope {
        Envelope {
            origin: NodeId("a".into()),
            epoch: 1,
            seq: n,
            payload: Payload::Delivery(EncodedDelivery {
                recipients: vec![UserId(uuid::Uuid::nil())],
                change: None,
                frame: bytes::Bytes::from(format!("{{\"n\":{n}}}")),
            }),
        }
    }

    fn ev(n: u64) -> Option<BackplaneEvent> {
        Some(BackplaneEvent::Envelope(envelope(n)))
    }

    #[tokio::test]
    async fn every_subscriber_receives_every_envelope_in_order() {
        let bp = InProcessBackplane::new(16);
        let mut a = bp.subscribe().await.expect("sub a");
        let mut b = bp.subscribe().await.expect("sub b");
        for n in 0..5 {
            bp.publish(envelope(n)).await.expect("publish");
        }
        for n in 0..5 {
            assert_eq!(a.next().await, ev(n));
            assert_eq!(b.next().await, ev(n));
        }
    }

    #[tokio::test]
    async fn a_lagging_subscriber_loses_the_oldest_and_keeps_going() {
        let bp = InProcessBackplane::new(2);
        let mut a = bp.subscribe().await.expect("sub");
        for n in 0..5 {
            bp.publish(envelope(n)).await.expect("publish");
        }
        assert_eq!(a.next().await, ev(3));
        assert_eq!(a.next().await, ev(4));
    }
}

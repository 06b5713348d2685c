//! Backplanes: fan-out of [`Fanout`]s (deliveries and controls) between gateway nodes.
//!
//! The gateway publishes every delivery and control through a [`Backplane`] and each node
//! subscribes once and routes what it receives to its local connections (a control such as
//! "these sessions were revoked" closes the matching connections). [`InProcessBackplane`] serves a
//! single node; a Redis or NATS backplane implements the same port and plugs in unchanged.

use async_trait::async_trait;
use chatico_core::Result;
use chatico_core::ports::{Backplane, EventStream};
use chatico_core::sync::Fanout;
use futures::StreamExt;
use tokio::sync::broadcast;

/// A backplane inside one process: a bounded broadcast channel.
///
/// A subscriber that falls more than `capacity` deliveries behind loses the oldest ones (it is
/// told through a `tracing` warning); clients recover them through sync, as with any
/// backplane.
#[derive(Debug, Clone)]
pub struct InProcessBackplane {
    tx: broadcast::Sender<Fanout>,
}

impl InProcessBackplane {
    /// A backplane buffering at most `capacity` deliveries per subscriber.
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
    async fn publish(&self, msg: Fanout) -> Result<()> {
        // No subscriber is not an error: nobody is connected to this node.
        let _ = self.tx.send(msg);
        Ok(())
    }

    async fn subscribe(&self) -> Result<EventStream> {
        let rx = self.tx.subscribe();
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(d) => return Some((d, rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(lost = n, "in-process backplane subscriber lagged; deliveries lost");
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
    use chatico_core::model::Presence;
    use chatico_core::sync::{Delivery, Event};

    fn delivery(n: i64) -> Fanout {
        Fanout::Delivery(Delivery {
            recipients: vec![UserId(uuid::Uuid::nil())],
            event: Event::Presence(Presence {
                user_id: UserId(uuid::Uuid::nil()),
                online: true,
                last_seen_at: Some(n),
            }),
        })
    }

    #[tokio::test]
    async fn every_subscriber_receives_every_delivery_in_order() {
        let bp = InProcessBackplane::new(16);
        let mut a = bp.subscribe().await.expect("sub a");
        let mut b = bp.subscribe().await.expect("sub b");
        for n in 0..5 {
            bp.publish(delivery(n)).await.expect("publish");
        }
        for n in 0..5 {
            assert_eq!(a.next().await, Some(delivery(n)));
            assert_eq!(b.next().await, Some(delivery(n)));
        }
    }

    #[tokio::test]
    async fn a_lagging_subscriber_loses_the_oldest_and_keeps_going() {
        let bp = InProcessBackplane::new(2);
        let mut a = bp.subscribe().await.expect("sub");
        for n in 0..5 {
            bp.publish(delivery(n)).await.expect("publish");
        }
        assert_eq!(a.next().await, Some(delivery(3)));
        assert_eq!(a.next().await, Some(delivery(4)));
    }
}

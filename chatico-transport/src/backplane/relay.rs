//! What the broker backplanes share: their configuration, the bounded publish queue, and the
//! bounded inbox their subscription stream reads from.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use chatico_core::ports::{BackplaneEvent, Envelope, EventStream};
use chatico_core::{Error, Result};
use futures::StreamExt;
use tokio::sync::mpsc;

/// Settings of a Redis or NATS backplane.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// The Redis channel or NATS subject every node publishes to and subscribes to.
    pub channel: String,
    /// Envelopes waiting to be written to the broker. When full, `publish` drops the
    /// envelope (counted, logged) instead of waiting: the store-based checkpoint repairs.
    pub publish_queue: usize,
    /// Envelopes received and not yet taken by the gateway. When full, new ones are dropped
    /// (counted, logged): the broker connection is never stalled by a slow node.
    pub read_buffer: usize,
    /// First delay before reconnecting after the link broke; doubles up to `reconnect_max`.
    pub reconnect_min: Duration,
    /// Longest delay between reconnect attempts. Default 1 s.
    pub reconnect_max: Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            channel: "chatico.fanout".into(),
            publish_queue: 65_536,
            read_buffer: 65_536,
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(1),
        }
    }
}

impl BrokerConfig {
    pub(crate) fn check(&self) -> Result<()> {
        if self.channel.is_empty() || self.publish_queue == 0 || self.read_buffer == 0 {
            return Err(Error::invalid(
                "backplane config",
                "channel must not be empty; publish_queue and read_buffer > 0",
            ));
        }
        Ok(())
    }
}

/// Logs the 1st, 2nd, 4th, 8th... drop, so a storm of drops does not flood the log.
fn log_drop(counter: &AtomicU64, what: &'static str) {
    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
    if n.is_power_of_two() {
        tracing::warn!(
            dropped_total = n,
            "backplane {what} full; envelope dropped (clients recover by sync)"
        );
    }
}

/// The sending side of a bounded publish queue; a task drains it into the broker.
#[derive(Debug)]
pub(crate) struct Publisher {
    tx: mpsc::Sender<Bytes>,
    dropped: AtomicU64,
}

impl Publisher {
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            Publisher {
                tx,
                dropped: AtomicU64::new(0),
            },
            rx,
        )
    }

    /// Queues an envelope without waiting; drops it when the queue is full.
    pub fn offer(&self, envelope: &Envelope) -> Result<()> {
        match self.tx.try_send(Bytes::from(envelope.encode())) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                log_drop(&self.dropped, "publish queue");
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Error::unavailable("backplane publisher stopped")),
        }
    }
}

/// The receiving side's bounded inbox, fed by the broker reader task.
#[derive(Debug, Clone)]
pub(crate) struct Inbox {
    tx: mpsc::Sender<BackplaneEvent>,
    dropped: Arc<AtomicU64>,
}

impl Inbox {
    /// An inbox and the stream a subscriber reads.
    pub fn new(capacity: usize) -> (Self, EventStream) {
        let (tx, rx) = mpsc::channel(capacity);
        let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) }).boxed();
        (
            Inbox {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
            },
            stream,
        )
    }

    /// The subscriber dropped its stream: the reader task should end.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Resolves once the subscriber dropped its stream.
    pub async fn closed(&self) {
        self.tx.closed().await
    }

    /// Decodes and queues one message from the broker; drops it when the inbox is full.
    pub fn offer(&self, bytes: Bytes) {
        match Envelope::decode(bytes) {
            Ok(e) => {
                if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(BackplaneEvent::Envelope(e)) {
                    log_drop(&self.dropped, "read buffer");
                }
            }
            Err(e) => tracing::warn!(error = %e, "backplane: undecodable message ignored"),
        }
    }

    /// Reports a link change. Waits for room: a link report is never dropped.
    pub async fn link(&self, event: BackplaneEvent) {
        let _ = self.tx.send(event).await;
    }
}

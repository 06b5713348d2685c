//! The NATS backplane: one core subject shared by every node (no JetStream: the store is the
//! only log).
//!
//! The `async-nats` client reconnects by itself and restores its subscriptions; its
//! connection events become [`BackplaneEvent::LinkDown`] / [`BackplaneEvent::LinkUp`], so the
//! stream never ends on a NATS failure. Publishing goes through a bounded queue drained by one
//! task (`publish` never waits for NATS); the subscription's own buffer is bounded too
//! (`read_buffer`: NATS drops for a slow consumer). Core NATS is at most once; what it loses,
//! clients recover by sync.

use async_trait::async_trait;
use chatico_core::ports::{Backplane, BackplaneEvent, Envelope, EventStream};
use chatico_core::{Error, Result};
use futures::StreamExt;
use tokio::sync::Mutex;

use super::relay::{BrokerConfig, Inbox, Publisher};

/// A backplane over core NATS. See the module docs.
pub struct NatsBackplane {
    client: async_nats::Client,
    config: BrokerConfig,
    publisher: Publisher,
    /// Where the connection's link events go, once someone subscribed.
    links: std::sync::Arc<Mutex<Vec<Inbox>>>,
}

impl std::fmt::Debug for NatsBackplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBackplane")
            .field("subject", &self.config.channel)
            .finish_non_exhaustive()
    }
}

impl NatsBackplane {
    /// Connects to `url` (`nats://HOST:PORT`). Fails when NATS cannot be reached now; once
    /// connected, outages are survived (the client reconnects forever), never returned.
    pub async fn connect(url: &str, config: BrokerConfig) -> Result<Self> {
        config.check()?;
        let links: std::sync::Arc<Mutex<Vec<Inbox>>> = Default::default();
        let cb_links = links.clone();
        let (min, max) = (config.reconnect_min, config.reconnect_max);
        let options = async_nats::ConnectOptions::new()
            .name("chatico-backplane")
            .max_reconnects(None)
            .subscription_capacity(config.read_buffer)
            .reconnect_delay_callback(move |attempts| {
                let exp = u32::try_from(attempts.min(16)).unwrap_or(16);
                (min * 2u32.saturating_pow(exp)).min(max)
            })
            .event_callback(move |event| {
                let links = cb_links.clone();
                async move {
                    let link = match event {
                        async_nats::Event::Connected => BackplaneEvent::LinkUp,
                        async_nats::Event::Disconnected => BackplaneEvent::LinkDown,
                        async_nats::Event::SlowConsumer(_) => {
                            tracing::warn!(
                                "nats backplane: subscription buffer full; envelopes dropped (clients recover by sync)"
                            );
                            return;
                        }
                        other => {
                            tracing::info!(event = %other, "nats backplane event");
                            return;
                        }
                    };
                    tracing::info!(?link, "nats backplane link");
                    let inboxes: Vec<Inbox> = links.lock().await.clone();
                    for i in inboxes {
                        i.link(link.clone()).await;
                    }
                }
            });
        let client = async_nats::connect_with_options(url, options)
            .await
            .map_err(|e| Error::unavailable(format!("nats backplane: {e}")))?;
        let (publisher, mut rx) = Publisher::new(config.publish_queue);
        let pub_client = client.clone();
        let subject = config.channel.clone();
        tokio::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                if let Err(e) = pub_client.publish(subject.clone(), bytes).await {
                    tracing::warn!(error = %e, "nats backplane: publish failed; envelope lost (clients recover by sync)");
                }
            }
        });
        Ok(NatsBackplane {
            client,
            config,
            publisher,
            links,
        })
    }
}

#[async_trait]
impl Backplane for NatsBackplane {
    async fn publish(&self, envelope: Envelope) -> Result<()> {
        self.publisher.offer(&envelope)
    }

    /// Makes the client drop its connection and connect again (its subscriptions are
    /// restored on the new connection).
    async fn reconnect(&self) -> Result<()> {
        self.client
            .force_reconnect()
            .await
            .map_err(|e| Error::unavailable(format!("nats backplane: {e}")))
    }

    async fn subscribe(&self) -> Result<EventStream> {
        let mut sub = self
            .client
            .subscribe(self.config.channel.clone())
            .await
            .map_err(|e| Error::unavailable(format!("nats backplane: {e}")))?;
        // Make sure the server has the subscription before anyone relies on it.
        self.client
            .flush()
            .await
            .map_err(|e| Error::unavailable(format!("nats backplane: {e}")))?;
        let (inbox, stream) = Inbox::new(self.config.read_buffer);
        {
            let mut links = self.links.lock().await;
            links.retain(|i| !i.is_closed());
            links.push(inbox.clone());
        }
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    m = sub.next() => match m {
                        Some(m) => inbox.offer(m.payload),
                        // Only when the client is closed for good (dropped).
                        None => return,
                    },
                    _ = inbox.closed() => return,
                }
            }
        });
        Ok(stream)
    }
}

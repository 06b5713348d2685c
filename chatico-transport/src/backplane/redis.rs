//! The Redis backplane: one pub/sub channel shared by every node.
//!
//! Publishing goes through a bounded queue drained by one task over a
//! [`redis::aio::ConnectionManager`] (which reconnects by itself); `publish` never waits for
//! Redis. The subscription runs on its own pub/sub connection, owned by a reader task that
//! reconnects with backoff and resubscribes when the connection breaks, and reports
//! [`BackplaneEvent::LinkDown`] / [`BackplaneEvent::LinkUp`]: the stream never ends on a Redis
//! failure. Redis pub/sub is at most once; what it loses, clients recover by sync.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chatico_core::ports::{Backplane, BackplaneEvent, Envelope, EventStream};
use chatico_core::{Error, Result};
use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};

use super::relay::{BrokerConfig, Inbox, Publisher};

/// Longest wait for Redis to accept a connection, answer a command or confirm a
/// subscription.
const OPEN_TIMEOUT: Duration = Duration::from_secs(2);

/// A backplane over Redis pub/sub. See the module docs.
pub struct RedisBackplane {
    client: redis::Client,
    config: BrokerConfig,
    publisher: Publisher,
    /// The publishing connection; [`Backplane::reconnect`] replaces it.
    conn: Arc<Mutex<ConnectionManager>>,
}

impl std::fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackplane")
            .field("channel", &self.config.channel)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: redis::RedisError) -> Error {
    Error::unavailable(format!("redis backplane: {e}"))
}

impl RedisBackplane {
    /// Connects to `url` (`redis://HOST:PORT[/DB]`). Fails when Redis cannot be reached now;
    /// once connected, outages are survived (reconnects), never returned.
    pub async fn connect(url: &str, config: BrokerConfig) -> Result<Self> {
        config.check()?;
        let client = redis::Client::open(url).map_err(|e| Error::invalid("backplane url", e.to_string()))?;
        let conn = Arc::new(Mutex::new(Self::manager(&client, &config).await?));
        let (publisher, mut rx) = Publisher::new(config.publish_queue);
        let channel = config.channel.clone();
        let publishing = conn.clone();
        tokio::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                let mut conn = publishing.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let publish = redis::cmd("PUBLISH").arg(&channel).arg(&bytes[..]).clone();
                let mut r: redis::RedisResult<()> = publish.query_async(&mut conn).await;
                // A connection broken while idle (Redis restarted) is noticed on its next use:
                // the write fails, nothing was published, and the manager reconnects. One
                // retry keeps that first envelope (a presence event has no sync to repair it).
                if r.as_ref().is_err_and(|e| e.is_io_error() || e.is_connection_dropped()) {
                    r = publish.query_async(&mut conn).await;
                }
                if let Err(e) = r {
                    tracing::warn!(error = %e, "redis backplane: publish failed; envelope lost (clients recover by sync)");
                }
            }
        });
        Ok(RedisBackplane {
            client,
            config,
            publisher,
            conn,
        })
    }

    /// A publishing connection (it reconnects by itself after an I/O error).
    async fn manager(client: &redis::Client, config: &BrokerConfig) -> Result<ConnectionManager> {
        let cm_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(OPEN_TIMEOUT))
            .set_response_timeout(Some(OPEN_TIMEOUT))
            .set_min_delay(config.reconnect_min)
            .set_max_delay(config.reconnect_max);
        ConnectionManager::new_with_config(client.clone(), cm_config)
            .await
            .map_err(unavailable)
    }

    /// A new pub/sub connection subscribed to `channel`, within [`OPEN_TIMEOUT`] (a broker
    /// that accepts the connection but never answers must not hang the reader).
    async fn open(client: &redis::Client, channel: &str) -> redis::RedisResult<PubSub> {
        let open = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok(pubsub)
        };
        tokio::time::timeout(OPEN_TIMEOUT, open).await.unwrap_or_else(|_| {
            Err(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "redis did not answer the subscription in time",
            )))
        })
    }
}

#[async_trait]
impl Backplane for RedisBackplane {
    async fn publish(&self, envelope: Envelope) -> Result<()> {
        self.publisher.offer(&envelope)
    }

    /// Replaces the publishing connection (the subscription gets a new connection at every
    /// `subscribe`). On failure the old one stays.
    async fn reconnect(&self) -> Result<()> {
        let fresh = Self::manager(&self.client, &self.config).await?;
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    async fn subscribe(&self) -> Result<EventStream> {
        let client = self.client.clone();
        let channel = self.config.channel.clone();
        let (min, max) = (self.config.reconnect_min, self.config.reconnect_max);
        // The first subscription is made here, so a broker that is down at start is an error.
        let first = Self::open(&client, &channel).await.map_err(unavailable)?;
        let (inbox, stream) = Inbox::new(self.config.read_buffer);
        tokio::spawn(async move {
            let mut pubsub = Some(first);
            let mut delay = min;
            loop {
                if let Some(ps) = pubsub.take() {
                    delay = min;
                    let mut messages = ps.into_on_message();
                    loop {
                        tokio::select! {
                            m = messages.next() => match m {
                                Some(m) => inbox.offer(Bytes::copy_from_slice(m.get_payload_bytes())),
                                None => break,
                            },
                            _ = inbox.closed() => return,
                        }
                    }
                    tracing::warn!("redis backplane: subscription lost; reconnecting");
                    inbox.link(BackplaneEvent::LinkDown).await;
                }
                if inbox.is_closed() {
                    return;
                }
                tokio::time::sleep(delay).await;
                match Self::open(&client, &channel).await {
                    Ok(ps) => {
                        tracing::info!("redis backplane: resubscribed");
                        inbox.link(BackplaneEvent::LinkUp).await;
                        pubsub = Some(ps);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "redis backplane: reconnect failed");
                        delay = (delay * 2).min(max);
                    }
                }
            }
        });
        Ok(stream)
    }
}

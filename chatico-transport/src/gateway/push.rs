//! The push pipeline of a gateway: after a delivery was fanned out, a bounded queue, a
//! collapse window per (user, conversation), and a [`PushSender`] with retries.
//!
//! The rules (who is pushed, with what) are the engine's
//! ([`Engine::push_recipients`], [`Engine::push_notifications`]); this module only moves
//! them in time:
//!
//! - `Pusher::offer` runs on the send path after the acknowledgement and the fan-out:
//!   [`chatico_core::push::intent_of`] (pure, no I/O) and a `try_send` into a bounded queue.
//!   A full queue drops the push (counted, logged): a provider outage or a slow store never
//!   slows or fails a send.
//! - One worker reads the queue, asks the engine who is pushed, and opens a collapse window
//!   per (user, conversation): messages arriving while it is open only move its seq. When it
//!   closes, the engine builds the notifications (re-checking presence and mutes; the badge
//!   is the unread count then) and each goes to the sender.
//! - A transient failure (429, 5xx, timeout) is retried with [`RetryPolicy`] backoff, or after
//!   the provider's `Retry-After` when it gave one (capped); an invalid token is removed; a
//!   permanent refusal is logged. At most `concurrency` sends are in flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chatico_core::engine::Engine;
use chatico_core::ids::{ConversationId, UserId};
use chatico_core::push::{PushError, PushIntent, PushKind, PushNotification, PushSender, intent_of};
use chatico_core::retry::RetryPolicy;
use chatico_core::sync::Delivery;
use tokio::sync::{Semaphore, mpsc};

/// How a gateway queues, collapses and retries pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushConfig {
    /// Messages waiting for the push worker; beyond it pushes are dropped (counted).
    pub queue: usize,
    /// How long a (user, conversation) collects messages before one push goes out.
    pub collapse_window: Duration,
    /// Collapse windows open at once; beyond it new ones are dropped (counted).
    pub max_pending: usize,
    /// Sends in flight at once.
    pub concurrency: usize,
    /// Attempts and backoff for transient failures.
    pub retry: RetryPolicy,
    /// Longest `Retry-After` honoured (a longer one waits this long).
    pub max_retry_after: Duration,
}

impl Default for PushConfig {
    /// 4096 queued, a 2 s collapse window, 100 000 windows, 32 sends in flight, 5 attempts
    /// from 1 s to 60 s, `Retry-After` up to 5 minutes.
    fn default() -> Self {
        PushConfig {
            queue: 4096,
            collapse_window: Duration::from_secs(2),
            max_pending: 100_000,
            concurrency: 32,
            retry: RetryPolicy {
                max_attempts: 5,
                initial_backoff: Duration::from_secs(1),
                max_backoff: Duration::from_secs(60),
            },
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// Counters of a gateway's push pipeline ([`super::Gateway::push_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushStats {
    /// Messages that called for pushes and were queued.
    pub queued: u64,
    /// Dropped because the queue or the collapse windows were full.
    pub dropped: u64,
    /// Notifications the provider accepted.
    pub delivered: u64,
    /// Transient failures retried.
    pub retried: u64,
    /// Notifications given up on (permanent refusal, attempts exhausted, store error).
    pub failed: u64,
    /// Registrations removed because the provider said the token is invalid.
    pub tokens_removed: u64,
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    dropped: AtomicU64,
    delivered: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    tokens_removed: AtomicU64,
}

impl Counters {
    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> PushStats {
        PushStats {
            queued: self.queued.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            tokens_removed: self.tokens_removed.load(Ordering::Relaxed),
        }
    }
}

/// The gateway's end of the pipeline: offers deliveries to the queue.
pub(crate) struct Pusher {
    tx: mpsc::Sender<PushIntent>,
    counters: Arc<Counters>,
}

impl Pusher {
    /// Starts the worker (needs a tokio runtime); it ends when the pusher is dropped.
    pub fn start(engine: Arc<Engine>, sender: Arc<dyn PushSender>, config: PushConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let counters = Arc::new(Counters::default());
        let worker = Worker {
            engine,
            sender,
            config,
            pending: Arc::new(Mutex::new(HashMap::new())),
            sends: Arc::new(Semaphore::new(config.concurrency.max(1))),
            counters: counters.clone(),
        };
        tokio::spawn(worker.run(rx));
        Pusher { tx, counters }
    }

    /// Queues the push a delivery calls for, if any, without waiting.
    pub fn offer(&self, delivery: &Delivery) {
        let Some(intent) = intent_of(delivery) else { return };
        match self.tx.try_send(intent) {
            Ok(()) => Counters::bump(&self.counters.queued),
            Err(_) => {
                Counters::bump(&self.counters.dropped);
                tracing::warn!(target: "chatico::push", "push queue full; push dropped");
            }
        }
    }

    pub fn stats(&self) -> PushStats {
        self.counters.snapshot()
    }
}

/// An open collapse window: the newest seq and the strongest reason so far.
#[derive(Debug, Clone, Copy)]
struct Pending {
    seq: i64,
    kind: PushKind,
}

type PendingMap = Arc<Mutex<HashMap<(UserId, ConversationId), Pending>>>;

#[derive(Clone)]
struct Worker {
    engine: Arc<Engine>,
    sender: Arc<dyn PushSender>,
    config: PushConfig,
    pending: PendingMap,
    sends: Arc<Semaphore>,
    counters: Arc<Counters>,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<PushIntent>) {
        while let Some(intent) = rx.recv().await {
            let recipients = match self.engine.push_recipients(&intent).await {
                Ok(r) => r,
                Err(e) => {
                    Counters::bump(&self.counters.failed);
                    tracing::warn!(target: "chatico::push", error = %e, "push recipients not read; push dropped");
                    continue;
                }
            };
            for (user, kind) in recipients {
                self.collect(user, intent.conversation_id, intent.seq, kind);
            }
        }
    }

    /// Adds a message to the user's window for the conversation, opening one if needed.
    fn collect(&self, user: UserId, conversation: ConversationId, seq: i64, kind: PushKind) {
        let key = (user, conversation);
        {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(p) = pending.get_mut(&key) {
                p.seq = p.seq.max(seq);
                p.kind = p.kind.max(kind);
                return;
            }
            if pending.len() >= self.config.max_pending {
                Counters::bump(&self.counters.dropped);
                tracing::warn!(target: "chatico::push", "too many collapse windows open; push dropped");
                return;
            }
            pending.insert(key, Pending { seq, kind });
        }
        let w = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(w.config.collapse_window).await;
            let taken = w.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
            if let Some(p) = taken {
                w.flush(user, conversation, p).await;
            }
        });
    }

    async fn flush(&self, user: UserId, conversation: ConversationId, p: Pending) {
        let notifications = match self.engine.push_notifications(user, conversation, p.seq, p.kind).await {
            Ok(n) => n,
            Err(e) => {
                Counters::bump(&self.counters.failed);
                tracing::warn!(target: "chatico::push", error = %e, "push not built; dropped");
                return;
            }
        };
        for n in notifications {
            let w = self.clone();
            tokio::spawn(async move { w.deliver(n).await });
        }
    }

    /// Sends one notification: retries transient failures, removes an invalid token.
    async fn deliver(&self, n: PushNotification) {
        let attempts = self.config.retry.max_attempts.max(1);
        for attempt in 1..=attempts {
            let result = {
                let Ok(_permit) = self.sends.acquire().await else {
                    return;
                };
                self.sender.send(&n).await
            };
            match result {
                Ok(()) => {
                    Counters::bump(&self.counters.delivered);
                    return;
                }
                Err(PushError::Unregistered) => {
                    match self.engine.drop_push_token(n.platform, &n.token).await {
                        Ok(_) => Counters::bump(&self.counters.tokens_removed),
                        Err(e) => {
                            tracing::warn!(target: "chatico::push", error = %e, "invalid push token not removed")
                        }
                    }
                    return;
                }
                Err(PushError::Rejected(reason)) => {
                    Counters::bump(&self.counters.failed);
                    tracing::warn!(target: "chatico::push", %reason, platform = n.platform.as_str(), "push refused");
                    return;
                }
                Err(PushError::Retry { retry_after, reason }) => {
                    if attempt == attempts {
                        Counters::bump(&self.counters.failed);
                        tracing::warn!(target: "chatico::push", %reason, attempts, "push given up");
                        return;
                    }
                    Counters::bump(&self.counters.retried);
                    let wait = retry_after.map_or_else(
                        || self.config.retry.backoff(attempt),
                        |ra| ra.min(self.config.max_retry_after),
                    );
                    tracing::debug!(target: "chatico::push", %reason, ?wait, "push retried");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

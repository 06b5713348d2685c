//! Group commit: one writer task per store takes `insert_message` requests from a channel
//! and commits every request that queued up while the previous batch was being written in
//! one transaction. Each caller is answered only after the transaction holding its message
//! has committed, so "acknowledged means committed" holds; throughput no longer stops at one
//! commit (one fsync) per message.
//!
//! Error isolation: a batch is planned so that per-message problems (unknown conversation,
//! duplicate `(sender, client_msg_id)`) are answered individually without failing the
//! transaction. If the batch transaction fails anyway for a reason other than the database
//! being unavailable (a constraint raced by another node, a value the database rejects),
//! every message of the batch is retried alone in its own transaction, so one bad message
//! fails alone.

use std::future::Future;
use std::sync::Arc;

use chatico_core::model::{Message, NewMessage};
use chatico_core::sync::Change;
use chatico_core::{Error, ErrorCode, Result};
use tokio::sync::{Mutex, mpsc, oneshot};

/// What one `insert_message` answers: the message and, if this call stored it, its change.
pub(crate) type InsertResult = Result<(Message, Option<Change>)>;

/// A backend's two ways of inserting messages.
pub(crate) trait BatchInsert: Send + Sync + 'static {
    /// Inserts a batch in one transaction, returning one result per request (same order).
    /// An `Err` means the transaction did not commit.
    fn insert_batch(&self, batch: &[NewMessage]) -> impl Future<Output = Result<Vec<InsertResult>>> + Send;
    /// Inserts one message in its own transaction.
    fn insert_one(&self, message: &NewMessage) -> impl Future<Output = Result<(Message, Option<Change>)>> + Send;
}

pub(crate) struct InsertRequest {
    message: NewMessage,
    reply: oneshot::Sender<InsertResult>,
}

/// The sending side, held by the store.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<InsertRequest>,
}

impl Writer {
    /// Spawns `workers` writer tasks on the current tokio runtime. One worker gives one
    /// transaction at a time (SQLite's single writer); several let a backend with concurrent
    /// writers prepare the next batch while the previous one commits.
    pub fn spawn<B: BatchInsert>(backend: Arc<B>, workers: usize, max_batch: usize, queue: usize) -> Self {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..workers.max(1) {
            tokio::spawn(run(backend.clone(), rx.clone(), max_batch.max(1)));
        }
        Writer { tx }
    }

    /// Queues a message and waits until its transaction has committed (or failed).
    pub async fn insert(&self, message: NewMessage) -> Result<(Message, Option<Change>)> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(InsertRequest { message, reply })
            .await
            .map_err(|_| Error::unavailable("the store's writer has stopped"))?;
        answer
            .await
            .map_err(|_| Error::unavailable("the store's writer stopped before answering"))?
    }
}

async fn run<B: BatchInsert>(backend: Arc<B>, rx: Arc<Mutex<mpsc::Receiver<InsertRequest>>>, max_batch: usize) {
    let mut batch: Vec<InsertRequest> = Vec::with_capacity(max_batch);
    loop {
        {
            // Take everything queued (up to max_batch); other workers wait for the lock.
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            batch.push(first);
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
        }
        let (messages, replies): (Vec<NewMessage>, Vec<_>) = batch.drain(..).map(|r| (r.message, r.reply)).unzip();
        let results: Vec<InsertResult> = if messages.len() == 1 {
            vec![backend.insert_one(&messages[0]).await]
        } else {
            match backend.insert_batch(&messages).await {
                Ok(results) => results,
                Err(e) if e.code() == ErrorCode::Unavailable => messages.iter().map(|_| Err(e.clone())).collect(),
                Err(e) => {
                    tracing::warn!(error = %e, size = messages.len(), "batch insert failed; retrying one by one");
                    let mut out = Vec::with_capacity(messages.len());
                    for m in &messages {
                        out.push(backend.insert_one(m).await);
                    }
                    out
                }
            }
        };
        tracing::trace!(size = messages.len(), "batch committed");
        for (reply, result) in replies.into_iter().zip(results) {
            // The caller may have gone away (cancelled); the message is committed either way
            // and a retry with the same client_msg_id returns it.
            let _ = reply.send(result);
        }
    }
}

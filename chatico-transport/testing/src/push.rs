//! A push sender that records every attempt and fails on request, so gateway tests see
//! exactly what would have gone to APNs or FCM.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use chatico_core::push::{PushError, PushNotification, PushSender};
use tokio::sync::Notify;

use crate::PATIENCE;

/// One call to [`PushSender::send`] and what it answered.
#[derive(Debug, Clone)]
pub struct PushAttempt {
    /// The notification.
    pub notification: PushNotification,
    /// What the recorder answered.
    pub result: Result<(), PushError>,
}

/// Records every notification; [`RecordingPush::fail_next`] scripts failures per token.
#[derive(Default)]
pub struct RecordingPush {
    attempts: Mutex<Vec<PushAttempt>>,
    script: Mutex<HashMap<String, VecDeque<PushError>>>,
    changed: Notify,
}

#[async_trait]
impl PushSender for RecordingPush {
    async fn send(&self, n: &PushNotification) -> Result<(), PushError> {
        let scripted = self
            .script
            .lock()
            .expect("push script lock")
            .get_mut(&n.token)
            .and_then(VecDeque::pop_front);
        let result = scripted.map_or(Ok(()), Err);
        self.attempts.lock().expect("push lock").push(PushAttempt {
            notification: n.clone(),
            result: result.clone(),
        });
        self.changed.notify_waiters();
        result
    }
}

impl RecordingPush {
    /// The next sends to `token` answer these errors, in order (then success).
    pub fn fail_next(&self, token: &str, errors: Vec<PushError>) {
        self.script
            .lock()
            .expect("push script lock")
            .entry(token.to_owned())
            .or_default()
            .extend(errors);
    }

    /// Every attempt so far, in order.
    pub fn attempts(&self) -> Vec<PushAttempt> {
        self.attempts.lock().expect("push lock").clone()
    }

    /// Attempts to `token`, in order.
    pub fn attempts_to(&self, token: &str) -> Vec<PushAttempt> {
        self.attempts()
            .into_iter()
            .filter(|a| a.notification.token == token)
            .collect()
    }

    /// Notifications to `token` that were delivered (answered success), in order.
    pub fn delivered_to(&self, token: &str) -> Vec<PushNotification> {
        self.attempts_to(token)
            .into_iter()
            .filter(|a| a.result.is_ok())
            .map(|a| a.notification)
            .collect()
    }

    /// Waits until at least `n` attempts went to `token` (bounded by [`PATIENCE`]); returns
    /// them.
    pub async fn wait_attempts(&self, token: &str, n: usize) -> Vec<PushAttempt> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let changed = self.changed.notified();
            let got = self.attempts_to(token);
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!(
                    "{} push attempts to {token} after {PATIENCE:?}, expected {n}",
                    got.len()
                );
            }
        }
    }
}

//! Shared harness of the engine tests: the engine over the in-memory store, a manual clock,
//! an in-memory OTP cache and an SMS sender that records what it sends.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chatico_core::engine::{Engine, SendMessage};
use chatico_core::ids::{ConversationId, Phone, UserId};
use chatico_core::memory::MemoryStore;
use chatico_core::model::Content;
use chatico_core::ports::{ManualClock, SmsSender, Store};
use chatico_core::sync::{Delivery, Event};
use chatico_core::{Config, Error, MemoryOtpCache, Result};

pub use futures::executor::block_on;

pub const T0: i64 = 1_700_000_000_000;

/// Records every SMS instead of sending it.
#[derive(Default)]
pub struct RecordingSms {
    pub sent: Mutex<Vec<(Phone, String)>>,
}

impl RecordingSms {
    /// The code in the newest SMS to `phone`.
    pub fn last_code(&self, phone: &str) -> String {
        let phone = Phone::parse(phone).expect("phone");
        let sent = self.sent.lock().expect("lock");
        let body = &sent
            .iter()
            .rev()
            .find(|(p, _)| *p == phone)
            .expect("an sms to this phone")
            .1;
        body.split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() >= 4)
            .expect("a code in the body")
            .to_owned()
    }

    pub fn count(&self) -> usize {
        self.sent.lock().expect("lock").len()
    }
}

#[async_trait]
impl SmsSender for RecordingSms {
    async fn send(&self, to: &Phone, body: &str) -> Result<()> {
        self.sent.lock().expect("lock").push((to.clone(), body.to_owned()));
        Ok(())
    }
}

pub struct Harness {
    pub engine: Engine,
    pub store: Arc<MemoryStore>,
    pub clock: Arc<ManualClock>,
    pub sms: Arc<RecordingSms>,
    pub cache: Arc<MemoryOtpCache>,
    next_phone: Mutex<u64>,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(test_config())
    }

    pub fn with_config(config: Config) -> Self {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new(T0));
        let sms = Arc::new(RecordingSms::default());
        let cache = Arc::new(MemoryOtpCache::new());
        let engine = Engine::new(store.clone(), clock.clone(), config).expect("valid config");
        #[cfg(feature = "server")]
        let engine = engine.with_local_otp(cache.clone(), sms.clone());
        Harness {
            engine,
            store,
            clock,
            sms,
            cache,
            next_phone: Mutex::new(0),
        }
    }

    /// A fresh registered user named `name` (created through the store).
    pub fn user(&self, name: &str) -> UserId {
        let n = {
            let mut g = self.next_phone.lock().expect("lock");
            *g += 1;
            *g
        };
        let phone = Phone::parse(&format!("+1555{n:07}")).expect("phone");
        let (u, created) = block_on(self.store.get_or_create_user(&phone, UserId::new(T0), name, T0)).expect("user");
        assert!(created);
        u.id
    }

    pub fn users(&self, names: &[&str]) -> Vec<UserId> {
        names.iter().map(|n| self.user(n)).collect()
    }

    /// Sends a text and returns its seq.
    pub fn say(&self, from: UserId, conv: ConversationId, text: &str) -> i64 {
        block_on(self.engine.send(from, text_msg(conv, &uuid_ish(), text)))
            .expect("send")
            .value
            .seq
    }

    /// A group `title` owned by `owner` with `members`.
    pub fn group(&self, owner: UserId, title: &str, members: &[UserId]) -> ConversationId {
        block_on(self.engine.create_group(owner, title.into(), members.to_vec()))
            .expect("group")
            .value
            .id
    }

    pub fn direct(&self, a: UserId, b: UserId) -> ConversationId {
        block_on(self.engine.open_direct(a, b)).expect("direct").value.id
    }

    /// Checks that every change delivery carries the position the store recorded it at and
    /// reaches exactly the users whose sync contains it (among `users`), with the same content.
    pub fn assert_deliveries_match_sync(&self, deliveries: &[Delivery], users: &[UserId]) {
        for d in deliveries {
            let Event::Change(change) = &d.event else { continue };
            assert!(change.pos > 0, "live change without a position: {change:?}");
            for u in users {
                let page = block_on(self.store.sync(*u, change.pos - 1, 1)).expect("sync");
                let sees = page.changes.first().is_some_and(|c| c.pos == change.pos);
                assert_eq!(
                    sees,
                    d.recipients.contains(u),
                    "user {u} sync/delivery disagree on {change:?} (recipients {:?})",
                    d.recipients
                );
                if sees {
                    assert_eq!(&page.changes[0], change, "delivered change differs from the synced one");
                }
            }
        }
    }
}

pub fn test_config() -> Config {
    let mut c = Config::default();
    c.auth.jwt_secret = "test-secret-test-secret-test-secret-0123".into();
    c
}

pub fn text_msg(conv: ConversationId, client_msg_id: &str, text: &str) -> SendMessage {
    SendMessage {
        conversation_id: conv,
        client_msg_id: client_msg_id.into(),
        content: Content::text(text),
        reply_to_seq: None,
    }
}

pub fn uuid_ish() -> String {
    ConversationId::new(0).to_string()
}

pub fn not_found_conversation() -> Error {
    Error::not_found("conversation")
}

pub fn is_forbidden<T: std::fmt::Debug>(r: Result<T>) -> bool {
    matches!(r, Err(Error::Forbidden { .. }))
}

pub fn invalid_field<T: std::fmt::Debug>(r: Result<T>) -> Option<String> {
    match r {
        Err(Error::InvalidInput { field, .. }) => Some(field),
        _ => None,
    }
}

/// Recipients of every delivery of a given event shape.
pub fn recipients_of(deliveries: &[Delivery], pred: impl Fn(&Event) -> bool) -> Vec<UserId> {
    let mut v: Vec<UserId> = deliveries
        .iter()
        .filter(|d| pred(&d.event))
        .flat_map(|d| d.recipients.iter().copied())
        .collect();
    v.sort();
    v.dedup();
    v
}

pub fn sorted(mut v: Vec<UserId>) -> Vec<UserId> {
    v.sort();
    v.dedup();
    v
}

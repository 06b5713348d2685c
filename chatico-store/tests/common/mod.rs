//! Fixtures and backend-independent checks shared by the SQLite and Postgres test binaries.
#![allow(dead_code)]

use std::sync::Arc;

use chatico_core::ids::{ConversationId, MessageId, Phone, UserId};
use chatico_core::model::{Content, ConversationKind, HistoryDirection, HistoryQuery, NewMessage, Role};
use chatico_core::ports::{NewConversation, Store};
use chatico_core::sync::ChangeKind;

pub const NOW: i64 = 1_700_000_000_000;

pub async fn user(store: &dyn Store, n: u32, name: &str) -> UserId {
    let phone = Phone::parse(&format!("+1555{n:07}")).expect("phone");
    let (u, created) = store
        .get_or_create_user(&phone, UserId::new(NOW), name, NOW)
        .await
        .expect("create user");
    assert!(created);
    u.id
}

pub async fn group(store: &dyn Store, owner: UserId, others: &[UserId], at: i64) -> ConversationId {
    let mut members = vec![(owner, Role::Owner)];
    members.extend(others.iter().map(|u| (*u, Role::Member)));
    let (c, changes) = store
        .create_conversation(&NewConversation {
            id: ConversationId::new(at),
            kind: ConversationKind::Group,
            title: Some("g".into()),
            avatar_url: None,
            created_by: owner,
            created_at: at,
            members,
        })
        .await
        .expect("create group");
    assert_eq!(
        changes.len(),
        2 + others.len(),
        "MemberJoined per member, then ConversationCreated"
    );
    c.id
}

pub fn text(conversation: ConversationId, sender: UserId, client_id: &str, body: &str, at: i64) -> NewMessage {
    NewMessage {
        id: MessageId::new(at),
        conversation_id: conversation,
        sender_id: sender,
        client_msg_id: client_id.to_owned(),
        content: Content::text(body.to_owned()),
        reply_to_seq: None,
        created_at: at,
    }
}

/// Concurrent senders into one conversation get unique, gap-free seqs; retries with the
/// same client id return the original; every message is in sync exactly once.
pub async fn concurrent_sends_are_gap_free_and_idempotent(store: Arc<dyn Store>) {
    let a = user(&*store, 1, "alice").await;
    let b = user(&*store, 2, "bob").await;
    let c = group(&*store, a, &[b], NOW).await;
    let mut tasks = Vec::new();
    for t in 0..16u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let sender = if t % 2 == 0 { a } else { b };
            let mut out = Vec::new();
            for i in 0..25u32 {
                let cid = format!("t{t}-{i}");
                let m = text(c, sender, &cid, "hi", NOW + i64::from(i));
                let (first, change) = store.insert_message(&m).await.expect("insert");
                let change = change.expect("a new message records a change");
                assert_eq!(change.kind, ChangeKind::Message { message: first.clone() });
                // Retried at once: the original comes back, nothing is stored twice.
                let (again, retried) = store.insert_message(&m).await.expect("retry");
                assert!(retried.is_none());
                assert_eq!(again, first);
                out.push(change);
            }
            out
        }));
    }
    let mut returned = Vec::new();
    for t in tasks {
        returned.extend(t.await.expect("task"));
    }
    returned.sort_by_key(|c| c.pos);
    let mut seqs: Vec<i64> = returned
        .iter()
        .map(|c| match &c.kind {
            ChangeKind::Message { message } => message.seq,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=400).collect::<Vec<i64>>());
    let conv = store.get_conversation(c).await.expect("get").expect("exists");
    assert_eq!(conv.last_seq, 400);
    // Sync shows each message once, in seq order for one conversation.
    let mut since = 0;
    let mut got = Vec::new();
    let mut synced = Vec::new();
    loop {
        let page = store.sync(b, since, 64).await.expect("sync");
        for ch in &page.changes {
            if let ChangeKind::Message { message } = &ch.kind {
                got.push(message.seq);
                synced.push(ch.clone());
            }
        }
        since = page.next;
        if !page.limited {
            break;
        }
    }
    assert_eq!(got, (1..=400).collect::<Vec<i64>>());
    // What insert_message returned is exactly what sync returns (positions included).
    assert_eq!(returned, synced);
    let page = store
        .history(
            c,
            b,
            HistoryQuery {
                direction: HistoryDirection::Before,
                anchor: None,
                limit: 10,
            },
        )
        .await
        .expect("history");
    assert_eq!(
        page.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (391..=400).collect::<Vec<i64>>()
    );
}

/// One group-commit batch holding a message for an unknown conversation and an in-batch
/// duplicate: the bad one fails alone, the duplicate returns the original, the rest commit.
pub async fn a_bad_message_fails_alone(store: Arc<dyn Store>) {
    let a = user(&*store, 1, "alice").await;
    let c = group(&*store, a, &[], NOW).await;
    let missing = ConversationId::new(NOW + 1);
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let (conv, cid) = match i {
                13 => (missing, "bad".to_owned()),
                // Two requests with one key: exactly one creates.
                20 | 21 => (c, "dup".to_owned()),
                _ => (c, format!("m{i}")),
            };
            store.insert_message(&text(conv, a, &cid, "x", NOW)).await
        }));
    }
    let mut ok = 0;
    let mut created_dup = 0;
    let mut dup_seqs = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let r = t.await.expect("task");
        match i {
            13 => assert_eq!(r.expect_err("unknown conversation").code().as_str(), "not_found"),
            20 | 21 => {
                let (m, change) = r.expect("dup");
                created_dup += usize::from(change.is_some());
                dup_seqs.push(m.seq);
            }
            _ => {
                r.expect("good message");
                ok += 1;
            }
        }
    }
    assert_eq!(ok, 61);
    assert_eq!(created_dup, 1);
    assert_eq!(dup_seqs[0], dup_seqs[1]);
    assert_eq!(store.get_conversation(c).await.expect("get").expect("c").last_seq, 62);
}

/// Postgres test databases: each store gets its own fresh schema in the database named by
/// `CHATICO_TEST_POSTGRES_URL`, so tests run in parallel. Schemas are named
/// `chatico_t_<unix seconds>_<random>`; ones older than an hour (left by earlier runs) are
/// dropped when a new one is made.
#[cfg(feature = "postgres")]
pub mod pg {
    use chatico_store::{PostgresConfig, PostgresStore};

    pub fn url() -> Option<String> {
        match std::env::var("CHATICO_TEST_POSTGRES_URL") {
            Ok(u) if !u.is_empty() => Some(u),
            _ => {
                eprintln!("SKIPPED: CHATICO_TEST_POSTGRES_URL not set; Postgres store test not run");
                None
            }
        }
    }

    fn now_secs() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    pub fn fresh_schema() -> String {
        format!("chatico_t_{}_{:016x}", now_secs(), rand::random::<u64>())
    }

    async fn drop_stale(url: &str) {
        use sqlx::Connection;
        let Ok(mut conn) = sqlx::PgConnection::connect(url).await else {
            return;
        };
        let names: Vec<String> =
            sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'chatico\\_t\\_%'")
                .fetch_all(&mut conn)
                .await
                .unwrap_or_default();
        let cutoff = now_secs().saturating_sub(3600);
        for name in names {
            let born = name
                .split('_')
                .nth(2)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(u64::MAX);
            if born < cutoff {
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .execute(&mut conn)
                    .await;
            }
        }
    }

    pub fn config(schema: String) -> PostgresConfig {
        PostgresConfig {
            schema: Some(schema),
            max_connections: 8,
            ..PostgresConfig::default()
        }
    }

    /// A store in a fresh schema, or `None` (after a SKIPPED line) without the env var.
    pub async fn store() -> Option<PostgresStore> {
        store_with(|c| c).await
    }

    pub async fn store_with(tune: impl FnOnce(PostgresConfig) -> PostgresConfig) -> Option<PostgresStore> {
        let url = url()?;
        drop_stale(&url).await;
        let store = PostgresStore::connect(&url, tune(config(fresh_schema())))
            .await
            .expect("connect to CHATICO_TEST_POSTGRES_URL");
        Some(store)
    }
}

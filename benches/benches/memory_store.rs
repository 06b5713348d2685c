//! Core operations on the in-memory store (`chatico_core::memory::MemoryStore`): the writes
//! and reads a send, a resync and a screen make. (The SQL stores have their own benchmarks.)
//!
//! `cargo bench -p chatico-benches --bench memory_store`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use chatico_core::ids::{ConversationId, MessageId, Phone, UserId};
use chatico_core::memory::MemoryStore;
use chatico_core::model::{Content, ConversationKind, HistoryDirection, HistoryQuery, NewMessage, Role};
use chatico_core::ports::{NewConversation, Store};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const NOW: i64 = 1_750_000_000_000;

struct Fixture {
    store: MemoryStore,
    users: Vec<UserId>,
    group: ConversationId,
}

async fn fixture(members: usize, messages: usize) -> Fixture {
    let store = MemoryStore::new();
    let mut users = Vec::new();
    for i in 0..members {
        let phone = Phone::parse(&format!("+1555{i:07}")).expect("phone");
        let (u, _) = store
            .get_or_create_user(&phone, UserId::new(NOW), "bench", NOW)
            .await
            .expect("user");
        users.push(u.id);
    }
    let group = ConversationId::new(NOW);
    let mut m: Vec<(UserId, Role)> = users.iter().map(|u| (*u, Role::Member)).collect();
    m[0].1 = Role::Owner;
    store
        .create_conversation(&NewConversation {
            id: group,
            kind: ConversationKind::Group,
            title: Some("bench".into()),
            avatar_url: None,
            created_by: users[0],
            created_at: NOW,
            members: m,
        })
        .await
        .expect("group");
    for i in 0..messages {
        store
            .insert_message(&new_message(group, users[i % members], i as u64))
            .await
            .expect("insert");
    }
    Fixture { store, users, group }
}

fn new_message(conversation: ConversationId, sender: UserId, n: u64) -> NewMessage {
    NewMessage {
        id: MessageId::new(NOW),
        conversation_id: conversation,
        sender_id: sender,
        client_msg_id: format!("m{n}"),
        content: Content::text("x".repeat(100)),
        reply_to_seq: None,
        created_at: NOW,
    }
}

fn store_ops(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let f = rt.block_on(fixture(100, 10_000));
    let mut g = c.benchmark_group("memory_store");
    g.throughput(Throughput::Elements(1));
    let n = AtomicU64::new(1_000_000);
    g.bench_function("insert_message", |b| {
        b.to_async(&rt).iter(|| async {
            let i = n.fetch_add(1, Ordering::Relaxed);
            f.store
                .insert_message(&new_message(f.group, f.users[(i % 100) as usize], i))
                .await
                .expect("insert")
        })
    });
    g.bench_function("insert_message_retry", |b| {
        let m = new_message(f.group, f.users[0], 0);
        b.to_async(&rt)
            .iter(|| async { f.store.insert_message(black_box(&m)).await.expect("retry") })
    });
    g.bench_function("get_member", |b| {
        b.to_async(&rt)
            .iter(|| async { f.store.get_member(f.group, f.users[7]).await.expect("member") })
    });
    g.bench_function("list_members_100", |b| {
        b.to_async(&rt)
            .iter(|| async { f.store.list_members(f.group).await.expect("members") })
    });
    g.bench_function("history_page_50", |b| {
        b.to_async(&rt).iter(|| async {
            f.store
                .history(
                    f.group,
                    f.users[1],
                    HistoryQuery {
                        direction: HistoryDirection::Before,
                        anchor: None,
                        limit: 50,
                    },
                )
                .await
                .expect("history")
        })
    });
    let latest = rt.block_on(f.store.latest_pos()).expect("latest");
    g.bench_function("sync_100_missed", |b| {
        b.to_async(&rt).iter(|| async {
            f.store
                .sync(f.users[1], black_box(latest - 100), 200)
                .await
                .expect("sync")
        })
    });
    g.bench_function("latest_pos", |b| {
        b.to_async(&rt)
            .iter(|| async { f.store.latest_pos().await.expect("latest") })
    });
    g.finish();
}

criterion_group!(benches, store_ops);
criterion_main!(benches);

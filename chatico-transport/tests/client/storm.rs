//! Reconnect storm: three clients in a group write concurrently through a proxy that cuts
//! every connection at a random byte; every message must end delivered exactly once, in seq
//! order, on every client.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;

use chatico_core::ids::ConversationId;
use chatico_core::model::{Content, Message};
use chatico_core::sync::ChangeKind;
use chatico_transport::client::{Client, ClientEvent, ConnectionState};
use tokio::sync::broadcast;

use crate::common::*;

/// Messages each sender writes.
const PER_SENDER: usize = 100;

/// Everything a client was told about `conv`'s messages, in arrival order.
async fn drain(
    rx: &mut broadcast::Receiver<ClientEvent>,
    conv: ConversationId,
    into: &mut Vec<Message>,
    reconnects: &mut u32,
) {
    loop {
        match rx.try_recv() {
            Ok(ClientEvent::Change(c)) => {
                if let ChangeKind::Message { message } = c.kind
                    && message.conversation_id == conv
                {
                    into.push(message);
                }
            }
            Ok(ClientEvent::Connection(ConnectionState::Reconnecting { .. })) => *reconnects += 1,
            Ok(_) => {}
            Err(broadcast::error::TryRecvError::Empty) => return,
            Err(e) => panic!("event stream: {e}"),
        }
    }
}

fn text(m: &Message) -> String {
    match &m.content {
        Some(Content::Text { text, .. }) => text.clone(),
        other => panic!("unexpected content {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_storm_loses_and_duplicates_nothing() {
    let seed: u64 = std::env::var("CHATICO_STORM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("reconnect storm seed: {seed} (set CHATICO_STORM_SEED to replay)");
    let server = TestServer::start().await;
    let proxy = ChaosProxy::start(server.addr, seed, 1_000..40_000).await;
    let base = proxy.url();

    let names = ["Ann", "Ben", "Cat"];
    let mut clients: Vec<Client> = Vec::new();
    for (i, n) in names.iter().enumerate() {
        clients.push(login(&server, &base, &format!("+1555000010{i}"), n).await);
    }
    let ids: Vec<_> = clients.iter().map(|c| c.user_id().expect("id")).collect();
    let conv = clients[0]
        .create_group("storm", ids[1..].to_vec(), None)
        .await
        .expect("group")
        .id;
    let mut rxs: Vec<_> = clients.iter().map(Client::events).collect();
    for c in &clients {
        c.connect().await.expect("connect");
    }
    for c in &clients {
        eventually("every client loaded the group", || c.conversation(conv).is_some()).await;
    }
    let group_notices = clients[0].conversation(conv).expect("conv").conversation.last_seq;

    // The storm: two writers queue everything at once while the proxy cuts connections.
    proxy.set_chaos(true);
    let writers = [&clients[0], &clients[1]];
    for i in 0..PER_SENDER {
        for (w, c) in writers.iter().enumerate() {
            c.send_text(conv, format!("{w}:{i}"));
        }
        if i % 10 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let mut logs: Vec<Vec<Message>> = vec![Vec::new(); clients.len()];
    let mut reconnects = vec![0u32; clients.len()];
    let total = group_notices as usize + 2 * PER_SENDER;
    let done = tokio::time::timeout(PATIENCE * 3, async {
        loop {
            for (k, rx) in rxs.iter_mut().enumerate() {
                drain(rx, conv, &mut logs[k], &mut reconnects[k]).await;
            }
            let all_acked = writers.iter().all(|c| c.pending().is_empty());
            let all_seen = clients.iter().all(|c| c.messages(conv).len() >= total);
            if all_acked && all_seen {
                return;
            }
            // Let the storm calm down once most of the work is done, so the run ends.
            if all_acked {
                proxy.set_chaos(false);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    proxy.set_chaos(false);
    let cuts = proxy.cuts.load(Ordering::SeqCst);
    eprintln!("connections cut: {cuts}; reconnects per client: {reconnects:?}");
    assert!(
        done.is_ok(),
        "the storm did not settle: pending {:?}, seen {:?}",
        writers.iter().map(|c| c.pending().len()).collect::<Vec<_>>(),
        clients.iter().map(|c| c.messages(conv).len()).collect::<Vec<_>>()
    );
    assert!(cuts >= 5, "the proxy must actually have cut connections ({cuts})");
    // Every client has every message in its view; wait until each has also reported them.
    let storm_msgs = 2 * PER_SENDER;
    let reported = tokio::time::timeout(PATIENCE, async {
        loop {
            for (k, rx) in rxs.iter_mut().enumerate() {
                drain(rx, conv, &mut logs[k], &mut reconnects[k]).await;
            }
            if logs
                .iter()
                .all(|l| l.iter().filter(|m| m.seq > group_notices).count() >= storm_msgs)
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(reported.is_ok(), "not every message was reported as an event");
    for (k, c) in clients.iter().enumerate() {
        // The local view: seq 1..=total, gap-free, each sender's messages in send order.
        let view = c.messages(conv);
        let seqs: Vec<i64> = view.iter().map(|m| m.seq).collect();
        assert_eq!(
            seqs,
            (1..=total as i64).collect::<Vec<_>>(),
            "client {k}: gap-free seqs"
        );
        let mut next = [0usize; 2];
        for m in view.iter().filter(|m| m.seq > group_notices) {
            let t = text(m);
            let (w, i) = t.split_once(':').expect("w:i");
            let (w, i): (usize, usize) = (w.parse().expect("w"), i.parse().expect("i"));
            assert_eq!(i, next[w], "client {k}: writer {w}'s messages in send order");
            next[w] += 1;
        }
        assert_eq!(next, [PER_SENDER, PER_SENDER], "client {k}: every message stored once");

        // The events: each storm message reported exactly once.
        let mut count: HashMap<i64, usize> = HashMap::new();
        for m in &logs[k] {
            *count.entry(m.seq).or_default() += 1;
        }
        let dups: BTreeMap<i64, usize> = count.iter().filter(|(_, n)| **n > 1).map(|(s, n)| (*s, *n)).collect();
        assert!(
            dups.is_empty(),
            "client {k}: messages reported more than once: {dups:?}"
        );
        for seq in (group_notices + 1)..=total as i64 {
            assert_eq!(count.get(&seq), Some(&1), "client {k}: seq {seq} reported exactly once");
        }
        // Arrival order: the SDK reports a conversation's messages in seq order, holding one
        // that overtook another until the gap fills.
        let arrival: Vec<i64> = logs[k].iter().map(|m| m.seq).filter(|s| *s > group_notices).collect();
        assert!(
            arrival.windows(2).all(|w| w[0] < w[1]),
            "client {k}: messages reported out of seq order: {arrival:?}"
        );
    }
    assert!(
        reconnects.iter().all(|r| *r > 0),
        "every client went through reconnects: {reconnects:?}"
    );
    for c in &clients {
        c.disconnect().await;
    }
}

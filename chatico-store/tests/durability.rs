//! Kill-and-reopen durability: a child process sends a storm of messages and prints each
//! acknowledged client_msg_id; the parent kills it with SIGKILL at a random point, reopens
//! the database and checks that every acknowledged message is there exactly once, with
//! gap-free seqs. Several rounds on one database, on both backends.
//!
//! The child is this test binary run again (`--ignored --exact storm_child`) with the
//! database and ids in environment variables.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use chatico_core::ids::{ConversationId, UserId};
use chatico_core::model::{HistoryDirection, HistoryQuery};
use chatico_core::ports::Store;
use rand::Rng;

const SENDERS: usize = 16;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set: storm_child is run by the durability tests"))
}

async fn open(backend: &str, target: &str) -> Arc<dyn Store> {
    match backend {
        #[cfg(feature = "sqlite")]
        "sqlite" => Arc::new(
            chatico_store::SqliteStore::open(target, chatico_store::SqliteConfig::default())
                .await
                .expect("open SQLite"),
        ),
        #[cfg(feature = "postgres")]
        "postgres" => Arc::new(
            chatico_store::PostgresStore::connect(
                &common::pg::url().expect("postgres url"),
                common::pg::config(target.to_owned()),
            )
            .await
            .expect("connect Postgres"),
        ),
        other => panic!("backend {other} not compiled in"),
    }
}

/// The child: sends until killed, printing `ACK <client_msg_id> <seq>` after each commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by the durability tests"]
async fn storm_child() {
    let backend = env("CHATICO_STORM_BACKEND");
    let store = open(&backend, &env("CHATICO_STORM_TARGET")).await;
    let round = env("CHATICO_STORM_ROUND");
    let conv = ConversationId(env("CHATICO_STORM_CONVERSATION").parse().expect("uuid"));
    let users: Vec<UserId> = env("CHATICO_STORM_USERS")
        .split(',')
        .map(|u| UserId(u.parse().expect("uuid")))
        .collect();
    let mut tasks = Vec::new();
    for s in 0..SENDERS {
        let store = store.clone();
        let sender = users[s % users.len()];
        let round = round.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0u64.. {
                let cid = format!("r{round}-s{s}-{i}");
                let (m, _) = store
                    .insert_message(&common::text(conv, sender, &cid, "storm", common::NOW))
                    .await
                    .expect("insert");
                println!("ACK {cid} {}", m.seq);
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender");
    }
}

/// Runs `rounds` storms on one database, killing each child after a random number of acks.
async fn kill_and_reopen(backend: &str, target: &str, rounds: usize) {
    let store = open(backend, target).await;
    let a = common::user(&*store, 1, "alice").await;
    let b = common::user(&*store, 2, "bob").await;
    let conv = common::group(&*store, a, &[b], common::NOW).await;
    drop(store);
    let exe = std::env::current_exe().expect("current exe");
    let mut acked: HashMap<String, i64> = HashMap::new();
    let mut rng = rand::thread_rng();
    for round in 0..rounds {
        let kill_after: usize = rng.gen_range(1..3000);
        let mut child = Command::new(&exe)
            .args(["--ignored", "--exact", "storm_child", "--nocapture", "--test-threads=1"])
            .env("CHATICO_STORM_BACKEND", backend)
            .env("CHATICO_STORM_TARGET", target)
            .env("CHATICO_STORM_ROUND", round.to_string())
            .env("CHATICO_STORM_CONVERSATION", conv.to_string())
            .env("CHATICO_STORM_USERS", format!("{a},{b}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = 0;
        while seen < kill_after {
            let Some(line) = lines.next() else { break };
            let line = line.expect("read child");
            if let Some(rest) = line.strip_prefix("ACK ") {
                let (cid, seq) = rest.split_once(' ').expect("ACK cid seq");
                acked.insert(cid.to_owned(), seq.parse().expect("seq"));
                seen += 1;
            }
        }
        assert_eq!(seen, kill_after, "child ended before the kill point (see its stderr)");
        child.kill().expect("SIGKILL");
        // Acks already written to the pipe before the kill count too.
        for line in lines {
            let Ok(line) = line else { break };
            if let Some((cid, seq)) = line.strip_prefix("ACK ").and_then(|r| r.split_once(' ')) {
                acked.insert(cid.to_owned(), seq.parse().expect("seq"));
            }
        }
        child.wait().expect("reap child");

        // Reopen and check: every acked id present exactly once, at its acked seq; seqs
        // gap-free from 1.
        let store = open(backend, target).await;
        let last_seq = store.get_conversation(conv).await.expect("get").expect("conv").last_seq;
        let mut stored: HashMap<String, i64> = HashMap::new();
        let mut seqs = Vec::new();
        let mut anchor = 0;
        loop {
            let page = store
                .history(
                    conv,
                    a,
                    HistoryQuery {
                        direction: HistoryDirection::After,
                        anchor: Some(anchor),
                        limit: 1000,
                    },
                )
                .await
                .expect("history");
            let Some(last) = page.last() else { break };
            anchor = last.seq;
            for m in page {
                assert!(
                    stored.insert(m.client_msg_id.clone(), m.seq).is_none(),
                    "{} stored twice",
                    m.client_msg_id
                );
                seqs.push(m.seq);
            }
        }
        assert_eq!(
            seqs,
            (1..=last_seq).collect::<Vec<_>>(),
            "seqs are gap-free after a crash"
        );
        for (cid, seq) in &acked {
            assert_eq!(
                stored.get(cid),
                Some(seq),
                "acknowledged {cid} lost or moved (round {round})"
            );
        }
        let unique: HashSet<&String> = stored.keys().collect();
        assert_eq!(unique.len(), stored.len());
        eprintln!(
            "{backend} round {round}: killed after {kill_after} acks; {} acked in total, {} stored",
            acked.len(),
            stored.len()
        );
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sigkill_loses_no_acknowledged_message() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let path = dir.path().join("storm.db");
    kill_and_reopen("sqlite", path.to_str().expect("utf-8 path"), 5).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sigkill_loses_no_acknowledged_message() {
    if common::pg::url().is_none() {
        return;
    }
    kill_and_reopen("postgres", &common::pg::fresh_schema(), 5).await;
}

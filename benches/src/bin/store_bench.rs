//! Store benchmarks: persisted sends per second (acknowledged after commit) and read latency
//! of the screen-shaped queries, on SQLite and Postgres. See BENCHMARKS.md for the figures
//! and the exact commands.
//!
//! ```sh
//! cargo run --release -p chatico-benches --bin store-bench -- sends --backend sqlite --senders 64
//! cargo run --release -p chatico-benches --bin store-bench -- reads --backend postgres
//! cargo run --release -p chatico-benches --bin store-bench -- search --backend sqlite --messages 1000000
//! ```
//!
//! Postgres runs use `CHATICO_BENCH_POSTGRES_URL` (default: the loopback test database), each
//! run in a fresh schema that is dropped afterwards. SQLite runs use a fresh file under
//! `--dir` (default: the system temp dir), removed afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chatico_core::ids::{ConversationId, MessageId, Phone, UserId};
use chatico_core::model::{Content, ConversationKind, HistoryDirection, HistoryQuery, NewMessage, Role};
use chatico_core::ports::{NewConversation, Store};
use chatico_store::{PostgresConfig, PostgresStore, SqliteConfig, SqliteDurability, SqliteStore};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum Durability {
    Full,
    Normal,
}

#[derive(clap::Args, Clone)]
struct Common {
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// Directory for the SQLite file.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// SQLite `synchronous` setting.
    #[arg(long, value_enum, default_value = "full")]
    durability: Durability,
}

#[derive(Subcommand)]
enum Cmd {
    /// Persisted sends/s: `senders` tasks each send their share of `messages` one after the
    /// other (each waits for its acknowledgement), into `conversations` conversations.
    Sends {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 64)]
        senders: usize,
        #[arg(long, default_value_t = 100_000)]
        messages: usize,
        /// Conversations the senders write to (default: one per sender).
        #[arg(long)]
        conversations: Option<usize>,
        /// One transaction per message (the baseline) instead of group commit.
        #[arg(long)]
        no_group_commit: bool,
        /// Repeat the measurement (fresh database each time) and report the median.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Conversation-list and history-page latency on a seeded database.
    Reads {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 10_000)]
        conversations: usize,
        #[arg(long, default_value_t = 1_000_000)]
        messages: usize,
        #[arg(long, default_value_t = 2_000)]
        users: usize,
        /// Members per conversation.
        #[arg(long, default_value_t = 5)]
        members: usize,
        /// Timed calls per query.
        #[arg(long, default_value_t = 2_000)]
        samples: usize,
        /// Concurrent senders while seeding (big group-commit batches make seeding fast).
        #[arg(long, default_value_t = 1024)]
        seeders: usize,
    },
    /// Message search latency (`Store::search_messages`) on a seeded database: the same
    /// users and conversations as `reads`, messages of varied text (Zipf-distributed words)
    /// bulk-inserted with SQL in large transactions (the search index is maintained by the
    /// same triggers / generated column as any insert; no sync-log rows are written).
    Search {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 10_000)]
        conversations: usize,
        #[arg(long, default_value_t = 1_000_000)]
        messages: usize,
        #[arg(long, default_value_t = 2_000)]
        users: usize,
        /// Members per conversation.
        #[arg(long, default_value_t = 5)]
        members: usize,
        /// Timed calls per query (fewer when a query's `budget_s` runs out first, but at
        /// least 20).
        #[arg(long, default_value_t = 500)]
        samples: usize,
        /// Seconds of timed calls per query at most.
        #[arg(long, default_value_t = 15)]
        budget_s: u64,
    },
}

const T0: i64 = 1_700_000_000_000;

struct Db {
    store: Arc<dyn Store>,
    cleanup: Cleanup,
}

impl Cleanup {
    /// A second connection to the same database, for bulk loading.
    async fn connect(&self) -> Raw {
        use sqlx::Connection;
        match self {
            Cleanup::File(path) => Raw::Sqlite(
                sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .expect("SQLite connection"),
            ),
            Cleanup::Schema(url, schema) => {
                let mut conn = sqlx::PgConnection::connect(url).await.expect("Postgres connection");
                sqlx::query(&format!("SET search_path TO {schema}"))
                    .execute(&mut conn)
                    .await
                    .expect("search_path");
                Raw::Postgres(conn)
            }
        }
    }
}

/// A raw connection beside the store (bulk loading in `search`).
enum Raw {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

enum Cleanup {
    File(std::path::PathBuf),
    Schema(String, String),
}

impl Db {
    async fn open(common: &Common, group_commit: bool) -> Db {
        let tag = format!("{:016x}", rand::random::<u64>());
        match common.backend {
            Backend::Sqlite => {
                let dir = common.dir.clone().unwrap_or_else(std::env::temp_dir);
                let path = dir.join(format!("chatico-bench-{tag}.db"));
                let config = SqliteConfig {
                    durability: match common.durability {
                        Durability::Full => SqliteDurability::Full,
                        Durability::Normal => SqliteDurability::Normal,
                    },
                    group_commit,
                    ..SqliteConfig::default()
                };
                let store = SqliteStore::open(&path, config).await.expect("open SQLite");
                Db {
                    store: Arc::new(store),
                    cleanup: Cleanup::File(path),
                }
            }
            Backend::Postgres => {
                let url = pg_url();
                let schema = format!("chatico_bench_{tag}");
                let config = PostgresConfig {
                    schema: Some(schema.clone()),
                    max_connections: 32,
                    group_commit,
                    ..PostgresConfig::default()
                };
                let store = PostgresStore::connect(&url, config).await.expect("connect Postgres");
                Db {
                    store: Arc::new(store),
                    cleanup: Cleanup::Schema(url, schema),
                }
            }
        }
    }

    async fn close(self) {
        drop(self.store);
        match self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Schema(url, schema) => {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .execute(&mut conn)
                        .await;
                }
            }
        }
    }
}

fn pg_url() -> String {
    std::env::var("CHATICO_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("CHATICO_TEST_POSTGRES_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

async fn user(store: &dyn Store, n: usize) -> UserId {
    let phone = Phone::parse(&format!("+1555{n:07}")).expect("phone");
    store
        .get_or_create_user(&phone, UserId::new(T0), &format!("user {n}"), T0)
        .await
        .expect("user")
        .0
        .id
}

async fn group(store: &dyn Store, members: &[UserId], at: i64) -> ConversationId {
    let mut list = vec![(members[0], Role::Owner)];
    list.extend(members[1..].iter().map(|u| (*u, Role::Member)));
    store
        .create_conversation(&NewConversation {
            id: ConversationId::new(at),
            kind: ConversationKind::Group,
            title: Some("bench".into()),
            avatar_url: None,
            created_by: members[0],
            created_at: at,
            members: list,
        })
        .await
        .expect("conversation")
        .0
        .id
}

fn text(conversation: ConversationId, sender: UserId, cid: String, at: i64) -> NewMessage {
    NewMessage {
        id: MessageId::new(at),
        conversation_id: conversation,
        sender_id: sender,
        client_msg_id: cid,
        content: Content::text(
            "a hundred bytes of chat text, roughly what people send to each other all day long......",
        ),
        reply_to_seq: None,
        created_at: at,
    }
}

/// Sends `total` messages from `senders` concurrent tasks; returns the elapsed time.
async fn storm(
    store: Arc<dyn Store>,
    senders: &[UserId],
    convs: &[ConversationId],
    total: usize,
    tag: &str,
) -> Duration {
    let per = total / senders.len();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, &sender) in senders.iter().enumerate() {
        let store = store.clone();
        let conv = convs[i % convs.len()];
        let tag = tag.to_owned();
        tasks.push(tokio::spawn(async move {
            for j in 0..per {
                let at = T0 + j as i64;
                store
                    .insert_message(&text(conv, sender, format!("{tag}-{i}-{j}"), at))
                    .await
                    .expect("send");
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender task");
    }
    start.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn sends(
    common: Common,
    senders: usize,
    messages: usize,
    conversations: Option<usize>,
    group_commit: bool,
    runs: usize,
) {
    let mut rates = Vec::new();
    for run in 0..runs.max(1) {
        let db = Db::open(&common, group_commit).await;
        let store = db.store.clone();
        let n_convs = conversations.unwrap_or(senders).max(1);
        let mut users = Vec::with_capacity(senders);
        for i in 0..senders {
            users.push(user(&*store, i).await);
        }
        let mut convs = Vec::with_capacity(n_convs);
        for c in 0..n_convs {
            let owner = users[c % users.len()];
            let mut members = vec![owner];
            members.extend(users.iter().copied().filter(|u| *u != owner).take(4));
            convs.push(group(&*store, &members, T0 + c as i64).await);
        }
        // Warm-up (connections, statement caches), not measured.
        storm(
            store.clone(),
            &users,
            &convs,
            (senders * 20).min(messages),
            &format!("warm{run}"),
        )
        .await;
        let elapsed = storm(store.clone(), &users, &convs, messages, &format!("run{run}")).await;
        let sent = (messages / senders) * senders;
        let rate = sent as f64 / elapsed.as_secs_f64();
        println!(
            "sends backend={:?} durability={:?} group_commit={group_commit} senders={senders} conversations={n_convs} \
             run={run} messages={sent} elapsed_ms={} rate_per_s={rate:.0}",
            common.backend,
            common.durability,
            elapsed.as_millis()
        );
        rates.push(rate);
        drop(store);
        db.close().await;
    }
    println!(
        "RESULT sends backend={:?} durability={:?} group_commit={group_commit} senders={senders} median_rate_per_s={:.0}",
        common.backend,
        common.durability,
        median(rates)
    );
}

/// `n_users` users and `n_convs` groups of `members`.
async fn seed_conversations(
    store: &Arc<dyn Store>,
    n_users: usize,
    n_convs: usize,
    members: usize,
) -> (Vec<UserId>, Vec<ConversationId>) {
    let mut users = Vec::with_capacity(n_users);
    for i in 0..n_users {
        users.push(user(&**store, i).await);
    }
    // Conversation c has members c, c+1, ... (mod users); user 0 is also in every 10th
    // conversation, so it is in ~n_convs/10 of them (the "heavy" user); user 1 is typical.
    let mut convs = Vec::with_capacity(n_convs);
    let mut create = Vec::new();
    for c in 0..n_convs {
        let mut m: Vec<UserId> = (0..members).map(|k| users[(c + k) % n_users]).collect();
        if c % 10 == 0 && !m.contains(&users[0]) {
            m.push(users[0]);
        }
        create.push(m);
    }
    // Create conversations with a few concurrent tasks.
    let mut handles = Vec::new();
    for (chunk_i, chunk) in create.chunks(n_convs.div_ceil(8).max(1)).enumerate() {
        let store = store.clone();
        let chunk = chunk.to_vec();
        handles.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for (i, m) in chunk.iter().enumerate() {
                out.push(group(&*store, m, T0 + (chunk_i * 1_000_000 + i) as i64).await);
            }
            out
        }));
    }
    for h in handles {
        convs.extend(h.await.expect("create"));
    }
    (users, convs)
}

struct Shape {
    conversations: usize,
    messages: usize,
    users: usize,
    members: usize,
    seeders: usize,
}

async fn reads(common: Common, shape: Shape, samples: usize) {
    let Shape {
        conversations: n_convs,
        messages: n_msgs,
        users: n_users,
        members,
        seeders,
    } = shape;
    let db = Db::open(&common, true).await;
    let store = db.store.clone();
    let seed_start = Instant::now();
    let (users, convs) = seed_conversations(&store, n_users, n_convs, members).await;
    // Messages: `seeders` concurrent senders, round-robin over conversations.
    let per_task = n_msgs / seeders;
    let mut handles = Vec::new();
    for t in 0..seeders {
        let store = store.clone();
        let convs = convs.clone();
        let users = users.clone();
        handles.push(tokio::spawn(async move {
            for j in 0..per_task {
                let c = (t + j * seeders) % convs.len();
                let sender = users[(c + j % members) % users.len()];
                let at = T0 + 1_000 + (j * seeders + t) as i64;
                store
                    .insert_message(&text(convs[c], sender, format!("seed-{t}-{j}"), at))
                    .await
                    .expect("seed");
            }
        }));
    }
    for h in handles {
        h.await.expect("seed task");
    }
    println!(
        "seeded backend={:?} users={n_users} conversations={n_convs} messages={} in {:.1}s",
        common.backend,
        per_task * seeders,
        seed_start.elapsed().as_secs_f64()
    );

    let heavy = users[0];
    let typical = users[1];
    let heavy_count = store
        .list_conversations(heavy, false, 100_000)
        .await
        .expect("list")
        .len();
    let typical_count = store
        .list_conversations(typical, false, 100_000)
        .await
        .expect("list")
        .len();
    let mut rng_state = 1u64;
    let mut next = move || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state
    };
    type Probe = Box<dyn Fn(Arc<dyn Store>, u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>;
    let convs = Arc::new(convs);
    let probes: Vec<(String, Probe)> = vec![
        (
            format!("list_conversations(limit 50) typical user in {typical_count} conversations"),
            Box::new(move |s, _| {
                Box::pin(async move {
                    s.list_conversations(typical, false, 50).await.expect("list");
                })
            }),
        ),
        (
            format!("list_conversations(limit 50) heavy user in {heavy_count} conversations"),
            Box::new(move |s, _| {
                Box::pin(async move {
                    s.list_conversations(heavy, false, 50).await.expect("list");
                })
            }),
        ),
        ("history page (newest 50)".to_owned(), {
            let convs = convs.clone();
            let users = users.clone();
            Box::new(move |s, r| {
                let c = (r as usize) % convs.len();
                let conv = convs[c];
                let viewer = users[c % users.len()];
                Box::pin(async move {
                    s.history(
                        conv,
                        viewer,
                        HistoryQuery {
                            direction: HistoryDirection::Before,
                            anchor: None,
                            limit: 50,
                        },
                    )
                    .await
                    .expect("history");
                })
            })
        }),
        ("history page (50 before seq 60)".to_owned(), {
            let convs = convs.clone();
            let users = users.clone();
            Box::new(move |s, r| {
                let c = (r as usize) % convs.len();
                let conv = convs[c];
                let viewer = users[c % users.len()];
                Box::pin(async move {
                    s.history(
                        conv,
                        viewer,
                        HistoryQuery {
                            direction: HistoryDirection::Before,
                            anchor: Some(60),
                            limit: 50,
                        },
                    )
                    .await
                    .expect("history");
                })
            })
        }),
    ];
    for (name, probe) in probes {
        for _ in 0..(samples / 10).max(1) {
            probe(store.clone(), next()).await;
        }
        let mut times = Vec::with_capacity(samples);
        for _ in 0..samples {
            let r = next();
            let t = Instant::now();
            probe(store.clone(), r).await;
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "RESULT reads backend={:?} query=\"{name}\" samples={samples} p50_us={} p99_us={} max_us={}",
            common.backend,
            percentile(&times, 0.5).as_micros(),
            percentile(&times, 0.99).as_micros(),
            times.last().copied().unwrap_or_default().as_micros()
        );
    }
    drop(store);
    db.close().await;
}

/// Words of the synthetic vocabulary: rank `r` spelled in syllables, so every rank is a
/// distinct lowercase word of letters only.
fn word(mut r: usize) -> String {
    const SYL: [&str; 16] = [
        "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ba", "de", "fu", "go", "hi", "ju", "po", "ze",
    ];
    let mut w = String::new();
    loop {
        w.push_str(SYL[r % 16]);
        r /= 16;
        if r == 0 {
            break;
        }
    }
    w
}

/// Vocabulary size, and the cumulative Zipf weights (p(rank r) ∝ 1/(r+1)).
const VOCAB: usize = 20_000;

fn zipf_table() -> Vec<f64> {
    let mut acc = 0.0;
    let mut cum = Vec::with_capacity(VOCAB);
    for r in 0..VOCAB {
        acc += 1.0 / (r as f64 + 1.0);
        cum.push(acc);
    }
    cum
}

/// A message of 6 to 17 Zipf-distributed words, from the 64-bit random state `x`.
fn sentence(cum: &[f64], x: &mut u64) -> String {
    let mut next = || {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    };
    let total = *cum.last().expect("vocabulary");
    let n = 6 + (next() % 12) as usize;
    let mut words = Vec::with_capacity(n);
    for _ in 0..n {
        let u = (next() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let r = cum.partition_point(|c| *c < u).min(VOCAB - 1);
        words.push(word(r));
    }
    words.join(" ")
}

/// Bulk-inserts `n_msgs` messages round-robin over `convs` (message j: conversation
/// j mod n, seq j div n + 1), each sent by one of its conversation's members.
async fn bulk_messages(raw: &mut Raw, users: &[UserId], convs: &[ConversationId], members: usize, n_msgs: usize) {
    use sqlx::Connection;
    let cum = zipf_table();
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let n_users = users.len();
    let row = |j: usize, x: &mut u64| {
        let c = j % convs.len();
        let seq = (j / convs.len() + 1) as i64;
        let sender = users[(c + j % members) % n_users];
        let at = T0 + 1_000 + j as i64;
        let content = serde_json::json!({ "type": "text", "text": sentence(&cum, x) }).to_string();
        (
            convs[c],
            seq,
            MessageId::new(at),
            sender,
            format!("bulk-{j}"),
            content,
            at,
        )
    };
    const TX_ROWS: usize = 50_000;
    match raw {
        Raw::Sqlite(conn) => {
            const ROWS: usize = 500;
            let mut j = 0;
            while j < n_msgs {
                let mut tx = conn.begin().await.expect("begin");
                let end = (j + TX_ROWS).min(n_msgs);
                while j < end {
                    let k = ROWS.min(end - j);
                    let mut sql = String::from(
                        "INSERT INTO messages (conversation_id, seq, id, sender_id, client_msg_id, content, created_at) VALUES ",
                    );
                    for i in 0..k {
                        sql.push_str(if i == 0 { "(?,?,?,?,?,?,?)" } else { ",(?,?,?,?,?,?,?)" });
                    }
                    let rows: Vec<_> = (j..j + k).map(|i| row(i, &mut x)).collect();
                    let mut q = sqlx::query(&sql);
                    for (c, seq, id, sender, cid, content, at) in &rows {
                        q = q
                            .bind(c.to_string())
                            .bind(*seq)
                            .bind(id.to_string())
                            .bind(sender.to_string())
                            .bind(cid.clone())
                            .bind(content.clone())
                            .bind(*at);
                    }
                    q.execute(&mut *tx).await.expect("bulk insert");
                    j += k;
                }
                tx.commit().await.expect("commit");
            }
        }
        Raw::Postgres(conn) => {
            const ROWS: usize = 10_000;
            let mut j = 0;
            while j < n_msgs {
                let k = ROWS.min(n_msgs - j);
                let rows: Vec<_> = (j..j + k).map(|i| row(i, &mut x)).collect();
                sqlx::query(
                    "INSERT INTO messages (conversation_id, seq, id, sender_id, client_msg_id, content, created_at) \
                     SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::int8[])",
                )
                .bind(rows.iter().map(|r| r.0.0).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.2.0).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.3.0).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.4.clone()).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.5.clone()).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.6).collect::<Vec<_>>())
                .execute(&mut *conn)
                .await
                .expect("bulk insert");
                j += k;
            }
            sqlx::query(
                "UPDATE conversations c SET last_seq = x.m \
                 FROM (SELECT conversation_id, max(seq) AS m FROM messages GROUP BY conversation_id) x \
                 WHERE c.id = x.conversation_id",
            )
            .execute(&mut *conn)
            .await
            .expect("last_seq");
            sqlx::query("ANALYZE").execute(&mut *conn).await.expect("analyze");
        }
    }
}

async fn search(common: Common, shape: Shape, samples: usize, budget: Duration) {
    use chatico_core::search::{MessageSearch, terms};
    let Shape {
        conversations: n_convs,
        messages: n_msgs,
        users: n_users,
        members,
        ..
    } = shape;
    let db = Db::open(&common, true).await;
    let store = db.store.clone();
    let seed_start = Instant::now();
    let (users, convs) = seed_conversations(&store, n_users, n_convs, members).await;
    let convs_done = seed_start.elapsed();
    let mut raw = db.cleanup.connect().await;
    let bulk_start = Instant::now();
    bulk_messages(&mut raw, &users, &convs, members, n_msgs).await;
    if let Raw::Sqlite(conn) = &mut raw {
        sqlx::query("ANALYZE").execute(&mut *conn).await.expect("analyze");
    }
    let bulk = bulk_start.elapsed();
    drop(raw);
    println!(
        "seeded backend={:?} users={n_users} conversations={n_convs} (in {:.1}s) messages={n_msgs} bulk-inserted in {:.1}s ({:.0}/s)",
        common.backend,
        convs_done.as_secs_f64(),
        bulk.as_secs_f64(),
        n_msgs as f64 / bulk.as_secs_f64()
    );

    let heavy = users[0];
    let typical = users[1];
    // The words a query looks for, by how common they are (Zipf rank: rank 3 is in roughly
    // one message in five, rank 60 in one in fifty, rank 3000 in one in ~2 700).
    let cases: Vec<(&str, String)> = vec![
        ("common word (rank 3)", word(3)),
        ("medium word (rank 60)", word(60)),
        ("rare word (rank 3000)", word(3000)),
        ("two words (ranks 3 and 60)", format!("{} {}", word(3), word(60))),
    ];
    for (label, q) in cases {
        for (who, viewer, filter) in [
            ("typical user", typical, None),
            ("heavy user", heavy, None),
            ("one conversation", typical, Some(convs[1])),
        ] {
            let search = MessageSearch {
                terms: terms(&q),
                conversation: filter,
                offset: 0,
                limit: 21,
            };
            let mut found = 0;
            let warm = Instant::now();
            for _ in 0..(samples / 10).max(1) {
                found = store.search_messages(viewer, &search).await.expect("search").len();
                if warm.elapsed() > budget / 10 {
                    break;
                }
            }
            let mut times = Vec::with_capacity(samples);
            let start = Instant::now();
            for i in 0..samples {
                if i >= 20 && start.elapsed() > budget {
                    break;
                }
                let t = Instant::now();
                store.search_messages(viewer, &search).await.expect("search");
                times.push(t.elapsed());
            }
            times.sort();
            println!(
                "RESULT search backend={:?} query=\"{label}, {who}\" page={found} samples={} p50_us={} p99_us={} max_us={}",
                common.backend,
                times.len(),
                percentile(&times, 0.5).as_micros(),
                percentile(&times, 0.99).as_micros(),
                times.last().copied().unwrap_or_default().as_micros()
            );
        }
    }
    drop(store);
    db.close().await;
}

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        match cli.cmd {
            Cmd::Sends {
                common,
                senders,
                messages,
                conversations,
                no_group_commit,
                runs,
            } => sends(common, senders.max(1), messages, conversations, !no_group_commit, runs).await,
            Cmd::Reads {
                common,
                conversations,
                messages,
                users,
                members,
                samples,
                seeders,
            } => {
                let shape = Shape {
                    conversations,
                    messages,
                    users: users.max(members),
                    members: members.max(1),
                    seeders: seeders.max(1),
                };
                reads(common, shape, samples).await
            }
            Cmd::Search {
                common,
                conversations,
                messages,
                users,
                members,
                samples,
                budget_s,
            } => {
                let shape = Shape {
                    conversations,
                    messages,
                    users: users.max(members),
                    members: members.max(1),
                    seeders: 1,
                };
                search(common, shape, samples, Duration::from_secs(budget_s)).await
            }
        }
    });
}

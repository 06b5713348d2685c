//! Reads are single statements served by indexes: the query plans of the screen-shaped
//! reads (conversation list, history pages, sync pages, idempotency lookups, and the loss
//! watcher's audience of a position range) contain no full
//! scan of a table, on either backend. Together with each read being one statement (one
//! round trip, whatever the number of conversations or members), this is the "no N+1" check.

mod common;

/// A store with searchable data: three conversations of 120 messages, a third of them with
/// the word "kiwi"; answers a member who can read them all and one conversation's id.
async fn searchable(store: &dyn chatico_core::ports::Store) -> (uuid::Uuid, uuid::Uuid) {
    use chatico_core::model::Content;
    use chatico_core::testing::Fx;
    let fx = Fx::new(store);
    let (a, b) = (fx.user("a").await, fx.user("b").await);
    let mut first = None;
    for _ in 0..3 {
        let c = fx.group(&a, &[&b]).await;
        first.get_or_insert(c.id);
        for i in 0..120 {
            let mut m = fx.new_message(c.id, a.id, &format!("k{}-{i}", c.id));
            let word = if i % 3 == 0 { "kiwi" } else { "plum" };
            m.content = Content::text(format!("{word} number {i} with some other words"));
            store.insert_message(&m).await.expect("insert");
        }
    }
    (b.id.0, first.expect("a conversation").0)
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use chatico_store::sqlite::queries as q;
    use chatico_store::{SqliteConfig, SqliteStore};
    use sqlx::Row;

    async fn plan(store: &SqliteStore, sql: &str, params: usize) -> Vec<String> {
        let text = format!("EXPLAIN QUERY PLAN {sql}");
        let mut query = sqlx::query(&text);
        for _ in 0..params {
            query = query.bind(Option::<String>::None);
        }
        query
            .fetch_all(store.read_pool())
            .await
            .expect("explain")
            .iter()
            .map(|r| r.get::<String, _>("detail"))
            .collect()
    }

    #[tokio::test]
    async fn screen_reads_use_indexes() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let store = SqliteStore::open(dir.path().join("plans.db"), SqliteConfig::default())
            .await
            .expect("open");
        for (name, sql, params) in [
            ("list_conversations", q::SQL.list_conversations, 3),
            ("history before", q::HISTORY_BEFORE, 4),
            ("history after", q::SQL.history_after, 4),
            ("sync", q::SQL.sync, 3),
            ("batch read", q::BATCH_READ, 2),
            ("get by client id", q::GET_MESSAGE_BY_CLIENT_ID, 2),
            ("latest pos", q::SQL.latest_pos, 0),
            ("blob shared with", q::SQL.blob_shared_with, 2),
            ("audience", q::AUDIENCE, 2),
        ] {
            let plan = plan(&store, sql, params).await;
            eprintln!("{name}:\n  {}", plan.join("\n  "));
            for step in &plan {
                // `SCAN <x>` without an index is a full scan, unless x is one of the
                // statement's own bounded intermediate results (CTEs, the JSON input list).
                let scanned = step.strip_prefix("SCAN ").map(|r| r.split(' ').next().unwrap_or(""));
                let intermediate = ["p", "latest", "page", "picked", "json_each", "k", "j", "c", "CONSTANT"];
                let full_scan = scanned.is_some_and(|x| !intermediate.contains(&x))
                    && !step.contains("USING INDEX")
                    && !step.contains("USING COVERING INDEX");
                assert!(!full_scan, "{name} does a full scan: {step}\nplan: {plan:#?}");
            }
        }
        // Blob reads must seek the partial blob-key index, not walk the messages of every
        // conversation of the user (which the check above would let pass).
        let plan = plan(&store, q::SQL.blob_shared_with, 2).await;
        assert!(
            plan.iter().any(|s| s.contains("USING INDEX messages_blob_key")),
            "blob shared with: {plan:#?}"
        );
    }

    /// Message search starts from the FTS5 index (the MATCH is the outer loop) and reaches
    /// each hit's mapping row, membership, message and hidden mark by primary key: with and
    /// without the conversation filter, no full scan of any table.
    #[tokio::test]
    async fn search_starts_from_the_fts_index() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let store = SqliteStore::open(dir.path().join("search.db"), SqliteConfig::default())
            .await
            .expect("open");
        let (viewer, conv) = crate::searchable(&store).await;
        sqlx::query("ANALYZE")
            .execute(store.read_pool())
            .await
            .expect("analyze");
        let query = q::fts5_match(&["kiwi".to_owned()]);
        for filter in [None, Some(conv.to_string())] {
            let text = format!("EXPLAIN QUERY PLAN {}", q::SQL.search_messages);
            let plan: Vec<String> = sqlx::query(&text)
                .bind(&query)
                .bind(viewer.to_string())
                .bind(filter.clone())
                .bind(20_i64)
                .bind(0_i64)
                .fetch_all(store.read_pool())
                .await
                .expect("explain")
                .iter()
                .map(|r| r.get::<String, _>("detail"))
                .collect();
            eprintln!("search (filter {filter:?}):\n  {}", plan.join("\n  "));
            let first = plan.iter().find(|s| s.starts_with("SCAN ") || s.starts_with("SEARCH "));
            assert!(
                first.is_some_and(|s| s.starts_with("SCAN f VIRTUAL TABLE INDEX")),
                "the FTS5 index drives the search: {plan:#?}"
            );
            for step in plan
                .iter()
                .filter(|s| s.starts_with("SCAN ") && !s.starts_with("SCAN f VIRTUAL"))
            {
                assert!(
                    step.contains("USING INDEX") || step.contains("USING COVERING INDEX"),
                    "search does a full scan: {step}\nplan: {plan:#?}"
                );
            }
            for table in ["s", "mb", "m", "h"] {
                assert!(
                    plan.iter().any(|s| s.starts_with(&format!("SEARCH {table} USING"))),
                    "{table} is reached by key: {plan:#?}"
                );
            }
        }
        // And it answers: a third of the 360 messages.
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM message_fts WHERE message_fts MATCH '\"kiwi\"'")
            .fetch_one(store.read_pool())
            .await
            .expect("count");
        assert_eq!(n, 120);
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use chatico_store::postgres::queries as q;
    use sqlx::Row;

    use crate::common;

    /// With sequential scans disabled the planner still uses one wherever no index applies,
    /// so a `Seq Scan` left in the plan means a missing index. (On tiny test tables the
    /// planner would rightly prefer seq scans, hence the setting.)
    #[tokio::test]
    async fn screen_reads_use_indexes() {
        let Some(store) = common::pg::store().await else { return };
        let uuid = uuid::Uuid::nil();
        let mut tx = store.pool().begin().await.expect("begin");
        sqlx::query("SET LOCAL enable_seqscan = off")
            .execute(&mut *tx)
            .await
            .expect("set");
        let cases: Vec<(&str, &str, Vec<&str>)> = vec![
            (
                "list_conversations",
                q::SQL.list_conversations,
                vec!["uuid", "bool", "int8"],
            ),
            (
                "history before",
                q::HISTORY_BEFORE,
                vec!["uuid", "uuid", "int8", "int8"],
            ),
            (
                "history after",
                q::SQL.history_after,
                vec!["uuid", "uuid", "int8", "int8"],
            ),
            ("sync", q::SQL.sync, vec!["uuid", "int8", "int8"]),
            ("batch read", q::BATCH_READ, vec!["uuids", "uuids", "texts"]),
            ("get by client id", q::GET_MESSAGE_BY_CLIENT_ID, vec!["uuid", "text"]),
            ("blob shared with", q::SQL.blob_shared_with, vec!["text", "uuid"]),
            ("audience", q::AUDIENCE, vec!["int8", "int8"]),
        ];
        for (name, sql, params) in cases {
            let text = format!("EXPLAIN {sql}");
            let mut query = sqlx::query(&text);
            for p in params {
                query = match p {
                    "uuid" => query.bind(uuid),
                    "bool" => query.bind(false),
                    "int8" => query.bind(10_i64),
                    "text" => query.bind("x"),
                    "uuids" => query.bind(vec![uuid]),
                    _ => query.bind(vec!["x".to_owned()]),
                };
            }
            let plan: Vec<String> = query
                .fetch_all(&mut *tx)
                .await
                .expect("explain")
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect();
            eprintln!("{name}:\n{}", plan.join("\n"));
            for step in &plan {
                assert!(
                    !step.contains("Seq Scan"),
                    "{name} does a full scan: {step}\nplan: {plan:#?}"
                );
            }
            if sql == q::SQL.blob_shared_with {
                // The partial blob-key index, not the messages of every conversation.
                assert!(
                    plan.iter().any(|s| s.contains("messages_blob_key")),
                    "{name}: {plan:#?}"
                );
            }
        }
    }

    /// Message search reads the GIN index over `messages.search` (a bitmap scan of
    /// `messages_search`) when the words are selective, with and without the conversation
    /// filter.
    #[tokio::test]
    async fn search_uses_the_gin_index() {
        let Some(store) = common::pg::store().await else { return };
        let (viewer, conv) = crate::searchable(&store).await;
        // A long conversation where the word is rare: reading the viewer's conversations
        // message by message would be the wrong plan, and the planner must see that (the
        // statistics of a few hundred rows would rightly favour it).
        sqlx::query(
            "INSERT INTO messages (conversation_id, seq, id, sender_id, client_msg_id, content, created_at) \
             SELECT $1, 1000 + g, gen_random_uuid(), $2, 'bulk-' || g, \
                    json_build_object('type', 'text', 'text', \
                        CASE WHEN g % 500 = 0 THEN 'kiwi ' ELSE 'plum ' END || g)::text, g \
               FROM generate_series(1, 20000) g",
        )
        .bind(conv)
        .bind(viewer)
        .execute(store.pool())
        .await
        .expect("bulk insert");
        let mut tx = store.pool().begin().await.expect("begin");
        sqlx::query("ANALYZE messages")
            .execute(&mut *tx)
            .await
            .expect("analyze");
        sqlx::query("SET LOCAL enable_seqscan = off")
            .execute(&mut *tx)
            .await
            .expect("set");
        for filter in [None, Some(conv)] {
            let text = format!("EXPLAIN {}", q::SQL.search_messages);
            let plan: Vec<String> = sqlx::query(&text)
                .bind(q::plain_terms(&["kiwi".to_owned()]))
                .bind(viewer)
                .bind(filter)
                .bind(20_i64)
                .bind(0_i64)
                .fetch_all(&mut *tx)
                .await
                .expect("explain")
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect();
            eprintln!("search (filter {filter:?}):\n{}", plan.join("\n"));
            assert!(
                plan.iter().any(|s| s.contains("Bitmap Index Scan on messages_search")),
                "the GIN index finds the matches: {plan:#?}"
            );
            assert!(!plan.iter().any(|s| s.contains("Seq Scan")), "{plan:#?}");
        }
    }
}

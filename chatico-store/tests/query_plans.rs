//! Reads are single statements served by indexes: the query plans of the screen-shaped
//! reads (conversation list, history pages, sync pages, idempotency lookups, and the loss
//! watcher's audience of a position range) contain no full
//! scan of a table, on either backend. Together with each read being one statement (one
//! round trip, whatever the number of conversations or members), this is the "no N+1" check.

mod common;

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
}

//! The Postgres backend: a connection pool, many writers, commit-ordered sync positions.
//! What is Postgres's own here; the [`Store`](chatico_core::ports::Store) methods are the
//! shared SQL layer's (the `sql` module).
//!
//! ## Why positions are commit-ordered
//!
//! Sync needs: once a reader sees `pos = p`, every change with a smaller pos is committed
//! and visible. A sequence does not give that (a transaction can take pos 7, another pos 8
//! and commit first; a reader then sees 8 without 7 and its cursor skips 7 for ever).
//! Instead every writing transaction takes its positions from the single row of
//! `sync_counter` with `UPDATE sync_counter SET v = v + n RETURNING v` (in
//! [`queries::APPEND_CHANGES`]), which holds that row's lock until the transaction ends:
//!
//! - a second writer's `UPDATE` waits for the first to commit or roll back, then (READ
//!   COMMITTED re-reads the updated row) continues from the committed value; so positions
//!   are handed out in the order the holders commit, and a rolled-back holder gives its
//!   positions back (no gaps either);
//! - Postgres makes a transaction visible (removes it from the proc array) before it
//!   releases its locks, so when the next holder's changes become visible, the previous
//!   holder's already are: a snapshot that contains pos p contains every pos below p.
//!
//! The price is that commits of writing transactions are serialized from the counter update
//! to the commit. To keep that window short the counter is the **last** thing a transaction
//! touches (one statement, then `COMMIT`), and after taking it a transaction only touches
//! rows it has already locked or inserted itself (so it never waits while holding the
//! counter, and the lock order — conversations by id, then members, then the counter — has
//! no cycle). Group commit then puts many messages behind one counter update and one commit.
//!
//! `sync` runs as one statement (one snapshot) that also reads the newest pos, so a page
//! that is not truncated can move the cursor to it safely.
//!
//! ## Connections
//!
//! A pool with bounded size and acquire timeout; connections are tested before use, so
//! after a database restart dead connections are replaced without restarting the process.
//! Every connection-level failure answers [`Error::Unavailable`].

pub mod queries;

use std::collections::BTreeMap;
use std::time::Duration;

use chatico_core::ids::{ConversationId, Timestamp, UserId};
use chatico_core::model::{Message, NewMessage, Role};
use chatico_core::{Error, Result};
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use crate::codec::{ChangeRow, IdColumn, content_json, decode_err};
use crate::db_error::{BatchError, db, map_err, raw};
use crate::sql::{Backend, Dialect, GroupCommit, IdCodec, Query, SqlStore, Stmt, impl_bind};
use queries as q;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How to connect a [`PostgresStore`].
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// Connections kept open when idle.
    pub min_connections: u32,
    /// How long an operation waits for a connection (including reconnecting to a database
    /// that is down) before answering `unavailable`.
    pub acquire_timeout: Duration,
    /// Use this schema (created if missing) instead of the connection's default
    /// `search_path`; lets several stores (e.g. parallel tests) share one database.
    pub schema: Option<String>,
    /// Batch `insert_message` calls into one transaction (group commit). Off = one
    /// transaction per message (the benchmarks' baseline).
    pub group_commit: bool,
    /// The most messages one group-commit transaction takes.
    pub max_batch: usize,
    /// Group-commit transactions in flight at once. Commits are serialized by the sync
    /// counter, but with more than one a batch is read and written while the previous one
    /// commits.
    pub writers: usize,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            max_connections: 16,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            schema: None,
            group_commit: true,
            max_batch: 1024,
            writers: 2,
        }
    }
}

/// The Postgres implementation of [`Store`](chatico_core::ports::Store). Cheap to clone
/// (shared handles).
pub type PostgresStore = SqlStore<PostgresBackend>;

/// The Postgres side of [`PostgresStore`]: its pool.
pub struct PostgresBackend {
    pool: PgPool,
}

impl std::fmt::Debug for SqlStore<PostgresBackend> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

fn valid_schema(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}

impl SqlStore<PostgresBackend> {
    /// Connects with a `postgres://` URL. See [`PostgresStore::connect_with`].
    pub async fn connect(url: &str, config: PostgresConfig) -> Result<Self> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| Error::invalid("postgres url", format!("{e}")))?;
        Self::connect_with(options, config).await
    }

    /// Connects, applies the embedded migrations (refusing a schema newer than this
    /// binary) and starts the group-commit writer (on the current tokio runtime).
    pub async fn connect_with(mut options: PgConnectOptions, config: PostgresConfig) -> Result<Self> {
        if let Some(schema) = &config.schema {
            if !valid_schema(schema) {
                return Err(Error::invalid("schema", "lowercase letters, digits and _ only"));
            }
            let boot = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(config.acquire_timeout)
                .connect_with(options.clone())
                .await
                .map_err(db("connect"))?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(&boot)
                .await
                .map_err(db("create schema"))?;
            boot.close().await;
            options = options.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(2))
            .min_connections(config.min_connections)
            .acquire_timeout(config.acquire_timeout)
            .idle_timeout(Some(Duration::from_secs(300)))
            .test_before_acquire(true)
            .connect_with(options)
            .await
            .map_err(db("connect"))?;
        check_schema_version(&pool).await?;
        MIGRATOR.run(&pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => map_err("migrate", e),
            other => Error::internal(format!("migrating Postgres: {other}")),
        })?;
        tracing::info!(schema = ?config.schema, "Postgres store connected");
        let group_commit = GroupCommit {
            enabled: config.group_commit,
            writers: config.writers,
            max_batch: config.max_batch,
        };
        Ok(SqlStore::start(PostgresBackend { pool }, group_commit))
    }

    /// The pool, for tests and tools that inspect query plans.
    pub fn pool(&self) -> &PgPool {
        &self.backend.pool
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.backend.pool.close().await;
    }
}

/// Refuses a database whose schema is newer than this binary's migrations.
async fn check_schema_version(pool: &PgPool) -> Result<()> {
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
        .await
        .map_err(db("check schema version"))?;
    if exists.is_none() {
        return Ok(());
    }
    let db_version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
        .map_err(db("check schema version"))?;
    let ours = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    match db_version {
        Some(v) if v > ours => Err(Error::unavailable(format!(
            "Postgres database has schema version {v}, newer than this binary supports ({ours}); \
             upgrade ChatiCO to use it"
        ))),
        _ => Ok(()),
    }
}

impl IdColumn for PgRow {
    fn id_column(&self, col: &str) -> Result<Option<Uuid>> {
        self.try_get(col).map_err(|e| decode_err(col, e))
    }
}

impl IdCodec for Postgres {
    fn bind_id<'q>(stmt: Query<'q, Self>, id: Uuid) -> Query<'q, Self> {
        stmt.bind(id)
    }
    fn bind_opt_id<'q>(stmt: Query<'q, Self>, id: Option<Uuid>) -> Query<'q, Self> {
        stmt.bind(id)
    }
    fn bind_ids<'q>(stmt: Query<'q, Self>, ids: &[Uuid]) -> Query<'q, Self> {
        stmt.bind(ids.to_vec())
    }
}

impl_bind!(Postgres);

impl Backend for PostgresBackend {
    type Db = Postgres;
    type Row = PgRow;
    type Stmt<'q> = Stmt<'q, Postgres>;
    const SQL: &'static Dialect = &q::SQL;

    fn stmt(sql: &str) -> Stmt<'_, Postgres> {
        Stmt::new(sql)
    }

    async fn begin(&self) -> sqlx::Result<Transaction<'static, Postgres>> {
        self.pool.begin().await
    }

    async fn reader(&self) -> sqlx::Result<PoolConnection<Postgres>> {
        self.pool.acquire().await
    }

    async fn writer(&self) -> sqlx::Result<PoolConnection<Postgres>> {
        self.pool.acquire().await
    }

    /// Takes the positions from the sync counter (see the module docs).
    async fn append_changes(conn: &mut PgConnection, changes: &[ChangeRow<'_>]) -> sqlx::Result<Vec<i64>> {
        let convs: Vec<Option<Uuid>> = changes.iter().map(|c| c.conversation_id).collect();
        let targets: Vec<Option<Uuid>> = changes.iter().map(|c| c.target_user).collect();
        let seqs: Vec<Option<i64>> = changes.iter().map(|c| c.msg_seq).collect();
        let payloads: Vec<Option<&str>> = changes.iter().map(|c| c.payload).collect();
        let mut positions: Vec<i64> = sqlx::query_scalar(q::APPEND_CHANGES)
            .bind(changes.len() as i64)
            .bind(convs)
            .bind(targets)
            .bind(seqs)
            .bind(payloads)
            .fetch_all(conn)
            .await?;
        positions.sort_unstable();
        Ok(positions)
    }

    async fn batch_read(conn: &mut PgConnection, batch: &[NewMessage]) -> sqlx::Result<Vec<PgRow>> {
        let senders: Vec<Uuid> = batch.iter().map(|m| m.sender_id.0).collect();
        let client_ids: Vec<&str> = batch.iter().map(|m| m.client_msg_id.as_str()).collect();
        let mut conversations: Vec<Uuid> = batch.iter().map(|m| m.conversation_id.0).collect();
        conversations.sort_unstable();
        conversations.dedup();
        sqlx::query(q::BATCH_READ)
            .bind(conversations)
            .bind(senders)
            .bind(client_ids)
            .fetch_all(conn)
            .await
    }

    /// One statement: the messages, each conversation's new `last_seq`, each sender's
    /// watermarks (the highest seq they sent per conversation).
    async fn batch_write(conn: &mut PgConnection, messages: &[Message]) -> Result<(), BatchError> {
        let n = messages.len();
        let (mut c, mut seq, mut id, mut sender, mut cid, mut content, mut reply, mut at) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        // Ordered maps: rows are updated in key order, the order BATCH_READ locked them in.
        // Seqs grow along the batch, so the last one seen is the highest.
        let mut last_seqs = BTreeMap::new();
        let mut marks = BTreeMap::new();
        for m in messages {
            c.push(m.conversation_id.0);
            seq.push(m.seq);
            id.push(m.id.0);
            sender.push(m.sender_id.0);
            cid.push(m.client_msg_id.as_str());
            content.push(m.content.as_ref().map(content_json).transpose()?);
            reply.push(m.reply_to_seq);
            at.push(m.created_at);
            last_seqs.insert(m.conversation_id.0, m.seq);
            marks.insert((m.conversation_id.0, m.sender_id.0), m.seq);
        }
        let (lc, ls): (Vec<Uuid>, Vec<i64>) = last_seqs.into_iter().unzip();
        let (mut mc, mut mu, mut ms) = (Vec::new(), Vec::new(), Vec::new());
        for ((c, u), s) in marks {
            mc.push(c);
            mu.push(u);
            ms.push(s);
        }
        sqlx::query(q::BATCH_WRITE)
            .bind(c)
            .bind(seq)
            .bind(id)
            .bind(sender)
            .bind(cid)
            .bind(content)
            .bind(reply)
            .bind(at)
            .bind(lc)
            .bind(ls)
            .bind(mc)
            .bind(mu)
            .bind(ms)
            .execute(conn)
            .await
            .map_err(raw("batch: write"))?;
        Ok(())
    }

    async fn insert_members(
        conn: &mut PgConnection,
        conversation: ConversationId,
        members: &[(UserId, Role)],
        now: Timestamp,
        joined_seq: i64,
    ) -> sqlx::Result<Vec<Uuid>> {
        let users: Vec<Uuid> = members.iter().map(|(u, _)| u.0).collect();
        let roles: Vec<&str> = members.iter().map(|(_, r)| r.as_str()).collect();
        sqlx::query_scalar(q::INSERT_MEMBERS)
            .bind(conversation.0)
            .bind(now)
            .bind(joined_seq)
            .bind(users)
            .bind(roles)
            .fetch_all(conn)
            .await
    }

    async fn set_joined_pos(
        conn: &mut PgConnection,
        conversation: ConversationId,
        users: &[Uuid],
        positions: &[i64],
    ) -> sqlx::Result<()> {
        sqlx::query(q::SET_JOINED_POS)
            .bind(conversation.0)
            .bind(users)
            .bind(positions)
            .execute(conn)
            .await?;
        Ok(())
    }
}

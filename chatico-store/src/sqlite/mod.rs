//! The SQLite backend: an embedded database file, WAL, one writer.
//!
//! What is SQLite's own here; the [`Store`](chatico_core::ports::Store) methods are the
//! shared SQL layer's (the `sql` module).
//!
//! - **Connections**: one write connection (SQLite has a single writer; every write
//!   transaction runs `BEGIN IMMEDIATE … COMMIT` on it, a one-statement write runs on it
//!   alone) and a small pool of read connections, which WAL lets read committed snapshots
//!   while the writer writes.
//! - **Sync positions**: `changes.pos` is the rowid. With a single writer, rowids are handed
//!   out in commit order, so a reader that sees pos p sees every smaller pos. Row locks need
//!   no statement of their own: `BEGIN IMMEDIATE` holds the database's write lock.
//! - **Group commit**: `insert_message` goes through the `writer` task, which commits
//!   every message queued while the previous batch was being written in one transaction,
//!   using set-based statements over a JSON array (`json_each`), so a batch costs a handful of
//!   statements and one fsync whatever its size. The `messages_advance` trigger (migration
//!   0002) moves `last_seq` and the senders' watermarks as messages are inserted.
//! - **Durability**: see [`SqliteDurability`].

pub mod queries;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chatico_core::ids::{ConversationId, Timestamp, UserId};
use chatico_core::model::{Message, NewMessage, Role};
use chatico_core::{Error, Result};
use serde_json::{Value, json};
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use uuid::Uuid;

use crate::codec::{ChangeRow, IdColumn, content_json, decode_err, parse_uuid};
use crate::db_error::{BatchError, raw};
use crate::sql::{Backend, Dialect, GroupCommit, IdCodec, Query, SqlStore, Stmt, impl_bind};
use queries as q;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// What a commit waits for, i.e. what a power loss can cost. A process crash (SIGKILL,
/// panic, OOM) loses nothing acknowledged in either mode: a committed transaction is in the
/// WAL file, which the OS keeps across the process's death.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteDurability {
    /// `synchronous = FULL`: every commit fsyncs the WAL before it is acknowledged. A power
    /// loss or kernel crash loses nothing acknowledged. With group commit the fsync is paid
    /// once per batch, not per message.
    #[default]
    Full,
    /// `synchronous = NORMAL`: the WAL is fsynced only at checkpoints. Still consistent after
    /// a power loss, but the transactions committed since the last checkpoint (by default up
    /// to ~1000 pages of WAL, i.e. up to a few MB, typically well under a second of traffic)
    /// can be lost even though they were acknowledged.
    Normal,
}

/// How to open a [`SqliteStore`].
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// How much a commit waits for the disk (see [`SqliteDurability`]).
    pub durability: SqliteDurability,
    /// How long a statement waits for a lock held by another process before answering
    /// `unavailable`.
    pub busy_timeout: Duration,
    /// Read connections (WAL readers run concurrently with the writer).
    pub read_connections: u32,
    /// Batch `insert_message` calls into one transaction (group commit). Off = one
    /// transaction per message (the benchmarks' baseline).
    pub group_commit: bool,
    /// The most messages one group-commit transaction takes.
    pub max_batch: usize,
    /// Page cache of each connection (the writer and every reader), in KiB (SQLite's
    /// `cache_size`). Resident memory grows with the data up to about
    /// `(1 + read_connections) × cache_kib`, then stays there; pages beyond it are read
    /// again from the OS page cache, which the kernel shares and reclaims. Default 8 MiB
    /// (40 MiB in all with the 4 default readers). Memory-mapped I/O stays off (`mmap_size =
    /// 0`), so mapped file pages never add to the process's resident memory either.
    pub cache_kib: u32,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            durability: SqliteDurability::Full,
            busy_timeout: Duration::from_secs(5),
            read_connections: 4,
            group_commit: true,
            max_batch: 512,
            cache_kib: 8 * 1024,
        }
    }
}

/// The SQLite implementation of [`Store`](chatico_core::ports::Store). Cheap to clone
/// (shared handles).
pub type SqliteStore = SqlStore<SqliteBackend>;

/// The SQLite side of [`SqliteStore`]: its connections.
pub struct SqliteBackend {
    read: SqlitePool,
    write: SqlitePool,
    path: PathBuf,
}

impl std::fmt::Debug for SqlStore<SqliteBackend> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.backend.path).finish()
    }
}

fn open_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::unavailable(format!("cannot open SQLite database at {}: {e}", path.display()))
}

impl SqlStore<SqliteBackend> {
    /// Opens (creating if missing) the database file at `path`, applies the embedded
    /// migrations and starts the group-commit writer (on the current tokio runtime).
    ///
    /// Fails with an error naming the path if the file cannot be created or written, is not a
    /// SQLite database, or has a schema newer than this binary knows.
    pub async fn open(path: impl AsRef<Path>, config: SqliteConfig) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let sync = match config.durability {
            SqliteDurability::Full => SqliteSynchronous::Full,
            SqliteDurability::Normal => SqliteSynchronous::Normal,
        };
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sync)
            .busy_timeout(config.busy_timeout)
            .foreign_keys(false)
            .pragma("temp_store", "memory")
            // A negative cache_size is in KiB. Bounded per connection so memory does not
            // grow with the database (see `SqliteConfig::cache_kib`).
            .pragma("cache_size", format!("-{}", config.cache_kib.max(64)))
            .pragma("mmap_size", "0")
            // Checkpoint every ~40 MiB of WAL instead of ~4 MiB: a batch touches pages all
            // over the indexes, and each checkpoint copies (and on NORMAL fsyncs) them.
            .pragma("wal_autocheckpoint", "10000");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await
            .map_err(|e| open_error(&path, e))?;
        // A file that is not a database is only noticed on the first real read.
        sqlx::query("SELECT count(*) FROM sqlite_master")
            .execute(&write)
            .await
            .map_err(|e| open_error(&path, e))?;
        check_schema_version(&write, &path).await?;
        MIGRATOR.run(&write).await.map_err(|e| open_error(&path, e))?;
        let read = SqlitePoolOptions::new()
            .max_connections(config.read_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(|e| open_error(&path, e))?;
        tracing::info!(path = %path.display(), durability = ?config.durability, "SQLite store open");
        let group_commit = GroupCommit {
            enabled: config.group_commit,
            // One transaction at a time: SQLite has one writer.
            writers: 1,
            max_batch: config.max_batch,
        };
        Ok(SqlStore::start(SqliteBackend { read, write, path }, group_commit))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.backend.path
    }

    /// The read pool, for tests and tools that inspect query plans.
    pub fn read_pool(&self) -> &SqlitePool {
        &self.backend.read
    }

    /// Closes every connection (the WAL is checkpointed by the last one).
    pub async fn close(&self) {
        self.backend.read.close().await;
        self.backend.write.close().await;
    }
}

/// Refuses a database whose schema is newer than this binary's migrations.
async fn check_schema_version(pool: &SqlitePool, path: &Path) -> Result<()> {
    let has_table: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
            .fetch_optional(pool)
            .await
            .map_err(|e| open_error(path, e))?;
    if has_table.is_none() {
        return Ok(());
    }
    let db_version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
        .map_err(|e| open_error(path, e))?;
    let ours = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    match db_version {
        Some(v) if v > ours => Err(Error::unavailable(format!(
            "SQLite database at {} has schema version {v}, newer than this binary supports ({ours}); \
             upgrade ChatiCO to open it",
            path.display()
        ))),
        _ => Ok(()),
    }
}

impl IdColumn for SqliteRow {
    fn id_column(&self, col: &str) -> Result<Option<Uuid>> {
        let s: Option<String> = self.try_get(col).map_err(|e| decode_err(col, e))?;
        s.map(|s| parse_uuid(col, &s)).transpose()
    }
}

/// Ids as SQLite stores them: lowercase hyphenated text.
fn s(id: &Uuid) -> String {
    id.hyphenated().to_string()
}

/// Ids as one JSON array parameter (read with `json_each`).
fn json_ids(ids: &[Uuid]) -> String {
    Value::Array(ids.iter().map(|u| Value::String(s(u))).collect()).to_string()
}

impl IdCodec for Sqlite {
    fn bind_id<'q>(stmt: Query<'q, Self>, id: Uuid) -> Query<'q, Self> {
        stmt.bind(s(&id))
    }
    fn bind_opt_id<'q>(stmt: Query<'q, Self>, id: Option<Uuid>) -> Query<'q, Self> {
        stmt.bind(id.as_ref().map(s))
    }
    fn bind_ids<'q>(stmt: Query<'q, Self>, ids: &[Uuid]) -> Query<'q, Self> {
        stmt.bind(json_ids(ids))
    }
}

impl_bind!(Sqlite);

impl Backend for SqliteBackend {
    type Db = Sqlite;
    type Row = SqliteRow;
    type Stmt<'q> = Stmt<'q, Sqlite>;
    const SQL: &'static Dialect = &q::SQL;

    fn stmt(sql: &str) -> Stmt<'_, Sqlite> {
        Stmt::new(sql)
    }

    async fn begin(&self) -> sqlx::Result<Transaction<'static, Sqlite>> {
        self.write.begin_with("BEGIN IMMEDIATE").await
    }

    async fn reader(&self) -> sqlx::Result<PoolConnection<Sqlite>> {
        self.read.acquire().await
    }

    async fn writer(&self) -> sqlx::Result<PoolConnection<Sqlite>> {
        self.write.acquire().await
    }

    /// Rowids follow the JSON array's order: positions in commit order (see the module docs).
    async fn append_changes(conn: &mut SqliteConnection, changes: &[ChangeRow<'_>]) -> sqlx::Result<Vec<i64>> {
        let rows: Vec<Value> = changes
            .iter()
            .map(|c| {
                json!([
                    c.conversation_id.as_ref().map(s),
                    c.target_user.as_ref().map(s),
                    c.msg_seq,
                    c.payload
                ])
            })
            .collect();
        let mut positions: Vec<i64> = sqlx::query_scalar(q::APPEND_CHANGES)
            .bind(Value::Array(rows).to_string())
            .fetch_all(conn)
            .await?;
        positions.sort_unstable();
        Ok(positions)
    }

    async fn batch_read(conn: &mut SqliteConnection, batch: &[NewMessage]) -> sqlx::Result<Vec<SqliteRow>> {
        let keys: Vec<Value> = batch
            .iter()
            .map(|m| json!([s(&m.sender_id.0), m.client_msg_id]))
            .collect();
        let conversations: Vec<Uuid> = batch.iter().map(|m| m.conversation_id.0).collect();
        sqlx::query(q::BATCH_READ)
            .bind(Value::Array(keys).to_string())
            .bind(json_ids(&conversations))
            .fetch_all(conn)
            .await
    }

    /// One statement; the `messages_advance` trigger moves `last_seq` and the watermarks.
    async fn batch_write(conn: &mut SqliteConnection, messages: &[Message]) -> Result<(), BatchError> {
        let mut rows = Vec::with_capacity(messages.len());
        for m in messages {
            let content = m.content.as_ref().map(content_json).transpose()?;
            rows.push(json!([
                s(&m.conversation_id.0),
                m.seq,
                s(&m.id.0),
                s(&m.sender_id.0),
                m.client_msg_id,
                content,
                m.reply_to_seq,
                m.created_at
            ]));
        }
        sqlx::query(q::BATCH_INSERT_MESSAGES)
            .bind(Value::Array(rows).to_string())
            .execute(conn)
            .await
            .map_err(raw("batch: insert messages"))?;
        Ok(())
    }

    async fn insert_members(
        conn: &mut SqliteConnection,
        conversation: ConversationId,
        members: &[(UserId, Role)],
        now: Timestamp,
        joined_seq: i64,
    ) -> sqlx::Result<Vec<Uuid>> {
        let rows: Vec<Value> = members.iter().map(|(u, r)| json!([s(&u.0), r.as_str()])).collect();
        let inserted: Vec<String> = sqlx::query_scalar(q::INSERT_MEMBERS)
            .bind(s(&conversation.0))
            .bind(now)
            .bind(joined_seq)
            .bind(Value::Array(rows).to_string())
            .fetch_all(conn)
            .await?;
        inserted
            .iter()
            .map(|u| Uuid::parse_str(u).map_err(|e| sqlx::Error::Decode(Box::new(e))))
            .collect()
    }

    async fn set_joined_pos(
        conn: &mut SqliteConnection,
        conversation: ConversationId,
        users: &[Uuid],
        positions: &[i64],
    ) -> sqlx::Result<()> {
        let rows: Vec<Value> = users.iter().zip(positions).map(|(u, p)| json!([s(u), p])).collect();
        sqlx::query(q::SET_JOINED_POS)
            .bind(s(&conversation.0))
            .bind(Value::Array(rows).to_string())
            .execute(conn)
            .await?;
        Ok(())
    }
}

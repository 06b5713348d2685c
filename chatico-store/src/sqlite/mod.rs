//! The SQLite backend: an embedded database file, WAL, one writer.
//!
//! - **Connections**: one write connection (SQLite has a single writer; every write method
//!   runs `BEGIN IMMEDIATE … COMMIT` on it) and a small pool of read connections, which WAL
//!   lets read committed snapshots while the writer writes.
//! - **Sync positions**: `changes.pos` is the rowid. With a single writer, rowids are handed
//!   out in commit order, so a reader that sees pos p sees every smaller pos.
//! - **Group commit**: `insert_message` goes through the `writer` task, which commits
//!   every message queued while the previous batch was being written in one transaction,
//!   using set-based statements over a JSON array (`json_each`), so a batch costs a handful of
//!   statements and one fsync whatever its size.
//! - **Durability**: see [`SqliteDurability`].

pub mod queries;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chatico_core::ids::{ConversationId, Phone, SessionId, Timestamp, UserId};
use chatico_core::model::{
    BlobMeta, Conversation, ConversationKind, ConversationSummary, HistoryDirection, HistoryQuery, Member, Message,
    NewMessage, ProfilePatch, Role, Session, User,
};
use chatico_core::ports::{NewConversation, Store};
use chatico_core::sync::{Change, ChangeKind, SyncCursor, SyncPage};
use chatico_core::{Error, Result};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use uuid::Uuid;

use crate::codec::{
    self, BatchPlan, NewChange, RowExt, blob_from_row, change_from_row, content_json, conversation_from_row,
    decode_err, kind_str, member_from_row, members_from_json, merge_receipts, message_from_row, name_lower,
    ordered_pair, parse_uuid, purpose_str, session_from_row, user_from_row,
};
use crate::db_error::{BatchError, db, is_unique_violation, map_err, raw};
use crate::writer::{BatchInsert, InsertResult, Writer};
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
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            durability: SqliteDurability::Full,
            busy_timeout: Duration::from_secs(5),
            read_connections: 4,
            group_commit: true,
            max_batch: 512,
        }
    }
}

/// The SQLite implementation of [`Store`]. Cheap to clone (shared handles).
#[derive(Clone)]
pub struct SqliteStore {
    db: Arc<Db>,
    writer: Option<Writer>,
}

struct Db {
    read: SqlitePool,
    write: SqlitePool,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.db.path).finish()
    }
}

fn open_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::unavailable(format!("cannot open SQLite database at {}: {e}", path.display()))
}

impl SqliteStore {
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
            // 64 MiB of page cache per connection (SQLite's default is 2 MiB): the writer
            // touches index pages all over the file.
            .pragma("cache_size", "-65536")
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
        let db = Arc::new(Db { read, write, path });
        let writer = config
            .group_commit
            .then(|| Writer::spawn(db.clone(), 1, config.max_batch, config.max_batch * 4));
        tracing::info!(path = %db.path.display(), durability = ?config.durability, "SQLite store open");
        Ok(SqliteStore { db, writer })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.db.path
    }

    /// The read pool, for tests and tools that inspect query plans.
    pub fn read_pool(&self) -> &SqlitePool {
        &self.db.read
    }

    /// Closes every connection (the WAL is checkpointed by the last one).
    pub async fn close(&self) {
        self.db.read.close().await;
        self.db.write.close().await;
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

impl RowExt for SqliteRow {
    fn uuid(&self, col: &str) -> Result<Uuid> {
        let s: String = self.try_get(col).map_err(|e| decode_err(col, e))?;
        parse_uuid(col, &s)
    }
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>> {
        let s: Option<String> = self.try_get(col).map_err(|e| decode_err(col, e))?;
        s.map(|s| parse_uuid(col, &s)).transpose()
    }
    fn int(&self, col: &str) -> Result<i64> {
        self.try_get(col).map_err(|e| decode_err(col, e))
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>> {
        self.try_get(col).map_err(|e| decode_err(col, e))
    }
    fn text(&self, col: &str) -> Result<String> {
        self.try_get(col).map_err(|e| decode_err(col, e))
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        self.try_get(col).map_err(|e| decode_err(col, e))
    }
    fn boolean(&self, col: &str) -> Result<bool> {
        self.try_get(col).map_err(|e| decode_err(col, e))
    }
}

/// Ids as SQLite stores them: lowercase hyphenated text.
fn s(id: &Uuid) -> String {
    id.hyphenated().to_string()
}

fn json_ids<'a>(ids: impl Iterator<Item = &'a Uuid>) -> String {
    serde_json::Value::Array(ids.map(|u| serde_json::Value::String(s(u))).collect()).to_string()
}

type Tx = Transaction<'static, Sqlite>;

impl Db {
    async fn begin(&self) -> Result<Tx> {
        self.write.begin_with("BEGIN IMMEDIATE").await.map_err(db("begin"))
    }
}

async fn commit(tx: Tx) -> Result<()> {
    tx.commit().await.map_err(db("commit"))
}

/// Appends a change to the log; returns it with its pos.
async fn record(conn: &mut SqliteConnection, c: NewChange) -> Result<Change> {
    let pos: i64 = sqlx::query_scalar(q::INSERT_CHANGE)
        .bind(c.conversation_id.map(|x| s(&x.0)))
        .bind(c.target_user.map(|x| s(&x.0)))
        .bind(c.msg_seq)
        .bind(c.payload.as_deref())
        .fetch_one(conn)
        .await
        .map_err(db("record change"))?;
    Ok(c.at(pos))
}

async fn fetch_message(conn: &mut SqliteConnection, conversation: ConversationId, seq: i64) -> Result<Option<Message>> {
    sqlx::query(q::GET_MESSAGE)
        .bind(s(&conversation.0))
        .bind(seq)
        .fetch_optional(conn)
        .await
        .map_err(db("get message"))?
        .map(|r| message_from_row(&r, ""))
        .transpose()
}

async fn fetch_by_client_id(
    conn: &mut SqliteConnection,
    sender: UserId,
    client_msg_id: &str,
) -> Result<Option<Message>> {
    sqlx::query(q::GET_MESSAGE_BY_CLIENT_ID)
        .bind(s(&sender.0))
        .bind(client_msg_id)
        .fetch_optional(conn)
        .await
        .map_err(db("get message by client id"))?
        .map(|r| message_from_row(&r, ""))
        .transpose()
}

async fn fetch_conversation(conn: &mut SqliteConnection, id: ConversationId) -> Result<Option<Conversation>> {
    sqlx::query(q::GET_CONVERSATION)
        .bind(s(&id.0))
        .fetch_optional(conn)
        .await
        .map_err(db("get conversation"))?
        .map(|r| conversation_from_row(&r))
        .transpose()
}

async fn fetch_member(
    conn: &mut SqliteConnection,
    conversation: ConversationId,
    user: UserId,
) -> Result<Option<Member>> {
    sqlx::query(q::GET_MEMBER)
        .bind(s(&conversation.0))
        .bind(s(&user.0))
        .fetch_optional(conn)
        .await
        .map_err(db("get member"))?
        .map(|r| member_from_row(&r, ""))
        .transpose()
}

impl Db {
    /// One group-commit transaction: read what exists, plan, insert the new messages (the
    /// `messages_advance` trigger moves last_seq and the senders' watermarks) and their
    /// changes, commit.
    async fn try_batch(&self, batch: &[NewMessage]) -> std::result::Result<Vec<InsertResult>, BatchError> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await.map_err(raw("begin"))?;
        let keys = serde_json::Value::Array(
            batch
                .iter()
                .map(|m| serde_json::json!([s(&m.sender_id.0), m.client_msg_id]))
                .collect(),
        )
        .to_string();
        let conv_ids = json_ids(batch.iter().map(|m| &m.conversation_id.0));
        let mut existing = HashMap::new();
        let mut last_seq = HashMap::new();
        for r in sqlx::query(q::BATCH_READ)
            .bind(&keys)
            .bind(&conv_ids)
            .fetch_all(&mut *tx)
            .await
            .map_err(raw("batch: read"))?
        {
            if r.text("kind")? == "m" {
                let m = message_from_row(&r, "")?;
                existing.insert((m.sender_id, m.client_msg_id.clone()), m);
            } else {
                last_seq.insert(ConversationId(r.uuid("conversation_id")?), r.int("seq")?);
            }
        }
        let plan: BatchPlan = codec::plan_batch(batch, &existing, &last_seq);
        let mut positions = Vec::with_capacity(plan.new_messages.len());
        if !plan.new_messages.is_empty() {
            let mut rows = Vec::with_capacity(plan.new_messages.len());
            let mut changes = Vec::with_capacity(plan.new_messages.len());
            for m in &plan.new_messages {
                let content = m.content.as_ref().map(content_json).transpose()?;
                rows.push(serde_json::json!([
                    s(&m.conversation_id.0),
                    m.seq,
                    s(&m.id.0),
                    s(&m.sender_id.0),
                    m.client_msg_id,
                    content,
                    m.reply_to_seq,
                    m.created_at
                ]));
                changes.push(serde_json::json!([s(&m.conversation_id.0), m.seq]));
            }
            sqlx::query(q::BATCH_INSERT_MESSAGES)
                .bind(serde_json::Value::Array(rows).to_string())
                .execute(&mut *tx)
                .await
                .map_err(raw("batch: insert messages"))?;
            let mut pos_of = HashMap::with_capacity(plan.new_messages.len());
            for r in sqlx::query(q::BATCH_INSERT_CHANGES)
                .bind(serde_json::Value::Array(changes).to_string())
                .fetch_all(&mut *tx)
                .await
                .map_err(raw("batch: record changes"))?
            {
                pos_of.insert((r.uuid("conversation_id")?, r.int("msg_seq")?), r.int("pos")?);
            }
            for m in &plan.new_messages {
                positions.push(
                    *pos_of
                        .get(&(m.conversation_id.0, m.seq))
                        .ok_or_else(|| Error::internal("batch change position missing"))?,
                );
            }
        }
        tx.commit().await.map_err(raw("commit"))?;
        Ok(plan.into_results(&positions))
    }
}

impl BatchInsert for Db {
    async fn insert_batch(&self, batch: &[NewMessage]) -> Result<Vec<InsertResult>> {
        self.try_batch(batch).await.map_err(BatchError::into_error)
    }

    async fn insert_one(&self, m: &NewMessage) -> Result<(Message, Option<Change>)> {
        match self.try_batch(std::slice::from_ref(m)).await {
            Ok(mut results) => results
                .pop()
                .unwrap_or_else(|| Err(Error::internal("empty batch result"))),
            // Another process stored the same (sender, client_msg_id) first: the transaction
            // rolled back (seq included); return the stored one.
            Err(e) if e.is_unique_violation() => {
                let mut conn = self.read.acquire().await.map_err(db("acquire"))?;
                fetch_by_client_id(&mut conn, m.sender_id, &m.client_msg_id)
                    .await?
                    .map(|m| (m, None))
                    .ok_or_else(|| Error::internal("unique violation without a stored message"))
            }
            Err(e) => Err(e.into_error()),
        }
    }
}

#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl Store for SqliteStore {
    // ---- users -------------------------------------------------------------------------

    async fn get_or_create_user(
        &self,
        phone: &Phone,
        new_id: UserId,
        display_name: &str,
        now: Timestamp,
    ) -> Result<(User, bool)> {
        let mut tx = self.db.begin().await?;
        let created = sqlx::query(q::INSERT_USER)
            .bind(s(&new_id.0))
            .bind(phone.as_str())
            .bind(display_name)
            .bind(name_lower(display_name))
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("create user"))?;
        let out = match created {
            Some(r) => (user_from_row(&r)?, true),
            None => {
                let r = sqlx::query(q::GET_USER_BY_PHONE)
                    .bind(phone.as_str())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db("get user by phone"))?;
                (user_from_row(&r)?, false)
            }
        };
        commit(tx).await?;
        Ok(out)
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>> {
        sqlx::query(q::GET_USER)
            .bind(s(&id.0))
            .fetch_optional(&self.db.read)
            .await
            .map_err(db("get user"))?
            .map(|r| user_from_row(&r))
            .transpose()
    }

    async fn get_users(&self, ids: &[UserId]) -> Result<Vec<User>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        sqlx::query(q::GET_USERS)
            .bind(json_ids(ids.iter().map(|u| &u.0)))
            .fetch_all(&self.db.read)
            .await
            .map_err(db("get users"))?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn search_users(&self, query: Option<&str>, after: Option<UserId>, limit: u32) -> Result<Vec<User>> {
        sqlx::query(q::SEARCH_USERS)
            .bind(query)
            .bind(query.map(name_lower))
            .bind(after.map(|a| s(&a.0)))
            .bind(i64::from(limit))
            .fetch_all(&self.db.read)
            .await
            .map_err(db("search users"))?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn update_profile(&self, id: UserId, patch: &ProfilePatch) -> Result<User> {
        let mut tx = self.db.begin().await?;
        let row = sqlx::query(q::UPDATE_PROFILE)
            .bind(s(&id.0))
            .bind(patch.display_name.as_deref())
            .bind(patch.display_name.as_deref().map(name_lower))
            .bind(patch.bio.as_deref())
            .bind(patch.avatar_url.is_some())
            .bind(patch.avatar_url.clone().flatten())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("update profile"))?
            .ok_or_else(|| Error::not_found("user"))?;
        let user = user_from_row(&row)?;
        commit(tx).await?;
        Ok(user)
    }

    async fn set_last_seen(&self, id: UserId, at: Timestamp) -> Result<()> {
        let mut tx = self.db.begin().await?;
        let n = sqlx::query(q::SET_LAST_SEEN)
            .bind(s(&id.0))
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(db("set last seen"))?
            .rows_affected();
        if n == 0 {
            return Err(Error::not_found("user"));
        }
        commit(tx).await
    }

    // ---- sessions ----------------------------------------------------------------------

    async fn create_session(&self, session: &Session) -> Result<()> {
        let mut tx = self.db.begin().await?;
        sqlx::query(q::INSERT_SESSION)
            .bind(s(&session.id.0))
            .bind(s(&session.user_id.0))
            .bind(&session.refresh_hash)
            .bind(session.created_at)
            .bind(session.expires_at)
            .bind(session.device.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::conflict("session exists")
                } else {
                    map_err("create session", e)
                }
            })?;
        commit(tx).await
    }

    async fn get_session(&self, id: SessionId) -> Result<Option<Session>> {
        sqlx::query(q::GET_SESSION)
            .bind(s(&id.0))
            .fetch_optional(&self.db.read)
            .await
            .map_err(db("get session"))?
            .map(|r| session_from_row(&r))
            .transpose()
    }

    async fn rotate_session(
        &self,
        id: SessionId,
        old_hash: &str,
        new_hash: &str,
        expires_at: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.db.begin().await?;
        let n = sqlx::query(q::ROTATE_SESSION)
            .bind(s(&id.0))
            .bind(old_hash)
            .bind(new_hash)
            .bind(expires_at)
            .execute(&mut *tx)
            .await
            .map_err(db("rotate session"))?
            .rows_affected();
        commit(tx).await?;
        Ok(n == 1)
    }

    async fn delete_session(&self, id: SessionId) -> Result<bool> {
        let mut tx = self.db.begin().await?;
        let n = sqlx::query(q::DELETE_SESSION)
            .bind(s(&id.0))
            .execute(&mut *tx)
            .await
            .map_err(db("delete session"))?
            .rows_affected();
        commit(tx).await?;
        Ok(n == 1)
    }

    async fn delete_user_sessions(&self, user: UserId) -> Result<u64> {
        let mut tx = self.db.begin().await?;
        let n = sqlx::query(q::DELETE_USER_SESSIONS)
            .bind(s(&user.0))
            .execute(&mut *tx)
            .await
            .map_err(db("delete user sessions"))?
            .rows_affected();
        commit(tx).await?;
        Ok(n)
    }

    // ---- contacts and blocks -----------------------------------------------------------

    async fn add_contact(&self, owner: UserId, contact: UserId, now: Timestamp) -> Result<Option<Change>> {
        self.pair_insert(
            q::INSERT_CONTACT,
            owner,
            contact,
            now,
            ChangeKind::ContactAdded { user_id: contact },
        )
        .await
    }

    async fn remove_contact(&self, owner: UserId, contact: UserId) -> Result<Option<Change>> {
        self.pair_delete(
            q::DELETE_CONTACT,
            owner,
            contact,
            ChangeKind::ContactRemoved { user_id: contact },
        )
        .await
    }

    async fn list_contacts(&self, owner: UserId) -> Result<Vec<User>> {
        self.users_by(q::LIST_CONTACTS, owner).await
    }

    async fn contact_owners(&self, user: UserId) -> Result<Vec<UserId>> {
        self.ids_by(q::CONTACT_OWNERS, user).await
    }

    async fn block(&self, blocker: UserId, blocked: UserId, now: Timestamp) -> Result<Option<Change>> {
        self.pair_insert(
            q::INSERT_BLOCK,
            blocker,
            blocked,
            now,
            ChangeKind::Blocked { user_id: blocked },
        )
        .await
    }

    async fn unblock(&self, blocker: UserId, blocked: UserId) -> Result<Option<Change>> {
        self.pair_delete(
            q::DELETE_BLOCK,
            blocker,
            blocked,
            ChangeKind::Unblocked { user_id: blocked },
        )
        .await
    }

    async fn list_blocked(&self, blocker: UserId) -> Result<Vec<User>> {
        self.users_by(q::LIST_BLOCKED, blocker).await
    }

    async fn is_blocked_either_way(&self, a: UserId, b: UserId) -> Result<bool> {
        let hit: Option<i64> = sqlx::query_scalar(q::IS_BLOCKED_EITHER_WAY)
            .bind(s(&a.0))
            .bind(s(&b.0))
            .fetch_optional(&self.db.read)
            .await
            .map_err(db("is blocked"))?;
        Ok(hit.is_some())
    }

    async fn blocked_either_way(&self, user: UserId) -> Result<Vec<UserId>> {
        self.ids_by(q::BLOCKED_EITHER_WAY, user).await
    }

    // ---- conversations and members -----------------------------------------------------

    async fn create_conversation(&self, new: &NewConversation) -> Result<(Conversation, Vec<Change>)> {
        let mut tx = self.db.begin().await?;
        if new.kind == ConversationKind::Direct {
            let [(a, _), (b, _)] = new.members.as_slice() else {
                return Err(Error::invalid(
                    "members",
                    "a direct conversation has exactly two members",
                ));
            };
            let (lo, hi) = ordered_pair(*a, *b);
            let existing: Option<String> = sqlx::query_scalar(q::FIND_DIRECT_ID)
                .bind(s(&lo.0))
                .bind(s(&hi.0))
                .fetch_optional(&mut *tx)
                .await
                .map_err(db("find direct"))?;
            if let Some(id) = existing {
                let id = ConversationId(parse_uuid("conversation_id", &id)?);
                let conv = fetch_conversation(&mut tx, id)
                    .await?
                    .ok_or_else(|| Error::internal("direct pair without conversation"))?;
                return Ok((conv, Vec::new()));
            }
            sqlx::query(q::INSERT_DIRECT_PAIR)
                .bind(s(&lo.0))
                .bind(s(&hi.0))
                .bind(s(&new.id.0))
                .execute(&mut *tx)
                .await
                .map_err(db("insert direct pair"))?;
        }
        let conversation = Conversation {
            id: new.id,
            kind: new.kind,
            title: new.title.clone(),
            avatar_url: new.avatar_url.clone(),
            created_by: new.created_by,
            created_at: new.created_at,
            last_seq: 0,
        };
        sqlx::query(q::INSERT_CONVERSATION)
            .bind(s(&new.id.0))
            .bind(kind_str(new.kind))
            .bind(new.title.as_deref())
            .bind(new.avatar_url.as_deref())
            .bind(s(&new.created_by.0))
            .bind(new.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::conflict("conversation exists")
                } else {
                    map_err("insert conversation", e)
                }
            })?;
        let mut changes = Vec::with_capacity(new.members.len() + 1);
        for (user, role) in &new.members {
            if fetch_member(&mut tx, new.id, *user).await?.is_some() {
                continue;
            }
            let change = record(
                &mut tx,
                NewChange::conversation(
                    new.id,
                    ChangeKind::MemberJoined {
                        user_id: *user,
                        role: *role,
                    },
                )?,
            )
            .await?;
            insert_member(&mut tx, new.id, *user, *role, new.created_at, 0, change.pos).await?;
            changes.push(change);
        }
        let created = record(
            &mut tx,
            NewChange::conversation(
                new.id,
                ChangeKind::ConversationCreated {
                    conversation: conversation.clone(),
                },
            )?,
        )
        .await?;
        changes.push(created);
        commit(tx).await?;
        Ok((conversation, changes))
    }

    async fn find_direct(&self, a: UserId, b: UserId) -> Result<Option<Conversation>> {
        let (lo, hi) = ordered_pair(a, b);
        sqlx::query(q::FIND_DIRECT)
            .bind(s(&lo.0))
            .bind(s(&hi.0))
            .fetch_optional(&self.db.read)
            .await
            .map_err(db("find direct"))?
            .map(|r| conversation_from_row(&r))
            .transpose()
    }

    async fn get_conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        let mut conn = self.db.read.acquire().await.map_err(db("acquire"))?;
        fetch_conversation(&mut conn, id).await
    }

    async fn get_member(&self, conversation: ConversationId, user: UserId) -> Result<Option<Member>> {
        let mut conn = self.db.read.acquire().await.map_err(db("acquire"))?;
        fetch_member(&mut conn, conversation, user).await
    }

    async fn list_members(&self, conversation: ConversationId) -> Result<Vec<Member>> {
        sqlx::query(q::LIST_MEMBERS)
            .bind(s(&conversation.0))
            .fetch_all(&self.db.read)
            .await
            .map_err(db("list members"))?
            .iter()
            .map(|r| member_from_row(r, ""))
            .collect()
    }

    async fn add_members(
        &self,
        conversation: ConversationId,
        members: &[(UserId, Role)],
        now: Timestamp,
    ) -> Result<(Vec<Member>, Vec<Change>)> {
        let mut tx = self.db.begin().await?;
        let conv = fetch_conversation(&mut tx, conversation)
            .await?
            .ok_or_else(|| Error::not_found("conversation"))?;
        let mut added = Vec::new();
        let mut changes = Vec::new();
        for (user, role) in members {
            if fetch_member(&mut tx, conversation, *user).await?.is_some() {
                continue;
            }
            let change = record(
                &mut tx,
                NewChange::conversation(
                    conversation,
                    ChangeKind::MemberJoined {
                        user_id: *user,
                        role: *role,
                    },
                )?,
            )
            .await?;
            added.push(insert_member(&mut tx, conversation, *user, *role, now, conv.last_seq, change.pos).await?);
            changes.push(change);
        }
        commit(tx).await?;
        Ok((added, changes))
    }

    async fn remove_member(&self, conversation: ConversationId, user: UserId, by: UserId) -> Result<Vec<Change>> {
        let mut tx = self.db.begin().await?;
        let n = sqlx::query(q::DELETE_MEMBER)
            .bind(s(&conversation.0))
            .bind(s(&user.0))
            .execute(&mut *tx)
            .await
            .map_err(db("remove member"))?
            .rows_affected();
        if n == 0 {
            return Ok(Vec::new());
        }
        let kind = ChangeKind::MemberLeft { user_id: user, by };
        let everyone = record(&mut tx, NewChange::conversation(conversation, kind.clone())?).await?;
        let removed = record(&mut tx, NewChange::targeted(user, Some(conversation), kind)?).await?;
        commit(tx).await?;
        Ok(vec![everyone, removed])
    }

    async fn set_role(
        &self,
        conversation: ConversationId,
        user: UserId,
        role: Role,
    ) -> Result<(Member, Option<Change>)> {
        let mut tx = self.db.begin().await?;
        let before = fetch_member(&mut tx, conversation, user)
            .await?
            .ok_or_else(|| Error::not_found("member"))?;
        if before.role == role {
            return Ok((before, None));
        }
        let member = sqlx::query(q::SET_ROLE)
            .bind(s(&conversation.0))
            .bind(s(&user.0))
            .bind(role.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("set role"))?
            .map(|r| member_from_row(&r, ""))
            .transpose()?
            .ok_or_else(|| Error::not_found("member"))?;
        let change = record(
            &mut tx,
            NewChange::conversation(conversation, ChangeKind::RoleChanged { user_id: user, role })?,
        )
        .await?;
        commit(tx).await?;
        Ok((member, Some(change)))
    }

    async fn set_archived(
        &self,
        conversation: ConversationId,
        user: UserId,
        archived: bool,
    ) -> Result<(Member, Option<Change>)> {
        let mut tx = self.db.begin().await?;
        let mut member = fetch_member(&mut tx, conversation, user)
            .await?
            .ok_or_else(|| Error::not_found("member"))?;
        if member.archived == archived {
            return Ok((member, None));
        }
        sqlx::query(q::SET_ARCHIVED)
            .bind(s(&conversation.0))
            .bind(s(&user.0))
            .bind(archived)
            .execute(&mut *tx)
            .await
            .map_err(db("set archived"))?;
        let change = record(
            &mut tx,
            NewChange::targeted(user, Some(conversation), ChangeKind::Archived { archived })?,
        )
        .await?;
        commit(tx).await?;
        member.archived = archived;
        Ok((member, Some(change)))
    }

    async fn update_conversation(
        &self,
        conversation: ConversationId,
        title: Option<String>,
        avatar_url: Option<Option<String>>,
    ) -> Result<(Conversation, Option<Change>)> {
        let mut tx = self.db.begin().await?;
        let before = fetch_conversation(&mut tx, conversation)
            .await?
            .ok_or_else(|| Error::not_found("conversation"))?;
        let conv = sqlx::query(q::UPDATE_CONVERSATION)
            .bind(s(&conversation.0))
            .bind(title.as_deref())
            .bind(avatar_url.is_some())
            .bind(avatar_url.clone().flatten())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("update conversation"))?
            .map(|r| conversation_from_row(&r))
            .transpose()?
            .ok_or_else(|| Error::not_found("conversation"))?;
        if (&conv.title, &conv.avatar_url) == (&before.title, &before.avatar_url) {
            return Ok((conv, None));
        }
        let change = record(
            &mut tx,
            NewChange::conversation(
                conversation,
                ChangeKind::ConversationUpdated {
                    title: conv.title.clone(),
                    avatar_url: conv.avatar_url.clone(),
                },
            )?,
        )
        .await?;
        commit(tx).await?;
        Ok((conv, Some(change)))
    }

    async fn list_conversations(&self, user: UserId, archived: bool, limit: u32) -> Result<Vec<ConversationSummary>> {
        sqlx::query(q::LIST_CONVERSATIONS)
            .bind(s(&user.0))
            .bind(archived)
            .bind(i64::from(limit))
            .fetch_all(&self.db.read)
            .await
            .map_err(db("list conversations"))?
            .iter()
            .map(summary_from_row)
            .collect()
    }

    // ---- messages ----------------------------------------------------------------------

    async fn insert_message(&self, message: &NewMessage) -> Result<(Message, Option<Change>)> {
        match &self.writer {
            Some(w) => w.insert(message.clone()).await,
            None => self.db.insert_one(message).await,
        }
    }

    async fn get_message(&self, conversation: ConversationId, seq: i64) -> Result<Option<Message>> {
        let mut conn = self.db.read.acquire().await.map_err(db("acquire"))?;
        fetch_message(&mut conn, conversation, seq).await
    }

    async fn history(&self, conversation: ConversationId, viewer: UserId, query: HistoryQuery) -> Result<Vec<Message>> {
        let (sql, anchor) = match query.direction {
            HistoryDirection::Before => (q::HISTORY_BEFORE, query.anchor.unwrap_or(i64::MAX)),
            HistoryDirection::After => (q::HISTORY_AFTER, query.anchor.unwrap_or(0)),
        };
        let mut page = sqlx::query(sql)
            .bind(s(&conversation.0))
            .bind(s(&viewer.0))
            .bind(anchor)
            .bind(i64::from(query.limit))
            .fetch_all(&self.db.read)
            .await
            .map_err(db("history"))?
            .iter()
            .map(|r| message_from_row(r, ""))
            .collect::<Result<Vec<_>>>()?;
        if query.direction == HistoryDirection::Before {
            page.reverse();
        }
        Ok(page)
    }

    async fn delete_message_for_everyone(
        &self,
        conversation: ConversationId,
        seq: i64,
        now: Timestamp,
    ) -> Result<(Message, Option<Change>)> {
        let mut tx = self.db.begin().await?;
        let mut message = fetch_message(&mut tx, conversation, seq)
            .await?
            .ok_or_else(|| Error::not_found("message"))?;
        if message.deleted_at.is_some() {
            return Ok((message, None));
        }
        sqlx::query(q::TOMBSTONE_MESSAGE)
            .bind(s(&conversation.0))
            .bind(seq)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db("delete message"))?;
        let change = record(
            &mut tx,
            NewChange::conversation(conversation, ChangeKind::MessageDeleted { seq, deleted_at: now })?,
        )
        .await?;
        commit(tx).await?;
        message.content = None;
        message.deleted_at = Some(now);
        Ok((message, Some(change)))
    }

    async fn hide_message(&self, user: UserId, conversation: ConversationId, seq: i64) -> Result<Option<Change>> {
        let mut tx = self.db.begin().await?;
        if fetch_message(&mut tx, conversation, seq).await?.is_none() {
            return Err(Error::not_found("message"));
        }
        let n = sqlx::query(q::HIDE_MESSAGE)
            .bind(s(&user.0))
            .bind(s(&conversation.0))
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(db("hide message"))?
            .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        let change = record(
            &mut tx,
            NewChange::targeted(user, Some(conversation), ChangeKind::MessageHidden { seq })?,
        )
        .await?;
        commit(tx).await?;
        Ok(Some(change))
    }

    async fn update_receipts(
        &self,
        conversation: ConversationId,
        user: UserId,
        delivered: Option<i64>,
        read: Option<i64>,
    ) -> Result<(Member, Option<Change>)> {
        let mut tx = self.db.begin().await?;
        let mut member = fetch_member(&mut tx, conversation, user)
            .await?
            .ok_or_else(|| Error::not_found("member"))?;
        let last_seq: i64 = sqlx::query_scalar(q::GET_LAST_SEQ)
            .bind(s(&conversation.0))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("get last seq"))?
            .ok_or_else(|| Error::not_found("conversation"))?;
        let (d, r) = merge_receipts(member.delivered_seq, member.read_seq, delivered, read, last_seq);
        if (d, r) == (member.delivered_seq, member.read_seq) {
            return Ok((member, None));
        }
        sqlx::query(q::SET_RECEIPTS)
            .bind(s(&conversation.0))
            .bind(s(&user.0))
            .bind(d)
            .bind(r)
            .execute(&mut *tx)
            .await
            .map_err(db("update receipts"))?;
        let change = record(
            &mut tx,
            NewChange::conversation(
                conversation,
                ChangeKind::Receipt {
                    user_id: user,
                    delivered_seq: d,
                    read_seq: r,
                },
            )?,
        )
        .await?;
        commit(tx).await?;
        member.delivered_seq = d;
        member.read_seq = r;
        Ok((member, Some(change)))
    }

    // ---- blobs -------------------------------------------------------------------------

    async fn insert_blob(&self, meta: &BlobMeta) -> Result<()> {
        let mut tx = self.db.begin().await?;
        sqlx::query(q::INSERT_BLOB)
            .bind(&meta.key)
            .bind(s(&meta.owner_id.0))
            .bind(&meta.content_type)
            .bind(i64::try_from(meta.size).map_err(|_| Error::invalid("size", "too large"))?)
            .bind(meta.width.map(i64::from))
            .bind(meta.height.map(i64::from))
            .bind(purpose_str(meta.purpose))
            .bind(meta.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::conflict("blob key exists")
                } else {
                    map_err("insert blob", e)
                }
            })?;
        commit(tx).await
    }

    async fn get_blob(&self, key: &str) -> Result<Option<BlobMeta>> {
        sqlx::query(q::GET_BLOB)
            .bind(key)
            .fetch_optional(&self.db.read)
            .await
            .map_err(db("get blob"))?
            .map(|r| blob_from_row(&r))
            .transpose()
    }

    async fn delete_blob(&self, key: &str) -> Result<bool> {
        let mut tx = self.db.begin().await?;
        let n = sqlx::query(q::DELETE_BLOB)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(db("delete blob"))?
            .rows_affected();
        commit(tx).await?;
        Ok(n == 1)
    }

    async fn blob_shared_with(&self, key: &str, user: UserId) -> Result<bool> {
        sqlx::query_scalar::<_, bool>(q::BLOB_SHARED_WITH)
            .bind(key)
            .bind(s(&user.0))
            .fetch_one(&self.db.read)
            .await
            .map_err(db("blob shared with"))
    }

    // ---- sync --------------------------------------------------------------------------

    async fn sync(&self, user: UserId, since: SyncCursor, limit: u32) -> Result<SyncPage> {
        let rows = sqlx::query(q::SYNC)
            .bind(s(&user.0))
            .bind(since)
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.db.read)
            .await
            .map_err(db("sync"))?;
        sync_page(&rows, since, limit)
    }

    async fn latest_pos(&self) -> Result<SyncCursor> {
        sqlx::query_scalar(q::LATEST_POS)
            .fetch_one(&self.db.read)
            .await
            .map_err(db("latest pos"))
    }
}

async fn insert_member(
    conn: &mut SqliteConnection,
    conversation: ConversationId,
    user: UserId,
    role: Role,
    now: Timestamp,
    joined_seq: i64,
    joined_pos: i64,
) -> Result<Member> {
    sqlx::query(q::INSERT_MEMBER)
        .bind(s(&conversation.0))
        .bind(s(&user.0))
        .bind(role.as_str())
        .bind(now)
        .bind(joined_seq)
        .bind(joined_pos)
        .execute(conn)
        .await
        .map_err(db("insert member"))?;
    Ok(Member {
        conversation_id: conversation,
        user_id: user,
        role,
        archived: false,
        delivered_seq: joined_seq,
        read_seq: joined_seq,
        joined_at: now,
        joined_seq,
    })
}

/// Builds a page from the SYNC rows (`latest` on every row; an empty page is one row whose
/// `pos` is NULL). Not limited: the cursor moves to the newest pos read in the same
/// statement, since every change the user may see up to it was returned.
fn sync_page(rows: &[SqliteRow], since: SyncCursor, limit: u32) -> Result<SyncPage> {
    let latest = match rows.first() {
        Some(r) => r.int("latest")?,
        None => since,
    };
    let mut changes = Vec::with_capacity(rows.len().min(limit as usize));
    let mut limited = false;
    for r in rows {
        if r.opt_int("pos")?.is_none() {
            continue;
        }
        if changes.len() == limit as usize {
            limited = true;
            break;
        }
        changes.push(change_from_row(r)?);
    }
    let next = if limited {
        changes.last().map_or(since, |c| c.pos)
    } else {
        since.max(latest)
    };
    Ok(SyncPage { changes, next, limited })
}

fn summary_from_row(r: &SqliteRow) -> Result<ConversationSummary> {
    let conversation = conversation_from_row(r)?;
    let me = member_from_row(r, "me_")?;
    let last_message = match r.opt_int("m_seq")? {
        Some(_) => Some(message_from_row(r, "m_")?),
        None => None,
    };
    let members = members_from_json(&r.text("members_json")?)?;
    Ok(ConversationSummary {
        unread: (conversation.last_seq - me.read_seq).max(0),
        conversation,
        me,
        last_message,
        members,
    })
}

impl SqliteStore {
    async fn pair_insert(
        &self,
        sql: &str,
        a: UserId,
        b: UserId,
        now: Timestamp,
        kind: ChangeKind,
    ) -> Result<Option<Change>> {
        let mut tx = self.db.begin().await?;
        let n = sqlx::query(sql)
            .bind(s(&a.0))
            .bind(s(&b.0))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db("insert pair"))?
            .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        let change = record(&mut tx, NewChange::targeted(a, None, kind)?).await?;
        commit(tx).await?;
        Ok(Some(change))
    }

    async fn pair_delete(&self, sql: &str, a: UserId, b: UserId, kind: ChangeKind) -> Result<Option<Change>> {
        let mut tx = self.db.begin().await?;
        let n = sqlx::query(sql)
            .bind(s(&a.0))
            .bind(s(&b.0))
            .execute(&mut *tx)
            .await
            .map_err(db("delete pair"))?
            .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        let change = record(&mut tx, NewChange::targeted(a, None, kind)?).await?;
        commit(tx).await?;
        Ok(Some(change))
    }

    async fn users_by(&self, sql: &str, id: UserId) -> Result<Vec<User>> {
        sqlx::query(sql)
            .bind(s(&id.0))
            .fetch_all(&self.db.read)
            .await
            .map_err(db("list users"))?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn ids_by(&self, sql: &str, id: UserId) -> Result<Vec<UserId>> {
        sqlx::query_scalar::<_, String>(sql)
            .bind(s(&id.0))
            .fetch_all(&self.db.read)
            .await
            .map_err(db("list ids"))?
            .iter()
            .map(|v| parse_uuid("id", v).map(UserId))
            .collect()
    }
}

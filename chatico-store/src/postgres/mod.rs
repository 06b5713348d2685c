//! The Postgres backend: a connection pool, many writers, commit-ordered sync positions.
//!
//! ## Why positions are commit-ordered
//!
//! Sync needs: once a reader sees `pos = p`, every change with a smaller pos is committed
//! and visible. A sequence does not give that (a transaction can take pos 7, another pos 8
//! and commit first; a reader then sees 8 without 7 and its cursor skips 7 for ever).
//! Instead every writing transaction takes its positions from the single row of
//! `sync_counter` with `UPDATE sync_counter SET v = v + n RETURNING v` (in
//! [`queries::RECORD_CHANGES`]), which holds that row's lock until the transaction ends:
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

use std::collections::HashMap;
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
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use crate::codec::{
    self, NewChange, RowExt, blob_from_row, change_from_row, content_json, conversation_from_row, decode_err, kind_str,
    member_from_row, members_from_json, merge_receipts, message_from_row, name_lower, ordered_pair, purpose_str,
    session_from_row, user_from_row,
};
use crate::db_error::{BatchError, db, is_unique_violation, map_err, raw};
use crate::writer::{BatchInsert, InsertResult, Writer};
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

/// The Postgres implementation of [`Store`]. Cheap to clone (shared handles).
#[derive(Clone)]
pub struct PostgresStore {
    db: Arc<Db>,
    writer: Option<Writer>,
}

struct Db {
    pool: PgPool,
}

impl std::fmt::Debug for PostgresStore {
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

impl PostgresStore {
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
        let db = Arc::new(Db { pool });
        let writer = config
            .group_commit
            .then(|| Writer::spawn(db.clone(), config.writers, config.max_batch, config.max_batch * 4));
        tracing::info!(schema = ?config.schema, "Postgres store connected");
        Ok(PostgresStore { db, writer })
    }

    /// The pool, for tests and tools that inspect query plans.
    pub fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.db.pool.close().await;
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

impl RowExt for PgRow {
    fn uuid(&self, col: &str) -> Result<Uuid> {
        self.try_get(col).map_err(|e| decode_err(col, e))
    }
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>> {
        self.try_get(col).map_err(|e| decode_err(col, e))
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

type Tx = Transaction<'static, Postgres>;

impl Db {
    async fn begin(&self) -> Result<Tx> {
        self.pool.begin().await.map_err(db("begin"))
    }
}

async fn commit(tx: Tx) -> Result<()> {
    tx.commit().await.map_err(db("commit"))
}

/// Appends changes to the log as the transaction's last write (takes the sync counter; see
/// the module docs); returns them with their positions, in order.
async fn record_all(conn: &mut PgConnection, changes: Vec<NewChange>) -> Result<Vec<Change>> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let convs: Vec<Option<Uuid>> = changes.iter().map(|c| c.conversation_id.map(|x| x.0)).collect();
    let targets: Vec<Option<Uuid>> = changes.iter().map(|c| c.target_user.map(|x| x.0)).collect();
    let seqs: Vec<Option<i64>> = changes.iter().map(|c| c.msg_seq).collect();
    let payloads: Vec<Option<String>> = changes.iter().map(|c| c.payload.clone()).collect();
    let mut pos: Vec<i64> = sqlx::query_scalar(q::RECORD_CHANGES)
        .bind(changes.len() as i64)
        .bind(convs)
        .bind(targets)
        .bind(seqs)
        .bind(payloads)
        .fetch_all(conn)
        .await
        .map_err(db("record changes"))?;
    pos.sort_unstable();
    if pos.len() != changes.len() {
        return Err(Error::internal("sync counter returned the wrong number of positions"));
    }
    Ok(changes.into_iter().zip(pos).map(|(c, p)| c.at(p)).collect())
}

async fn fetch_message(conn: &mut PgConnection, conversation: ConversationId, seq: i64) -> Result<Option<Message>> {
    sqlx::query(q::GET_MESSAGE)
        .bind(conversation.0)
        .bind(seq)
        .fetch_optional(conn)
        .await
        .map_err(db("get message"))?
        .map(|r| message_from_row(&r, ""))
        .transpose()
}

async fn fetch_conversation(conn: &mut PgConnection, sql: &str, id: ConversationId) -> Result<Option<Conversation>> {
    sqlx::query(sql)
        .bind(id.0)
        .fetch_optional(conn)
        .await
        .map_err(db("get conversation"))?
        .map(|r| conversation_from_row(&r))
        .transpose()
}

async fn fetch_member(
    conn: &mut PgConnection,
    sql: &str,
    conversation: ConversationId,
    user: UserId,
) -> Result<Option<Member>> {
    sqlx::query(sql)
        .bind(conversation.0)
        .bind(user.0)
        .fetch_optional(conn)
        .await
        .map_err(db("get member"))?
        .map(|r| member_from_row(&r, ""))
        .transpose()
}

/// [`record_all`] for one change.
async fn record_one(conn: &mut PgConnection, change: NewChange) -> Result<Change> {
    record_all(conn, vec![change])
        .await?
        .pop()
        .ok_or_else(|| Error::internal("no position recorded"))
}

impl Db {
    async fn try_batch(&self, batch: &[NewMessage]) -> std::result::Result<Vec<InsertResult>, BatchError> {
        let mut tx = self.pool.begin().await.map_err(raw("begin"))?;
        let senders: Vec<Uuid> = batch.iter().map(|m| m.sender_id.0).collect();
        let client_ids: Vec<&str> = batch.iter().map(|m| m.client_msg_id.as_str()).collect();
        let mut conv_ids: Vec<Uuid> = batch.iter().map(|m| m.conversation_id.0).collect();
        conv_ids.sort_unstable();
        conv_ids.dedup();
        let mut existing = HashMap::new();
        let mut last_seq = HashMap::new();
        for r in sqlx::query(q::BATCH_READ)
            .bind(&conv_ids)
            .bind(&senders)
            .bind(&client_ids)
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
        let plan = codec::plan_batch(batch, &existing, &last_seq);
        let mut positions = Vec::with_capacity(plan.new_messages.len());
        if !plan.new_messages.is_empty() {
            let n = plan.new_messages.len();
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
            let mut changes = Vec::with_capacity(n);
            for m in &plan.new_messages {
                c.push(m.conversation_id.0);
                seq.push(m.seq);
                id.push(m.id.0);
                sender.push(m.sender_id.0);
                cid.push(m.client_msg_id.as_str());
                content.push(m.content.as_ref().map(content_json).transpose()?);
                reply.push(m.reply_to_seq);
                at.push(m.created_at);
                changes.push(NewChange::message(m));
            }
            let (lc, ls): (Vec<Uuid>, Vec<i64>) = plan.last_seqs.iter().map(|(c, s)| (c.0, *s)).unzip();
            let mut mc = Vec::with_capacity(plan.sender_marks.len());
            let mut mu = Vec::with_capacity(plan.sender_marks.len());
            let mut ms = Vec::with_capacity(plan.sender_marks.len());
            for (c, u, s) in &plan.sender_marks {
                mc.push(c.0);
                mu.push(u.0);
                ms.push(*s);
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
                .execute(&mut *tx)
                .await
                .map_err(raw("batch: write"))?;
            positions = record_all(&mut tx, changes).await?.iter().map(|c| c.pos).collect();
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
            // Another node stored the same (sender, client_msg_id) between our check and our
            // insert: the transaction rolled back (seq included); return the stored one.
            Err(e) if e.is_unique_violation() => {
                let mut conn = self.pool.acquire().await.map_err(db("acquire"))?;
                sqlx::query(q::GET_MESSAGE_BY_CLIENT_ID)
                    .bind(m.sender_id.0)
                    .bind(&m.client_msg_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db("get message by client id"))?
                    .map(|r| message_from_row(&r, "").map(|m| (m, None)))
                    .unwrap_or_else(|| Err(Error::internal("unique violation without a stored message")))
            }
            Err(e) => Err(e.into_error()),
        }
    }
}

#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl Store for PostgresStore {
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
            .bind(new_id.0)
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
            .bind(id.0)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db("get user"))?
            .map(|r| user_from_row(&r))
            .transpose()
    }

    async fn get_users(&self, ids: &[UserId]) -> Result<Vec<User>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = ids.iter().map(|u| u.0).collect();
        sqlx::query(q::GET_USERS)
            .bind(ids)
            .fetch_all(&self.db.pool)
            .await
            .map_err(db("get users"))?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn search_users(&self, query: Option<&str>, after: Option<UserId>, limit: u32) -> Result<Vec<User>> {
        sqlx::query(q::SEARCH_USERS)
            .bind(query.map(name_lower))
            .bind(after.map(|a| a.0))
            .bind(i64::from(limit))
            .fetch_all(&self.db.pool)
            .await
            .map_err(db("search users"))?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn update_profile(&self, id: UserId, patch: &ProfilePatch) -> Result<User> {
        let row = sqlx::query(q::UPDATE_PROFILE)
            .bind(id.0)
            .bind(patch.display_name.as_deref())
            .bind(patch.display_name.as_deref().map(name_lower))
            .bind(patch.bio.as_deref())
            .bind(patch.avatar_url.is_some())
            .bind(patch.avatar_url.clone().flatten())
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db("update profile"))?
            .ok_or_else(|| Error::not_found("user"))?;
        user_from_row(&row)
    }

    async fn set_last_seen(&self, id: UserId, at: Timestamp) -> Result<()> {
        let n = sqlx::query(q::SET_LAST_SEEN)
            .bind(id.0)
            .bind(at)
            .execute(&self.db.pool)
            .await
            .map_err(db("set last seen"))?
            .rows_affected();
        if n == 0 {
            return Err(Error::not_found("user"));
        }
        Ok(())
    }

    // ---- sessions ----------------------------------------------------------------------

    async fn create_session(&self, session: &Session) -> Result<()> {
        sqlx::query(q::INSERT_SESSION)
            .bind(session.id.0)
            .bind(session.user_id.0)
            .bind(&session.refresh_hash)
            .bind(session.created_at)
            .bind(session.expires_at)
            .bind(session.device.as_deref())
            .execute(&self.db.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::conflict("session exists")
                } else {
                    map_err("create session", e)
                }
            })?;
        Ok(())
    }

    async fn get_session(&self, id: SessionId) -> Result<Option<Session>> {
        sqlx::query(q::GET_SESSION)
            .bind(id.0)
            .fetch_optional(&self.db.pool)
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
        let n = sqlx::query(q::ROTATE_SESSION)
            .bind(id.0)
            .bind(old_hash)
            .bind(new_hash)
            .bind(expires_at)
            .execute(&self.db.pool)
            .await
            .map_err(db("rotate session"))?
            .rows_affected();
        Ok(n == 1)
    }

    async fn delete_session(&self, id: SessionId) -> Result<bool> {
        let n = sqlx::query(q::DELETE_SESSION)
            .bind(id.0)
            .execute(&self.db.pool)
            .await
            .map_err(db("delete session"))?
            .rows_affected();
        Ok(n == 1)
    }

    async fn delete_user_sessions(&self, user: UserId) -> Result<u64> {
        let n = sqlx::query(q::DELETE_USER_SESSIONS)
            .bind(user.0)
            .execute(&self.db.pool)
            .await
            .map_err(db("delete user sessions"))?
            .rows_affected();
        Ok(n)
    }

    // ---- contacts and blocks -----------------------------------------------------------

    async fn add_contact(&self, owner: UserId, contact: UserId, now: Timestamp) -> Result<Option<Change>> {
        self.pair_write(
            q::INSERT_CONTACT,
            owner,
            contact,
            Some(now),
            ChangeKind::ContactAdded { user_id: contact },
        )
        .await
    }

    async fn remove_contact(&self, owner: UserId, contact: UserId) -> Result<Option<Change>> {
        self.pair_write(
            q::DELETE_CONTACT,
            owner,
            contact,
            None,
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
        self.pair_write(
            q::INSERT_BLOCK,
            blocker,
            blocked,
            Some(now),
            ChangeKind::Blocked { user_id: blocked },
        )
        .await
    }

    async fn unblock(&self, blocker: UserId, blocked: UserId) -> Result<Option<Change>> {
        self.pair_write(
            q::DELETE_BLOCK,
            blocker,
            blocked,
            None,
            ChangeKind::Unblocked { user_id: blocked },
        )
        .await
    }

    async fn list_blocked(&self, blocker: UserId) -> Result<Vec<User>> {
        self.users_by(q::LIST_BLOCKED, blocker).await
    }

    async fn is_blocked_either_way(&self, a: UserId, b: UserId) -> Result<bool> {
        let hit: Option<i64> = sqlx::query_scalar(q::IS_BLOCKED_EITHER_WAY)
            .bind(a.0)
            .bind(b.0)
            .fetch_optional(&self.db.pool)
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
            // Inserting the pair first makes a concurrent creator of the same pair wait for
            // us and then find ours.
            let n = sqlx::query(q::INSERT_DIRECT_PAIR)
                .bind(lo.0)
                .bind(hi.0)
                .bind(new.id.0)
                .execute(&mut *tx)
                .await
                .map_err(db("insert direct pair"))?
                .rows_affected();
            if n == 0 {
                drop(tx);
                let existing = sqlx::query(q::FIND_DIRECT)
                    .bind(lo.0)
                    .bind(hi.0)
                    .fetch_optional(&self.db.pool)
                    .await
                    .map_err(db("find direct"))?
                    .map(|r| conversation_from_row(&r))
                    .transpose()?
                    .ok_or_else(|| Error::internal("direct pair without conversation"))?;
                return Ok((existing, Vec::new()));
            }
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
            .bind(new.id.0)
            .bind(kind_str(new.kind))
            .bind(new.title.as_deref())
            .bind(new.avatar_url.as_deref())
            .bind(new.created_by.0)
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
        let added = insert_members(&mut tx, new.id, &new.members, new.created_at, 0).await?;
        let mut changes = Vec::with_capacity(added.len() + 1);
        for (user, role) in &added {
            changes.push(NewChange::conversation(
                new.id,
                ChangeKind::MemberJoined {
                    user_id: *user,
                    role: *role,
                },
            )?);
        }
        changes.push(NewChange::conversation(
            new.id,
            ChangeKind::ConversationCreated {
                conversation: conversation.clone(),
            },
        )?);
        let changes = record_all(&mut tx, changes).await?;
        set_joined_pos(&mut tx, new.id, &added, &changes).await?;
        commit(tx).await?;
        Ok((conversation, changes))
    }

    async fn find_direct(&self, a: UserId, b: UserId) -> Result<Option<Conversation>> {
        let (lo, hi) = ordered_pair(a, b);
        sqlx::query(q::FIND_DIRECT)
            .bind(lo.0)
            .bind(hi.0)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db("find direct"))?
            .map(|r| conversation_from_row(&r))
            .transpose()
    }

    async fn get_conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        let mut conn = self.db.pool.acquire().await.map_err(db("acquire"))?;
        fetch_conversation(&mut conn, q::GET_CONVERSATION, id).await
    }

    async fn get_member(&self, conversation: ConversationId, user: UserId) -> Result<Option<Member>> {
        let mut conn = self.db.pool.acquire().await.map_err(db("acquire"))?;
        fetch_member(&mut conn, q::GET_MEMBER, conversation, user).await
    }

    async fn list_members(&self, conversation: ConversationId) -> Result<Vec<Member>> {
        sqlx::query(q::LIST_MEMBERS)
            .bind(conversation.0)
            .fetch_all(&self.db.pool)
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
        // Locked so no message commits between reading last_seq and joining.
        let conv = fetch_conversation(&mut tx, q::LOCK_CONVERSATION, conversation)
            .await?
            .ok_or_else(|| Error::not_found("conversation"))?;
        let added = insert_members(&mut tx, conversation, members, now, conv.last_seq).await?;
        if added.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let changes = added
            .iter()
            .map(|(user, role)| {
                NewChange::conversation(
                    conversation,
                    ChangeKind::MemberJoined {
                        user_id: *user,
                        role: *role,
                    },
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let changes = record_all(&mut tx, changes).await?;
        set_joined_pos(&mut tx, conversation, &added, &changes).await?;
        commit(tx).await?;
        let members = added
            .into_iter()
            .map(|(user_id, role)| Member {
                conversation_id: conversation,
                user_id,
                role,
                archived: false,
                delivered_seq: conv.last_seq,
                read_seq: conv.last_seq,
                joined_at: now,
                joined_seq: conv.last_seq,
            })
            .collect();
        Ok((members, changes))
    }

    async fn remove_member(&self, conversation: ConversationId, user: UserId, by: UserId) -> Result<Vec<Change>> {
        let mut tx = self.db.begin().await?;
        let n = sqlx::query(q::DELETE_MEMBER)
            .bind(conversation.0)
            .bind(user.0)
            .execute(&mut *tx)
            .await
            .map_err(db("remove member"))?
            .rows_affected();
        if n == 0 {
            return Ok(Vec::new());
        }
        let kind = ChangeKind::MemberLeft { user_id: user, by };
        let changes = record_all(
            &mut tx,
            vec![
                NewChange::conversation(conversation, kind.clone())?,
                NewChange::targeted(user, Some(conversation), kind)?,
            ],
        )
        .await?;
        commit(tx).await?;
        Ok(changes)
    }

    async fn set_role(
        &self,
        conversation: ConversationId,
        user: UserId,
        role: Role,
    ) -> Result<(Member, Option<Change>)> {
        let mut tx = self.db.begin().await?;
        let mut member = fetch_member(&mut tx, q::LOCK_MEMBER, conversation, user)
            .await?
            .ok_or_else(|| Error::not_found("member"))?;
        if member.role == role {
            return Ok((member, None));
        }
        sqlx::query(q::SET_ROLE)
            .bind(conversation.0)
            .bind(user.0)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db("set role"))?;
        let change = record_one(
            &mut tx,
            NewChange::conversation(conversation, ChangeKind::RoleChanged { user_id: user, role })?,
        )
        .await?;
        commit(tx).await?;
        member.role = role;
        Ok((member, Some(change)))
    }

    async fn set_archived(
        &self,
        conversation: ConversationId,
        user: UserId,
        archived: bool,
    ) -> Result<(Member, Option<Change>)> {
        let mut tx = self.db.begin().await?;
        let mut member = fetch_member(&mut tx, q::LOCK_MEMBER, conversation, user)
            .await?
            .ok_or_else(|| Error::not_found("member"))?;
        if member.archived == archived {
            return Ok((member, None));
        }
        sqlx::query(q::SET_ARCHIVED)
            .bind(conversation.0)
            .bind(user.0)
            .bind(archived)
            .execute(&mut *tx)
            .await
            .map_err(db("set archived"))?;
        let change = record_one(
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
        let mut conv = fetch_conversation(&mut tx, q::LOCK_CONVERSATION, conversation)
            .await?
            .ok_or_else(|| Error::not_found("conversation"))?;
        let before = (conv.title.clone(), conv.avatar_url.clone());
        if let Some(t) = title {
            conv.title = Some(t);
        }
        if let Some(a) = avatar_url {
            conv.avatar_url = a;
        }
        if (conv.title.clone(), conv.avatar_url.clone()) == before {
            return Ok((conv, None));
        }
        sqlx::query(q::SET_CONVERSATION)
            .bind(conversation.0)
            .bind(conv.title.as_deref())
            .bind(conv.avatar_url.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(db("update conversation"))?;
        let change = record_one(
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
            .bind(user.0)
            .bind(archived)
            .bind(i64::from(limit))
            .fetch_all(&self.db.pool)
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
        let mut conn = self.db.pool.acquire().await.map_err(db("acquire"))?;
        fetch_message(&mut conn, conversation, seq).await
    }

    async fn history(&self, conversation: ConversationId, viewer: UserId, query: HistoryQuery) -> Result<Vec<Message>> {
        let (sql, anchor) = match query.direction {
            HistoryDirection::Before => (q::HISTORY_BEFORE, query.anchor.unwrap_or(i64::MAX)),
            HistoryDirection::After => (q::HISTORY_AFTER, query.anchor.unwrap_or(0)),
        };
        let mut page = sqlx::query(sql)
            .bind(conversation.0)
            .bind(viewer.0)
            .bind(anchor)
            .bind(i64::from(query.limit))
            .fetch_all(&self.db.pool)
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
        let mut message = sqlx::query(q::LOCK_MESSAGE)
            .bind(conversation.0)
            .bind(seq)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("get message"))?
            .map(|r| message_from_row(&r, ""))
            .transpose()?
            .ok_or_else(|| Error::not_found("message"))?;
        if message.deleted_at.is_some() {
            return Ok((message, None));
        }
        sqlx::query(q::TOMBSTONE_MESSAGE)
            .bind(conversation.0)
            .bind(seq)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db("delete message"))?;
        let change = record_one(
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
            .bind(user.0)
            .bind(conversation.0)
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(db("hide message"))?
            .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        let change = record_one(
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
        let mut member = fetch_member(&mut tx, q::LOCK_MEMBER, conversation, user)
            .await?
            .ok_or_else(|| Error::not_found("member"))?;
        // Not locked: last_seq only grows, so clamping to a value read a moment ago is safe.
        let last_seq: i64 = sqlx::query_scalar(q::GET_LAST_SEQ)
            .bind(conversation.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("get last seq"))?
            .ok_or_else(|| Error::not_found("member"))?;
        let (d, r) = merge_receipts(member.delivered_seq, member.read_seq, delivered, read, last_seq);
        if (d, r) == (member.delivered_seq, member.read_seq) {
            return Ok((member, None));
        }
        sqlx::query(q::SET_RECEIPTS)
            .bind(conversation.0)
            .bind(user.0)
            .bind(d)
            .bind(r)
            .execute(&mut *tx)
            .await
            .map_err(db("update receipts"))?;
        let change = record_one(
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
        sqlx::query(q::INSERT_BLOB)
            .bind(&meta.key)
            .bind(meta.owner_id.0)
            .bind(&meta.content_type)
            .bind(i64::try_from(meta.size).map_err(|_| Error::invalid("size", "too large"))?)
            .bind(meta.width.map(i64::from))
            .bind(meta.height.map(i64::from))
            .bind(purpose_str(meta.purpose))
            .bind(meta.created_at)
            .execute(&self.db.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::conflict("blob key exists")
                } else {
                    map_err("insert blob", e)
                }
            })?;
        Ok(())
    }

    async fn get_blob(&self, key: &str) -> Result<Option<BlobMeta>> {
        sqlx::query(q::GET_BLOB)
            .bind(key)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db("get blob"))?
            .map(|r| blob_from_row(&r))
            .transpose()
    }

    async fn delete_blob(&self, key: &str) -> Result<bool> {
        let n = sqlx::query(q::DELETE_BLOB)
            .bind(key)
            .execute(&self.db.pool)
            .await
            .map_err(db("delete blob"))?
            .rows_affected();
        Ok(n == 1)
    }

    async fn blob_shared_with(&self, key: &str, user: UserId) -> Result<bool> {
        sqlx::query_scalar::<_, bool>(q::BLOB_SHARED_WITH)
            .bind(key)
            .bind(user.0)
            .fetch_one(&self.db.pool)
            .await
            .map_err(db("blob shared with"))
    }

    // ---- sync --------------------------------------------------------------------------

    async fn sync(&self, user: UserId, since: SyncCursor, limit: u32) -> Result<SyncPage> {
        let rows = sqlx::query(q::SYNC)
            .bind(user.0)
            .bind(since)
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.db.pool)
            .await
            .map_err(db("sync"))?;
        let latest = match rows.first() {
            Some(r) => r.int("latest")?,
            None => since,
        };
        let mut changes = Vec::with_capacity(rows.len().min(limit as usize));
        let mut limited = false;
        for r in &rows {
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

    async fn latest_pos(&self) -> Result<SyncCursor> {
        sqlx::query_scalar(q::LATEST_POS)
            .fetch_one(&self.db.pool)
            .await
            .map_err(db("latest pos"))
    }
}

/// Inserts the members that are not members yet (skipping repeats); returns them in input
/// order. Their `joined_pos` is set by [`set_joined_pos`] once positions are taken.
async fn insert_members(
    conn: &mut PgConnection,
    conversation: ConversationId,
    members: &[(UserId, Role)],
    now: Timestamp,
    joined_seq: i64,
) -> Result<Vec<(UserId, Role)>> {
    let users: Vec<Uuid> = members.iter().map(|(u, _)| u.0).collect();
    let roles: Vec<&str> = members.iter().map(|(_, r)| r.as_str()).collect();
    let inserted: Vec<Uuid> = sqlx::query_scalar(q::INSERT_MEMBERS)
        .bind(conversation.0)
        .bind(now)
        .bind(joined_seq)
        .bind(users)
        .bind(roles)
        .fetch_all(conn)
        .await
        .map_err(db("insert members"))?;
    let mut out: Vec<(UserId, Role)> = Vec::with_capacity(inserted.len());
    for (user, role) in members {
        if inserted.contains(&user.0) && !out.iter().any(|(u, _)| u == user) {
            out.push((*user, *role));
        }
    }
    Ok(out)
}

async fn set_joined_pos(
    conn: &mut PgConnection,
    conversation: ConversationId,
    added: &[(UserId, Role)],
    changes: &[Change],
) -> Result<()> {
    if added.is_empty() {
        return Ok(());
    }
    let users: Vec<Uuid> = added.iter().map(|(u, _)| u.0).collect();
    // The MemberJoined changes come first, one per added member, in the same order.
    let pos: Vec<i64> = changes.iter().take(added.len()).map(|c| c.pos).collect();
    sqlx::query(q::SET_JOINED_POS)
        .bind(conversation.0)
        .bind(users)
        .bind(pos)
        .execute(conn)
        .await
        .map_err(db("set joined pos"))?;
    Ok(())
}

fn summary_from_row(r: &PgRow) -> Result<ConversationSummary> {
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

impl PostgresStore {
    /// Inserts (with `now`) or deletes a (user, user) pair; records `kind` for `a` if a row
    /// changed.
    async fn pair_write(
        &self,
        sql: &str,
        a: UserId,
        b: UserId,
        now: Option<Timestamp>,
        kind: ChangeKind,
    ) -> Result<Option<Change>> {
        let mut tx = self.db.begin().await?;
        let mut query = sqlx::query(sql).bind(a.0).bind(b.0);
        if let Some(now) = now {
            query = query.bind(now);
        }
        let n = query.execute(&mut *tx).await.map_err(db("write pair"))?.rows_affected();
        if n == 0 {
            return Ok(None);
        }
        let change = record_one(&mut tx, NewChange::targeted(a, None, kind)?).await?;
        commit(tx).await?;
        Ok(Some(change))
    }

    async fn users_by(&self, sql: &str, id: UserId) -> Result<Vec<User>> {
        sqlx::query(sql)
            .bind(id.0)
            .fetch_all(&self.db.pool)
            .await
            .map_err(db("list users"))?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn ids_by(&self, sql: &str, id: UserId) -> Result<Vec<UserId>> {
        Ok(sqlx::query_scalar::<_, Uuid>(sql)
            .bind(id.0)
            .fetch_all(&self.db.pool)
            .await
            .map_err(db("list ids"))?
            .into_iter()
            .map(UserId)
            .collect())
    }
}

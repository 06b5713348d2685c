//! The SQL layer both database backends share: one implementation of the
//! [`Store`](chatico_core::ports::Store) port, [`SqlStore`], generic over a small
//! [`Backend`] trait that says only what differs between SQLite and Postgres.
//!
//! ## What a backend supplies
//!
//! - **Dialect**: the statements written differently ([`Dialect`]: row locks, list
//!   parameters as `json_each` or `UNNEST`/`ANY`, JSON aggregation, `max` vs `GREATEST`...);
//!   every other statement is in [`queries`] once, with `$N` parameters both databases read.
//! - **Encodings**: how an id or a list of ids is bound (SQLite: UUID text and JSON arrays;
//!   Postgres: `uuid` and arrays) and decoded ([`IdCodec`]).
//! - **Position assignment** ([`Backend::append_changes`]): SQLite's rowid under its single
//!   writer, Postgres's counter row held to commit; both hand out commit-ordered positions.
//! - **Batching** ([`Backend::batch_read`], [`Backend::batch_write`]): the set-based
//!   statements of a group-commit batch; the plan between them ([`codec::plan_batch`]) and
//!   the frame around them ([`try_batch`]) are shared.
//! - **Connections**: which pool reads, which writes, how a write transaction begins;
//!   connection setup and migrations stay in each backend's module.
//!
//! ## Why a trait over typed statements, not `sqlx::Any` or bounds on `sqlx::Database`
//!
//! `Any` decodes neither `uuid` nor arrays and would move type errors to run time. Writing
//! the shared code generic over `DB: sqlx::Database` needs `Encode`/`Decode`/`Executor`
//! bounds for every type on every function (Rust does not imply them from a trait), and
//! the futures' `Send` must then be proven generically. Instead a backend names one
//! statement type ([`Backend::Stmt`], implementing [`Bind`]) whose binders and executors are
//! concrete per database; the bounds live in one macro expansion per backend, and the shared
//! code reads like the per-backend code it replaces: `B::stmt(sql).id(..).int(..)`.

pub(crate) mod queries;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use chatico_core::ids::{ConversationId, Phone, SessionId, Timestamp, UserId};
use chatico_core::model::{
    BlobMeta, Content, Conversation, ConversationKind, ConversationSummary, HistoryDirection, HistoryQuery, Member,
    Message, NewMessage, ProfilePatch, Role, Session, User, direct_pair,
};
use chatico_core::ports::{NewConversation, Store, StoredReaction};
use chatico_core::push::{Mute, Platform, PushDevice};
use chatico_core::search::MessageSearch;
use chatico_core::sync::{Change, ChangeKind, SyncCursor, SyncPage};
use chatico_core::{Error, Result};
use sqlx::pool::PoolConnection;
use sqlx::{Database, Transaction};
use uuid::Uuid;

use crate::codec::{
    self, ChangeRow, NewChange, RowExt, blob_from_row, content_json, conversation_from_row, kind_str, member_from_row,
    message_from_row, name_lower, purpose_str, push_device_from_row, session_from_row, summary_from_row, sync_page,
    user_from_row,
};
use crate::db_error::{BatchError, db, is_unique_violation, map_err, raw};
use crate::writer::{BatchInsert, InsertResult, Writer};
use queries as q;

/// The statements a dialect writes its own way (the others are in [`queries`]).
#[derive(Debug)]
pub struct Dialect {
    /// $1 list of ids.
    pub get_users: &'static str,
    /// $1 the lowercased query (name substring or phone prefix; NULL = everyone), $2 after,
    /// $3 limit.
    pub search_users: &'static str,
    /// $1 owner.
    pub list_contacts: &'static str,
    /// $1 blocker.
    pub list_blocked: &'static str,
    /// [`queries::GET_CONVERSATION`], locking the row until commit where the database can.
    pub lock_conversation: &'static str,
    /// [`queries::GET_MEMBER`], locking the row until commit where the database can.
    pub lock_member: &'static str,
    /// [`queries::GET_MESSAGE`], locking the row until commit where the database can.
    pub lock_message: &'static str,
    /// The member ($1 conversation, $2 user; locked where the database can) with its
    /// conversation's `last_seq`.
    pub lock_member_with_last_seq: &'static str,
    /// $1 user, $2 archived, $3 limit: the whole conversation-list screen in one statement.
    pub list_conversations: &'static str,
    /// $1 user: the user's row, locked until commit where the database can (serializes one
    /// user's pins, so two concurrent pins cannot pass the bound together).
    pub lock_user: &'static str,
    /// $1 conversation, $2 viewer, $3 anchor (exclusive), $4 limit; oldest first.
    pub history_after: &'static str,
    /// $1 blob key, $2 user: column `shared`.
    pub blob_shared_with: &'static str,
    /// $1 user, $2 since, $3 limit + 1: one sync page (see [`codec::sync_page`]).
    pub sync: &'static str,
    /// Column `latest`: the newest position.
    pub latest_pos: &'static str,
    /// $1 the full-text query ([`Dialect::search_query`]), $2 viewer, $3 conversation (NULL =
    /// every conversation of the viewer), $4 limit, $5 offset: a page of
    /// `Store::search_messages`, message columns as in history.
    pub search_messages: &'static str,
    /// The `$1` of [`Dialect::search_messages`] for the engine's terms: every term, quoted
    /// so that nothing in it is query syntax.
    pub search_query: fn(&[String]) -> String,
}

/// How a database stores ids: bound and decoded one way per backend.
pub(crate) trait IdCodec: Database {
    /// Binds an id.
    fn bind_id<'q>(stmt: Query<'q, Self>, id: Uuid) -> Query<'q, Self>;
    /// Binds an optional id.
    fn bind_opt_id<'q>(stmt: Query<'q, Self>, id: Option<Uuid>) -> Query<'q, Self>;
    /// Binds a list of ids as one parameter.
    fn bind_ids<'q>(stmt: Query<'q, Self>, ids: &[Uuid]) -> Query<'q, Self>;
}

/// A sqlx query of database `DB`.
pub(crate) type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>;

/// A connection of backend `B`'s database.
pub(crate) type Conn<B> = <<B as Backend>::Db as Database>::Connection;

/// A statement being bound, then run on a connection. The binders name the column types the
/// schema uses; executors answer raw sqlx errors (mapped by the caller, which names the
/// operation).
pub(crate) trait Bind<'q>: Sized + Send {
    /// The connection it runs on.
    type Conn;
    /// The rows it answers.
    type Row;
    fn id(self, v: Uuid) -> Self;
    fn opt_id(self, v: Option<Uuid>) -> Self;
    fn ids(self, v: &[Uuid]) -> Self;
    fn int(self, v: i64) -> Self;
    fn opt_int(self, v: Option<i64>) -> Self;
    fn text(self, v: &'q str) -> Self;
    fn opt_text(self, v: Option<&'q str>) -> Self;
    fn flag(self, v: bool) -> Self;
    /// Runs it; answers the number of rows written.
    fn execute(self, conn: &mut Self::Conn) -> impl Future<Output = sqlx::Result<u64>> + Send;
    fn fetch_optional(self, conn: &mut Self::Conn) -> impl Future<Output = sqlx::Result<Option<Self::Row>>> + Send;
    fn fetch_all(self, conn: &mut Self::Conn) -> impl Future<Output = sqlx::Result<Vec<Self::Row>>> + Send;
    fn fetch_one(self, conn: &mut Self::Conn) -> impl Future<Output = sqlx::Result<Self::Row>> + Send;
}

/// A statement of database `DB` (see [`Bind`]).
pub(crate) struct Stmt<'q, DB: Database>(pub(crate) Query<'q, DB>);

impl<'q, DB: Database> Stmt<'q, DB> {
    pub(crate) fn new(sql: &'q str) -> Self {
        Stmt(sqlx::query(sql))
    }
}

/// Implements [`Bind`] for one database: the scalar encodings are sqlx's own, the ids its
/// [`IdCodec`]'s.
macro_rules! impl_bind {
    ($db:ty) => {
        impl<'q> $crate::sql::Bind<'q> for $crate::sql::Stmt<'q, $db> {
            type Conn = <$db as sqlx::Database>::Connection;
            type Row = <$db as sqlx::Database>::Row;
            fn id(self, v: uuid::Uuid) -> Self {
                Self(<$db as $crate::sql::IdCodec>::bind_id(self.0, v))
            }
            fn opt_id(self, v: Option<uuid::Uuid>) -> Self {
                Self(<$db as $crate::sql::IdCodec>::bind_opt_id(self.0, v))
            }
            fn ids(self, v: &[uuid::Uuid]) -> Self {
                Self(<$db as $crate::sql::IdCodec>::bind_ids(self.0, v))
            }
            fn int(self, v: i64) -> Self {
                Self(self.0.bind(v))
            }
            fn opt_int(self, v: Option<i64>) -> Self {
                Self(self.0.bind(v))
            }
            fn text(self, v: &'q str) -> Self {
                Self(self.0.bind(v))
            }
            fn opt_text(self, v: Option<&'q str>) -> Self {
                Self(self.0.bind(v))
            }
            fn flag(self, v: bool) -> Self {
                Self(self.0.bind(v))
            }
            async fn execute(self, conn: &mut Self::Conn) -> sqlx::Result<u64> {
                Ok(self.0.execute(conn).await?.rows_affected())
            }
            async fn fetch_optional(self, conn: &mut Self::Conn) -> sqlx::Result<Option<Self::Row>> {
                self.0.fetch_optional(conn).await
            }
            async fn fetch_all(self, conn: &mut Self::Conn) -> sqlx::Result<Vec<Self::Row>> {
                self.0.fetch_all(conn).await
            }
            async fn fetch_one(self, conn: &mut Self::Conn) -> sqlx::Result<Self::Row> {
                self.0.fetch_one(conn).await
            }
        }
    };
}
pub(crate) use impl_bind;

/// What differs between the SQL backends (see the module docs).
pub(crate) trait Backend: Send + Sync + Sized + 'static {
    type Db: Database<Row = Self::Row>;
    type Row: RowExt;
    type Stmt<'q>: Bind<'q, Conn = Conn<Self>, Row = Self::Row>;
    /// The statements this dialect writes its own way.
    const SQL: &'static Dialect;

    /// A statement to bind and run.
    fn stmt(sql: &str) -> Self::Stmt<'_>;
    /// Begins a write transaction.
    fn begin(&self) -> impl Future<Output = sqlx::Result<Transaction<'static, Self::Db>>> + Send;
    /// A connection for reads.
    fn reader(&self) -> impl Future<Output = sqlx::Result<PoolConnection<Self::Db>>> + Send;
    /// A connection for a write that is one statement (autocommit).
    fn writer(&self) -> impl Future<Output = sqlx::Result<PoolConnection<Self::Db>>> + Send;

    /// Appends changes to the log as the transaction's last write; answers their positions
    /// in the order given.
    fn append_changes(
        conn: &mut Conn<Self>,
        changes: &[ChangeRow<'_>],
    ) -> impl Future<Output = sqlx::Result<Vec<i64>>> + Send;
    /// What a batch must know before writing, in one statement: rows with `kind = 'm'` are
    /// the stored messages under the requests' idempotency keys, rows with `kind = 'c'` the
    /// requested conversations (`conversation_id`) with their `last_seq` (in `seq`).
    fn batch_read(
        conn: &mut Conn<Self>,
        batch: &[NewMessage],
    ) -> impl Future<Output = sqlx::Result<Vec<Self::Row>>> + Send;
    /// Inserts a batch's new messages (seqs assigned) and moves each conversation's
    /// `last_seq` and each sender's watermarks to them.
    fn batch_write(conn: &mut Conn<Self>, messages: &[Message]) -> impl Future<Output = Result<(), BatchError>> + Send;
    /// Inserts the members that are not members yet (repeats skipped, `joined_pos` left for
    /// [`Backend::set_joined_pos`]); answers the users inserted, in any order.
    fn insert_members(
        conn: &mut Conn<Self>,
        conversation: ConversationId,
        members: &[(UserId, Role)],
        now: Timestamp,
        joined_seq: i64,
    ) -> impl Future<Output = sqlx::Result<Vec<Uuid>>> + Send;
    /// Sets the `joined_pos` of `users` (in order) to `positions`.
    fn set_joined_pos(
        conn: &mut Conn<Self>,
        conversation: ConversationId,
        users: &[Uuid],
        positions: &[i64],
    ) -> impl Future<Output = sqlx::Result<()>> + Send;
}

/// The [`Store`] on a SQL backend. Cheap to clone (shared handles).
pub struct SqlStore<B> {
    pub(crate) backend: Arc<B>,
    writer: Option<Writer>,
}

impl<B> Clone for SqlStore<B> {
    fn clone(&self) -> Self {
        SqlStore {
            backend: self.backend.clone(),
            writer: self.writer.clone(),
        }
    }
}

/// How a backend batches `insert_message` (group commit, the `writer` module).
pub(crate) struct GroupCommit {
    pub enabled: bool,
    /// Transactions in flight at once.
    pub writers: usize,
    pub max_batch: usize,
}

// The bound names a crate-private trait; so are all the methods here.
#[allow(private_bounds)]
impl<B: Backend> SqlStore<B> {
    /// Wraps an opened backend and starts its group-commit writer (on the current tokio
    /// runtime).
    pub(crate) fn start(backend: B, group_commit: GroupCommit) -> Self {
        let backend = Arc::new(backend);
        let writer = group_commit.enabled.then(|| {
            let max = group_commit.max_batch;
            Writer::spawn(backend.clone(), group_commit.writers, max, max * 4)
        });
        SqlStore { backend, writer }
    }

    async fn begin(&self) -> Result<Transaction<'static, B::Db>> {
        self.backend.begin().await.map_err(db("begin"))
    }

    async fn reader(&self) -> Result<PoolConnection<B::Db>> {
        self.backend.reader().await.map_err(db("acquire"))
    }

    async fn writer(&self) -> Result<PoolConnection<B::Db>> {
        self.backend.writer().await.map_err(db("acquire"))
    }
}

async fn commit<DB: Database>(tx: Transaction<'static, DB>) -> Result<()> {
    tx.commit().await.map_err(db("commit"))
}

/// Appends changes as the transaction's last write; answers them with their positions.
async fn record_all<B: Backend>(conn: &mut Conn<B>, changes: Vec<NewChange>) -> Result<Vec<Change>> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<ChangeRow<'_>> = changes.iter().map(NewChange::row).collect();
    let positions = B::append_changes(conn, &rows).await.map_err(db("record changes"))?;
    drop(rows);
    if positions.len() != changes.len() {
        return Err(Error::internal("the change log returned the wrong number of positions"));
    }
    Ok(changes.into_iter().zip(positions).map(|(c, p)| c.at(p)).collect())
}

/// [`record_all`] for one change.
async fn record<B: Backend>(conn: &mut Conn<B>, change: NewChange) -> Result<Change> {
    record_all::<B>(conn, vec![change])
        .await?
        .pop()
        .ok_or_else(|| Error::internal("no position recorded"))
}

async fn fetch_message<B: Backend>(
    conn: &mut Conn<B>,
    sql: &str,
    conversation: ConversationId,
    seq: i64,
) -> Result<Option<Message>> {
    B::stmt(sql)
        .id(conversation.0)
        .int(seq)
        .fetch_optional(conn)
        .await
        .map_err(db("get message"))?
        .map(|r| message_from_row(&r, ""))
        .transpose()
}

async fn fetch_conversation<B: Backend>(
    conn: &mut Conn<B>,
    sql: &str,
    id: ConversationId,
) -> Result<Option<Conversation>> {
    B::stmt(sql)
        .id(id.0)
        .fetch_optional(conn)
        .await
        .map_err(db("get conversation"))?
        .map(|r| conversation_from_row(&r))
        .transpose()
}

async fn fetch_member<B: Backend>(
    conn: &mut Conn<B>,
    sql: &str,
    conversation: ConversationId,
    user: UserId,
) -> Result<Option<Member>> {
    B::stmt(sql)
        .id(conversation.0)
        .id(user.0)
        .fetch_optional(conn)
        .await
        .map_err(db("get member"))?
        .map(|r| member_from_row(&r, ""))
        .transpose()
}

/// Inserts the members not yet in `conversation` and records a `MemberJoined` for each
/// (then `extra`, if any); sets their `joined_pos`. Answers the members added, in input
/// order, and every change recorded.
async fn join_members<B: Backend>(
    conn: &mut Conn<B>,
    conversation: ConversationId,
    members: &[(UserId, Role)],
    now: Timestamp,
    joined_seq: i64,
    extra: Option<NewChange>,
) -> Result<(Vec<Member>, Vec<Change>)> {
    let inserted = B::insert_members(conn, conversation, members, now, joined_seq)
        .await
        .map_err(db("insert members"))?;
    let mut added: Vec<Member> = Vec::with_capacity(inserted.len());
    for (user, role) in members {
        if inserted.contains(&user.0) && !added.iter().any(|m| m.user_id == *user) {
            added.push(Member {
                conversation_id: conversation,
                user_id: *user,
                role: *role,
                archived: false,
                delivered_seq: joined_seq,
                read_seq: joined_seq,
                joined_at: now,
                joined_seq,
            });
        }
    }
    let mut changes = added
        .iter()
        .map(|m| {
            NewChange::conversation(
                conversation,
                ChangeKind::MemberJoined {
                    user_id: m.user_id,
                    role: m.role,
                },
            )
        })
        .collect::<Result<Vec<_>>>()?;
    changes.extend(extra);
    let changes = record_all::<B>(conn, changes).await?;
    if !added.is_empty() {
        // The MemberJoined changes come first, one per added member, in the same order.
        let users: Vec<Uuid> = added.iter().map(|m| m.user_id.0).collect();
        let positions: Vec<i64> = changes.iter().take(added.len()).map(|c| c.pos).collect();
        B::set_joined_pos(conn, conversation, &users, &positions)
            .await
            .map_err(db("set joined pos"))?;
    }
    Ok((added, changes))
}

// ---- group commit ------------------------------------------------------------------------

/// One group-commit transaction: read what exists, plan (seqs, duplicates, unknown
/// conversations), write the new messages and their changes, commit.
async fn try_batch<B: Backend>(
    backend: &B,
    batch: &[NewMessage],
) -> std::result::Result<Vec<InsertResult>, BatchError> {
    let mut tx = backend.begin().await.map_err(raw("begin"))?;
    let mut existing = HashMap::new();
    let mut last_seq = HashMap::new();
    for r in B::batch_read(&mut tx, batch).await.map_err(raw("batch: read"))? {
        if r.text("kind")? == "m" {
            let m = message_from_row(&r, "")?;
            existing.insert((m.sender_id, m.client_msg_id.clone()), m);
        } else {
            last_seq.insert(ConversationId(r.uuid("conversation_id")?), r.int("seq")?);
        }
    }
    let plan = codec::plan_batch(batch, &existing, &last_seq);
    let mut positions = Vec::new();
    if !plan.new_messages.is_empty() {
        B::batch_write(&mut tx, &plan.new_messages).await?;
        let rows: Vec<ChangeRow<'_>> = plan.new_messages.iter().map(ChangeRow::message).collect();
        positions = B::append_changes(&mut tx, &rows)
            .await
            .map_err(raw("batch: record changes"))?;
    }
    tx.commit().await.map_err(raw("commit"))?;
    Ok(plan.into_results(&positions))
}

impl<B: Backend> BatchInsert for B {
    async fn insert_batch(&self, batch: &[NewMessage]) -> Result<Vec<InsertResult>> {
        try_batch(self, batch).await.map_err(BatchError::into_error)
    }

    async fn insert_one(&self, m: &NewMessage) -> Result<(Message, Option<Change>)> {
        match try_batch(self, std::slice::from_ref(m)).await {
            Ok(mut results) => results
                .pop()
                .unwrap_or_else(|| Err(Error::internal("empty batch result"))),
            // Another process or node stored the same (sender, client_msg_id) between our
            // read and our insert: the transaction rolled back (seq included); return the
            // stored one.
            Err(e) if e.is_unique_violation() => {
                let mut conn = self.reader().await.map_err(db("acquire"))?;
                B::stmt(q::GET_MESSAGE_BY_CLIENT_ID)
                    .id(m.sender_id.0)
                    .text(&m.client_msg_id)
                    .fetch_optional(&mut conn)
                    .await
                    .map_err(db("get message by client id"))?
                    .map(|r| message_from_row(&r, "").map(|m| (m, None)))
                    .unwrap_or_else(|| Err(Error::internal("unique violation without a stored message")))
            }
            Err(e) => Err(e.into_error()),
        }
    }
}

// ---- the port ----------------------------------------------------------------------------

#[allow(private_bounds)]
impl<B: Backend> SqlStore<B> {
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
        let mut tx = self.begin().await?;
        let mut stmt = B::stmt(sql).id(a.0).id(b.0);
        if let Some(now) = now {
            stmt = stmt.int(now);
        }
        let n = stmt.execute(&mut tx).await.map_err(db("write pair"))?;
        if n == 0 {
            return Ok(None);
        }
        let change = record::<B>(&mut tx, NewChange::targeted(a, None, kind)?).await?;
        commit(tx).await?;
        Ok(Some(change))
    }

    async fn users_by(&self, sql: &str, id: UserId) -> Result<Vec<User>> {
        let mut conn = self.reader().await?;
        B::stmt(sql)
            .id(id.0)
            .fetch_all(&mut conn)
            .await
            .map_err(db("list users"))?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn ids_by(&self, sql: &str, id: UserId) -> Result<Vec<UserId>> {
        let mut conn = self.reader().await?;
        B::stmt(sql)
            .id(id.0)
            .fetch_all(&mut conn)
            .await
            .map_err(db("list ids"))?
            .iter()
            .map(|r| r.uuid("id").map(UserId))
            .collect()
    }

    /// Runs a one-statement write that answers the rows it wrote.
    async fn write_one(&self, op: &'static str, stmt: B::Stmt<'_>) -> Result<u64> {
        let mut conn = self.writer().await?;
        stmt.execute(&mut conn).await.map_err(db(op))
    }
}

/// Maps a unique violation to `conflict(what)`, anything else as usual.
fn conflict_on_unique(op: &'static str, what: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| {
        if is_unique_violation(&e) {
            Error::conflict(what)
        } else {
            map_err(op, e)
        }
    }
}

#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl<B: Backend> Store for SqlStore<B> {
    // ---- users -------------------------------------------------------------------------

    async fn get_or_create_user(
        &self,
        phone: &Phone,
        new_id: UserId,
        display_name: &str,
        now: Timestamp,
    ) -> Result<(User, bool)> {
        let lower = name_lower(display_name);
        let mut tx = self.begin().await?;
        let created = B::stmt(q::INSERT_USER)
            .id(new_id.0)
            .text(phone.as_str())
            .text(display_name)
            .text(&lower)
            .int(now)
            .fetch_optional(&mut tx)
            .await
            .map_err(db("create user"))?;
        let out = match created {
            Some(r) => (user_from_row(&r)?, true),
            None => {
                let r = B::stmt(q::GET_USER_BY_PHONE)
                    .text(phone.as_str())
                    .fetch_one(&mut tx)
                    .await
                    .map_err(db("get user by phone"))?;
                (user_from_row(&r)?, false)
            }
        };
        commit(tx).await?;
        Ok(out)
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>> {
        let mut conn = self.reader().await?;
        B::stmt(q::GET_USER)
            .id(id.0)
            .fetch_optional(&mut conn)
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
        let mut conn = self.reader().await?;
        B::stmt(B::SQL.get_users)
            .ids(&ids)
            .fetch_all(&mut conn)
            .await
            .map_err(db("get users"))?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn search_users(&self, query: Option<&str>, after: Option<UserId>, limit: u32) -> Result<Vec<User>> {
        let lower = query.map(name_lower);
        let mut conn = self.reader().await?;
        B::stmt(B::SQL.search_users)
            .opt_text(lower.as_deref())
            .opt_id(after.map(|a| a.0))
            .int(i64::from(limit))
            .fetch_all(&mut conn)
            .await
            .map_err(db("search users"))?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn update_profile(&self, id: UserId, patch: &ProfilePatch) -> Result<User> {
        let lower = patch.display_name.as_deref().map(name_lower);
        let mut conn = self.writer().await?;
        let row = B::stmt(q::UPDATE_PROFILE)
            .id(id.0)
            .opt_text(patch.display_name.as_deref())
            .opt_text(lower.as_deref())
            .opt_text(patch.bio.as_deref())
            .flag(patch.avatar_url.is_some())
            .opt_text(patch.avatar_url.as_ref().and_then(|a| a.as_deref()))
            .fetch_optional(&mut conn)
            .await
            .map_err(db("update profile"))?
            .ok_or_else(|| Error::not_found("user"))?;
        user_from_row(&row)
    }

    async fn set_last_seen(&self, id: UserId, at: Timestamp) -> Result<()> {
        let n = self
            .write_one("set last seen", B::stmt(q::SET_LAST_SEEN).id(id.0).int(at))
            .await?;
        if n == 0 {
            return Err(Error::not_found("user"));
        }
        Ok(())
    }

    // ---- sessions ----------------------------------------------------------------------

    async fn create_session(&self, session: &Session) -> Result<()> {
        let mut conn = self.writer().await?;
        B::stmt(q::INSERT_SESSION)
            .id(session.id.0)
            .id(session.user_id.0)
            .text(&session.refresh_hash)
            .int(session.created_at)
            .int(session.expires_at)
            .opt_text(session.device.as_deref())
            .execute(&mut conn)
            .await
            .map_err(conflict_on_unique("create session", "session exists"))?;
        Ok(())
    }

    async fn get_session(&self, id: SessionId) -> Result<Option<Session>> {
        let mut conn = self.reader().await?;
        B::stmt(q::GET_SESSION)
            .id(id.0)
            .fetch_optional(&mut conn)
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
        let stmt = B::stmt(q::ROTATE_SESSION)
            .id(id.0)
            .text(old_hash)
            .text(new_hash)
            .int(expires_at);
        Ok(self.write_one("rotate session", stmt).await? == 1)
    }

    async fn delete_session(&self, id: SessionId) -> Result<bool> {
        let mut tx = self.begin().await?;
        B::stmt(q::DELETE_PUSH_DEVICE)
            .id(id.0)
            .execute(&mut tx)
            .await
            .map_err(db("delete push device"))?;
        let n = B::stmt(q::DELETE_SESSION)
            .id(id.0)
            .execute(&mut tx)
            .await
            .map_err(db("delete session"))?;
        commit(tx).await?;
        Ok(n == 1)
    }

    async fn delete_user_sessions(&self, user: UserId) -> Result<u64> {
        let mut tx = self.begin().await?;
        B::stmt(q::DELETE_USER_PUSH_DEVICES)
            .id(user.0)
            .execute(&mut tx)
            .await
            .map_err(db("delete push devices"))?;
        let n = B::stmt(q::DELETE_USER_SESSIONS)
            .id(user.0)
            .execute(&mut tx)
            .await
            .map_err(db("delete user sessions"))?;
        commit(tx).await?;
        Ok(n)
    }

    // ---- contacts and blocks -----------------------------------------------------------

    async fn add_contact(&self, owner: UserId, contact: UserId, now: Timestamp) -> Result<Option<Change>> {
        let kind = ChangeKind::ContactAdded { user_id: contact };
        self.pair_write(q::INSERT_CONTACT, owner, contact, Some(now), kind)
            .await
    }

    async fn remove_contact(&self, owner: UserId, contact: UserId) -> Result<Option<Change>> {
        let kind = ChangeKind::ContactRemoved { user_id: contact };
        self.pair_write(q::DELETE_CONTACT, owner, contact, None, kind).await
    }

    async fn list_contacts(&self, owner: UserId) -> Result<Vec<User>> {
        self.users_by(B::SQL.list_contacts, owner).await
    }

    async fn contact_owners(&self, user: UserId) -> Result<Vec<UserId>> {
        self.ids_by(q::CONTACT_OWNERS, user).await
    }

    async fn block(&self, blocker: UserId, blocked: UserId, now: Timestamp) -> Result<Option<Change>> {
        let kind = ChangeKind::Blocked { user_id: blocked };
        self.pair_write(q::INSERT_BLOCK, blocker, blocked, Some(now), kind)
            .await
    }

    async fn unblock(&self, blocker: UserId, blocked: UserId) -> Result<Option<Change>> {
        let kind = ChangeKind::Unblocked { user_id: blocked };
        self.pair_write(q::DELETE_BLOCK, blocker, blocked, None, kind).await
    }

    async fn list_blocked(&self, blocker: UserId) -> Result<Vec<User>> {
        self.users_by(B::SQL.list_blocked, blocker).await
    }

    async fn is_blocked_either_way(&self, a: UserId, b: UserId) -> Result<bool> {
        let mut conn = self.reader().await?;
        let hit = B::stmt(q::IS_BLOCKED_EITHER_WAY)
            .id(a.0)
            .id(b.0)
            .fetch_optional(&mut conn)
            .await
            .map_err(db("is blocked"))?;
        Ok(hit.is_some())
    }

    async fn blocked_either_way(&self, user: UserId) -> Result<Vec<UserId>> {
        self.ids_by(q::BLOCKED_EITHER_WAY, user).await
    }

    // ---- conversations and members -----------------------------------------------------

    async fn create_conversation(&self, new: &NewConversation) -> Result<(Conversation, Vec<Change>)> {
        let mut tx = self.begin().await?;
        if new.kind == ConversationKind::Direct {
            let [(a, _), (b, _)] = new.members.as_slice() else {
                return Err(Error::invalid(
                    "members",
                    "a direct conversation has exactly two members",
                ));
            };
            let (lo, hi) = direct_pair(*a, *b);
            let n = B::stmt(q::INSERT_DIRECT_PAIR)
                .id(lo.0)
                .id(hi.0)
                .id(new.id.0)
                .execute(&mut tx)
                .await
                .map_err(db("insert direct pair"))?;
            if n == 0 {
                drop(tx);
                let existing = self
                    .find_direct(lo, hi)
                    .await?
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
        B::stmt(q::INSERT_CONVERSATION)
            .id(new.id.0)
            .text(kind_str(new.kind))
            .opt_text(new.title.as_deref())
            .opt_text(new.avatar_url.as_deref())
            .id(new.created_by.0)
            .int(new.created_at)
            .execute(&mut tx)
            .await
            .map_err(conflict_on_unique("insert conversation", "conversation exists"))?;
        let created = NewChange::conversation(
            new.id,
            ChangeKind::ConversationCreated {
                conversation: conversation.clone(),
            },
        )?;
        let (_, changes) = join_members::<B>(&mut tx, new.id, &new.members, new.created_at, 0, Some(created)).await?;
        commit(tx).await?;
        Ok((conversation, changes))
    }

    async fn find_direct(&self, a: UserId, b: UserId) -> Result<Option<Conversation>> {
        let (lo, hi) = direct_pair(a, b);
        let mut conn = self.reader().await?;
        B::stmt(q::FIND_DIRECT)
            .id(lo.0)
            .id(hi.0)
            .fetch_optional(&mut conn)
            .await
            .map_err(db("find direct"))?
            .map(|r| conversation_from_row(&r))
            .transpose()
    }

    async fn get_conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        let mut conn = self.reader().await?;
        fetch_conversation::<B>(&mut conn, q::GET_CONVERSATION, id).await
    }

    async fn get_member(&self, conversation: ConversationId, user: UserId) -> Result<Option<Member>> {
        let mut conn = self.reader().await?;
        fetch_member::<B>(&mut conn, q::GET_MEMBER, conversation, user).await
    }

    async fn list_members(&self, conversation: ConversationId) -> Result<Vec<Member>> {
        let mut conn = self.reader().await?;
        B::stmt(q::LIST_MEMBERS)
            .id(conversation.0)
            .fetch_all(&mut conn)
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
        let mut tx = self.begin().await?;
        // Locked so no message commits between reading last_seq and joining.
        let conv = fetch_conversation::<B>(&mut tx, B::SQL.lock_conversation, conversation)
            .await?
            .ok_or_else(|| Error::not_found("conversation"))?;
        let (added, changes) = join_members::<B>(&mut tx, conversation, members, now, conv.last_seq, None).await?;
        if added.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        commit(tx).await?;
        Ok((added, changes))
    }

    async fn remove_member(&self, conversation: ConversationId, user: UserId, by: UserId) -> Result<Vec<Change>> {
        let mut tx = self.begin().await?;
        let n = B::stmt(q::DELETE_MEMBER)
            .id(conversation.0)
            .id(user.0)
            .execute(&mut tx)
            .await
            .map_err(db("remove member"))?;
        if n == 0 {
            return Ok(Vec::new());
        }
        B::stmt(q::DELETE_PIN)
            .id(user.0)
            .id(conversation.0)
            .execute(&mut tx)
            .await
            .map_err(db("remove member pin"))?;
        let kind = ChangeKind::MemberLeft { user_id: user, by };
        let changes = vec![
            NewChange::conversation(conversation, kind.clone())?,
            NewChange::targeted(user, Some(conversation), kind)?,
        ];
        let changes = record_all::<B>(&mut tx, changes).await?;
        commit(tx).await?;
        Ok(changes)
    }

    async fn set_role(
        &self,
        conversation: ConversationId,
        user: UserId,
        role: Role,
    ) -> Result<(Member, Option<Change>)> {
        let mut tx = self.begin().await?;
        let mut member = fetch_member::<B>(&mut tx, B::SQL.lock_member, conversation, user)
            .await?
            .ok_or_else(|| Error::not_found("member"))?;
        if member.role == role {
            return Ok((member, None));
        }
        B::stmt(q::SET_ROLE)
            .id(conversation.0)
            .id(user.0)
            .text(role.as_str())
            .execute(&mut tx)
            .await
            .map_err(db("set role"))?;
        let kind = ChangeKind::RoleChanged { user_id: user, role };
        let change = record::<B>(&mut tx, NewChange::conversation(conversation, kind)?).await?;
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
        let mut tx = self.begin().await?;
        let mut member = fetch_member::<B>(&mut tx, B::SQL.lock_member, conversation, user)
            .await?
            .ok_or_else(|| Error::not_found("member"))?;
        if member.archived == archived {
            return Ok((member, None));
        }
        B::stmt(q::SET_ARCHIVED)
            .id(conversation.0)
            .id(user.0)
            .flag(archived)
            .execute(&mut tx)
            .await
            .map_err(db("set archived"))?;
        let kind = ChangeKind::Archived { archived };
        let change = record::<B>(&mut tx, NewChange::targeted(user, Some(conversation), kind)?).await?;
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
        let mut tx = self.begin().await?;
        let mut conv = fetch_conversation::<B>(&mut tx, B::SQL.lock_conversation, conversation)
            .await?
            .ok_or_else(|| Error::not_found("conversation"))?;
        let before = (conv.title.clone(), conv.avatar_url.clone());
        if let Some(t) = title {
            conv.title = Some(t);
        }
        if let Some(a) = avatar_url {
            conv.avatar_url = a;
        }
        if (&conv.title, &conv.avatar_url) == (&before.0, &before.1) {
            return Ok((conv, None));
        }
        B::stmt(q::SET_CONVERSATION)
            .id(conversation.0)
            .opt_text(conv.title.as_deref())
            .opt_text(conv.avatar_url.as_deref())
            .execute(&mut tx)
            .await
            .map_err(db("update conversation"))?;
        let kind = ChangeKind::ConversationUpdated {
            title: conv.title.clone(),
            avatar_url: conv.avatar_url.clone(),
        };
        let change = record::<B>(&mut tx, NewChange::conversation(conversation, kind)?).await?;
        commit(tx).await?;
        Ok((conv, Some(change)))
    }

    async fn list_conversations(&self, user: UserId, archived: bool, limit: u32) -> Result<Vec<ConversationSummary>> {
        let mut conn = self.reader().await?;
        B::stmt(B::SQL.list_conversations)
            .id(user.0)
            .flag(archived)
            .int(i64::from(limit))
            .fetch_all(&mut conn)
            .await
            .map_err(db("list conversations"))?
            .iter()
            .map(summary_from_row)
            .collect()
    }

    async fn set_pin(
        &self,
        conversation: ConversationId,
        user: UserId,
        pinned: bool,
        now: Timestamp,
        max_pins: u32,
    ) -> Result<(Option<Timestamp>, Option<Change>)> {
        let mut tx = self.begin().await?;
        B::stmt(B::SQL.lock_user)
            .id(user.0)
            .fetch_optional(&mut tx)
            .await
            .map_err(db("lock user"))?;
        fetch_member::<B>(&mut tx, B::SQL.lock_member, conversation, user)
            .await?
            .ok_or_else(|| Error::not_found("member"))?;
        let before: Option<Timestamp> = B::stmt(q::GET_PIN)
            .id(user.0)
            .id(conversation.0)
            .fetch_optional(&mut tx)
            .await
            .map_err(db("get pin"))?
            .map(|r| r.int("pinned_at"))
            .transpose()?;
        let (after, kind) = match (pinned, before) {
            (true, Some(_)) | (false, None) => return Ok((before, None)),
            (true, None) => {
                let count = B::stmt(q::COUNT_PINS)
                    .id(user.0)
                    .fetch_one(&mut tx)
                    .await
                    .map_err(db("count pins"))?
                    .int("n")?;
                if count >= i64::from(max_pins) {
                    return Err(Error::too_large("pins", u64::from(max_pins)));
                }
                B::stmt(q::INSERT_PIN)
                    .id(user.0)
                    .id(conversation.0)
                    .int(now)
                    .execute(&mut tx)
                    .await
                    .map_err(db("pin"))?;
                (
                    Some(now),
                    ChangeKind::Pinned {
                        pinned: true,
                        at: Some(now),
                    },
                )
            }
            (false, Some(_)) => {
                B::stmt(q::DELETE_PIN)
                    .id(user.0)
                    .id(conversation.0)
                    .execute(&mut tx)
                    .await
                    .map_err(db("unpin"))?;
                (
                    None,
                    ChangeKind::Pinned {
                        pinned: false,
                        at: None,
                    },
                )
            }
        };
        let change = record::<B>(&mut tx, NewChange::targeted(user, Some(conversation), kind)?).await?;
        commit(tx).await?;
        Ok((after, Some(change)))
    }

    // ---- messages ----------------------------------------------------------------------

    async fn insert_message(&self, message: &NewMessage) -> Result<(Message, Option<Change>)> {
        match &self.writer {
            Some(w) => w.insert(message.clone()).await,
            None => self.backend.insert_one(message).await,
        }
    }

    async fn get_message(&self, conversation: ConversationId, seq: i64) -> Result<Option<Message>> {
        let mut conn = self.reader().await?;
        fetch_message::<B>(&mut conn, q::GET_MESSAGE, conversation, seq).await
    }

    async fn history(&self, conversation: ConversationId, viewer: UserId, query: HistoryQuery) -> Result<Vec<Message>> {
        let (sql, anchor) = match query.direction {
            HistoryDirection::Before => (q::HISTORY_BEFORE, query.anchor.unwrap_or(i64::MAX)),
            HistoryDirection::After => (B::SQL.history_after, query.anchor.unwrap_or(0)),
        };
        let mut conn = self.reader().await?;
        let mut page = B::stmt(sql)
            .id(conversation.0)
            .id(viewer.0)
            .int(anchor)
            .int(i64::from(query.limit))
            .fetch_all(&mut conn)
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
        let mut tx = self.begin().await?;
        let mut message = fetch_message::<B>(&mut tx, B::SQL.lock_message, conversation, seq)
            .await?
            .ok_or_else(|| Error::not_found("message"))?;
        if message.deleted_at.is_some() {
            return Ok((message, None));
        }
        B::stmt(q::TOMBSTONE_MESSAGE)
            .id(conversation.0)
            .int(seq)
            .int(now)
            .execute(&mut tx)
            .await
            .map_err(db("delete message"))?;
        let kind = ChangeKind::MessageDeleted { seq, deleted_at: now };
        let change = record::<B>(&mut tx, NewChange::conversation(conversation, kind)?).await?;
        commit(tx).await?;
        message.content = None;
        message.deleted_at = Some(now);
        Ok((message, Some(change)))
    }

    async fn hide_message(&self, user: UserId, conversation: ConversationId, seq: i64) -> Result<Option<Change>> {
        let mut tx = self.begin().await?;
        if fetch_message::<B>(&mut tx, q::GET_MESSAGE, conversation, seq)
            .await?
            .is_none()
        {
            return Err(Error::not_found("message"));
        }
        let n = B::stmt(q::HIDE_MESSAGE)
            .id(user.0)
            .id(conversation.0)
            .int(seq)
            .execute(&mut tx)
            .await
            .map_err(db("hide message"))?;
        if n == 0 {
            return Ok(None);
        }
        let kind = ChangeKind::MessageHidden { seq };
        let change = record::<B>(&mut tx, NewChange::targeted(user, Some(conversation), kind)?).await?;
        commit(tx).await?;
        Ok(Some(change))
    }

    async fn search_messages(&self, viewer: UserId, search: &MessageSearch) -> Result<Vec<Message>> {
        if search.terms.is_empty() || search.limit == 0 {
            return Ok(Vec::new());
        }
        let query = (B::SQL.search_query)(&search.terms);
        let mut conn = self.reader().await?;
        B::stmt(B::SQL.search_messages)
            .text(&query)
            .id(viewer.0)
            .opt_id(search.conversation.map(|c| c.0))
            .int(i64::from(search.limit))
            .int(i64::from(search.offset))
            .fetch_all(&mut conn)
            .await
            .map_err(db("search messages"))?
            .iter()
            .map(|r| message_from_row(r, ""))
            .collect()
    }

    async fn update_receipts(
        &self,
        conversation: ConversationId,
        user: UserId,
        delivered: Option<i64>,
        read: Option<i64>,
    ) -> Result<(Member, Option<Change>)> {
        let mut tx = self.begin().await?;
        // The member locked (where the database can) with its conversation's last_seq, which
        // is not locked: it only grows, so clamping to a value read a moment ago is safe.
        let row = B::stmt(B::SQL.lock_member_with_last_seq)
            .id(conversation.0)
            .id(user.0)
            .fetch_optional(&mut tx)
            .await
            .map_err(db("get member"))?
            .ok_or_else(|| Error::not_found("member"))?;
        let mut member = member_from_row(&row, "")?;
        let (d, r) = member.merged_receipts(delivered, read, row.int("last_seq")?);
        if (d, r) == (member.delivered_seq, member.read_seq) {
            return Ok((member, None));
        }
        B::stmt(q::SET_RECEIPTS)
            .id(conversation.0)
            .id(user.0)
            .int(d)
            .int(r)
            .execute(&mut tx)
            .await
            .map_err(db("update receipts"))?;
        let kind = ChangeKind::Receipt {
            user_id: user,
            delivered_seq: d,
            read_seq: r,
        };
        let change = record::<B>(&mut tx, NewChange::conversation(conversation, kind)?).await?;
        commit(tx).await?;
        member.delivered_seq = d;
        member.read_seq = r;
        Ok((member, Some(change)))
    }

    // ---- edits and reactions -----------------------------------------------------------

    async fn edit_message(
        &self,
        conversation: ConversationId,
        seq: i64,
        content: &Content,
        now: Timestamp,
    ) -> Result<(Message, Option<Change>)> {
        let json = content_json(content)?;
        let mut tx = self.begin().await?;
        let mut message = fetch_message::<B>(&mut tx, B::SQL.lock_message, conversation, seq)
            .await?
            .ok_or_else(|| Error::not_found("message"))?;
        if message.deleted_at.is_some() {
            return Err(Error::conflict("message deleted"));
        }
        if message.content.as_ref() == Some(content) {
            return Ok((message, None));
        }
        B::stmt(q::EDIT_MESSAGE)
            .id(conversation.0)
            .int(seq)
            .text(&json)
            .int(now)
            .execute(&mut tx)
            .await
            .map_err(db("edit message"))?;
        let kind = ChangeKind::MessageEdited {
            seq,
            content: Some(content.clone()),
            edited_at: now,
        };
        let change = record::<B>(&mut tx, NewChange::about_message(conversation, seq, kind)?).await?;
        commit(tx).await?;
        message.content = Some(content.clone());
        message.edited_at = Some(now);
        Ok((message, Some(change)))
    }

    async fn add_reaction(
        &self,
        conversation: ConversationId,
        seq: i64,
        user: UserId,
        emoji: &str,
        now: Timestamp,
        max_distinct: u32,
    ) -> Result<Option<Change>> {
        let mut tx = self.begin().await?;
        // The message row locked (Postgres) serializes the reactions of one message, so the
        // distinct-emoji count below cannot be raced past the bound.
        let message = fetch_message::<B>(&mut tx, B::SQL.lock_message, conversation, seq)
            .await?
            .ok_or_else(|| Error::not_found("message"))?;
        if message.deleted_at.is_some() {
            return Err(Error::conflict("message deleted"));
        }
        let row = B::stmt(q::REACTION_EMOJI)
            .id(conversation.0)
            .int(seq)
            .text(emoji)
            .fetch_one(&mut tx)
            .await
            .map_err(db("count reactions"))?;
        if row.int("has")? == 0 && row.int("distinct_emoji")? >= i64::from(max_distinct) {
            return Err(Error::TooLarge {
                what: "reactions".into(),
                limit: u64::from(max_distinct),
            });
        }
        let n = B::stmt(q::INSERT_REACTION)
            .id(conversation.0)
            .int(seq)
            .id(user.0)
            .text(emoji)
            .int(now)
            .execute(&mut tx)
            .await
            .map_err(db("add reaction"))?;
        if n == 0 {
            return Ok(None);
        }
        let kind = ChangeKind::ReactionAdded {
            seq,
            user_id: user,
            emoji: emoji.to_owned(),
        };
        let change = record::<B>(&mut tx, NewChange::about_message(conversation, seq, kind)?).await?;
        commit(tx).await?;
        Ok(Some(change))
    }

    async fn remove_reaction(
        &self,
        conversation: ConversationId,
        seq: i64,
        user: UserId,
        emoji: &str,
    ) -> Result<Option<Change>> {
        let mut tx = self.begin().await?;
        if fetch_message::<B>(&mut tx, B::SQL.lock_message, conversation, seq)
            .await?
            .is_none()
        {
            return Err(Error::not_found("message"));
        }
        let n = B::stmt(q::DELETE_REACTION)
            .id(conversation.0)
            .int(seq)
            .id(user.0)
            .text(emoji)
            .execute(&mut tx)
            .await
            .map_err(db("remove reaction"))?;
        if n == 0 {
            return Ok(None);
        }
        let kind = ChangeKind::ReactionRemoved {
            seq,
            user_id: user,
            emoji: emoji.to_owned(),
        };
        let change = record::<B>(&mut tx, NewChange::about_message(conversation, seq, kind)?).await?;
        commit(tx).await?;
        Ok(Some(change))
    }

    async fn reactions(&self, conversation: ConversationId, from: i64, to: i64) -> Result<Vec<StoredReaction>> {
        let mut conn = self.reader().await?;
        B::stmt(q::REACTIONS)
            .id(conversation.0)
            .int(from)
            .int(to)
            .fetch_all(&mut conn)
            .await
            .map_err(db("reactions"))?
            .iter()
            .map(|r| {
                Ok(StoredReaction {
                    seq: r.int("seq")?,
                    user_id: UserId(r.uuid("user_id")?),
                    emoji: r.text("emoji")?,
                    created_at: r.int("created_at")?,
                })
            })
            .collect()
    }

    // ---- blobs -------------------------------------------------------------------------

    async fn register_push_device(&self, device: &PushDevice) -> Result<()> {
        let mut tx = self.begin().await?;
        B::stmt(q::DELETE_PUSH_TOKEN_ELSEWHERE)
            .text(device.platform.as_str())
            .text(&device.token)
            .id(device.session_id.0)
            .execute(&mut tx)
            .await
            .map_err(db("move push token"))?;
        let n = B::stmt(q::UPSERT_PUSH_DEVICE)
            .id(device.session_id.0)
            .id(device.user_id.0)
            .text(device.platform.as_str())
            .text(&device.token)
            .text(&device.app_id)
            .opt_text(device.locale.as_deref())
            .int(device.updated_at)
            .execute(&mut tx)
            .await
            .map_err(conflict_on_unique(
                "register push device",
                "push token registered concurrently",
            ))?;
        if n == 0 {
            return Err(Error::not_found("session"));
        }
        commit(tx).await
    }

    async fn unregister_push_device(&self, session: SessionId) -> Result<bool> {
        let stmt = B::stmt(q::DELETE_PUSH_DEVICE).id(session.0);
        Ok(self.write_one("unregister push device", stmt).await? > 0)
    }

    async fn push_devices(&self, user: UserId, now: Timestamp) -> Result<Vec<PushDevice>> {
        let mut conn = self.reader().await?;
        B::stmt(q::PUSH_DEVICES)
            .id(user.0)
            .int(now)
            .fetch_all(&mut conn)
            .await
            .map_err(db("push devices"))?
            .iter()
            .map(push_device_from_row)
            .collect()
    }

    async fn remove_push_token(&self, platform: Platform, token: &str) -> Result<u64> {
        let stmt = B::stmt(q::DELETE_PUSH_TOKEN).text(platform.as_str()).text(token);
        self.write_one("remove push token", stmt).await
    }

    async fn set_mute(
        &self,
        conversation: ConversationId,
        user: UserId,
        muted: bool,
        until: Option<Timestamp>,
    ) -> Result<Option<Change>> {
        let mut tx = self.begin().await?;
        fetch_member::<B>(&mut tx, B::SQL.lock_member, conversation, user)
            .await?
            .ok_or_else(|| Error::not_found("member"))?;
        let before: Option<Option<Timestamp>> = B::stmt(q::GET_MUTE)
            .id(conversation.0)
            .id(user.0)
            .fetch_optional(&mut tx)
            .await
            .map_err(db("get mute"))?
            .map(|r| r.opt_int("muted_until"))
            .transpose()?;
        let after = muted.then_some(until);
        if before == after {
            return Ok(None);
        }
        let write = match after {
            Some(u) => B::stmt(q::UPSERT_MUTE).id(conversation.0).id(user.0).opt_int(u),
            None => B::stmt(q::DELETE_MUTE).id(conversation.0).id(user.0),
        };
        write.execute(&mut tx).await.map_err(db("set mute"))?;
        let kind = ChangeKind::Muted {
            muted,
            until: after.flatten(),
        };
        let change = record::<B>(&mut tx, NewChange::targeted(user, Some(conversation), kind)?).await?;
        commit(tx).await?;
        Ok(Some(change))
    }

    async fn mutes(&self, conversation: ConversationId) -> Result<Vec<Mute>> {
        let mut conn = self.reader().await?;
        B::stmt(q::MUTES)
            .id(conversation.0)
            .fetch_all(&mut conn)
            .await
            .map_err(db("mutes"))?
            .iter()
            .map(|r| {
                Ok(Mute {
                    user_id: UserId(r.uuid("user_id")?),
                    until: r.opt_int("muted_until")?,
                })
            })
            .collect()
    }

    async fn user_mutes(&self, user: UserId) -> Result<Vec<(ConversationId, Option<Timestamp>)>> {
        let mut conn = self.reader().await?;
        B::stmt(q::USER_MUTES)
            .id(user.0)
            .fetch_all(&mut conn)
            .await
            .map_err(db("user mutes"))?
            .iter()
            .map(|r| Ok((ConversationId(r.uuid("conversation_id")?), r.opt_int("muted_until")?)))
            .collect()
    }

    async fn total_unread(&self, user: UserId) -> Result<i64> {
        let mut conn = self.reader().await?;
        B::stmt(q::TOTAL_UNREAD)
            .id(user.0)
            .fetch_one(&mut conn)
            .await
            .map_err(db("total unread"))?
            .int("total")
    }

    async fn insert_blob(&self, meta: &BlobMeta) -> Result<()> {
        let size = i64::try_from(meta.size).map_err(|_| Error::invalid("size", "too large"))?;
        let mut conn = self.writer().await?;
        B::stmt(q::INSERT_BLOB)
            .text(&meta.key)
            .id(meta.owner_id.0)
            .text(&meta.content_type)
            .int(size)
            .opt_int(meta.width.map(i64::from))
            .opt_int(meta.height.map(i64::from))
            .text(purpose_str(meta.purpose))
            .int(meta.created_at)
            .execute(&mut conn)
            .await
            .map_err(conflict_on_unique("insert blob", "blob key exists"))?;
        Ok(())
    }

    async fn get_blob(&self, key: &str) -> Result<Option<BlobMeta>> {
        let mut conn = self.reader().await?;
        B::stmt(q::GET_BLOB)
            .text(key)
            .fetch_optional(&mut conn)
            .await
            .map_err(db("get blob"))?
            .map(|r| blob_from_row(&r))
            .transpose()
    }

    async fn delete_blob(&self, key: &str) -> Result<bool> {
        Ok(self.write_one("delete blob", B::stmt(q::DELETE_BLOB).text(key)).await? == 1)
    }

    async fn blob_shared_with(&self, key: &str, user: UserId) -> Result<bool> {
        let mut conn = self.reader().await?;
        B::stmt(B::SQL.blob_shared_with)
            .text(key)
            .id(user.0)
            .fetch_one(&mut conn)
            .await
            .map_err(db("blob shared with"))?
            .boolean("shared")
    }

    // ---- sync --------------------------------------------------------------------------

    async fn sync(&self, user: UserId, since: SyncCursor, limit: u32) -> Result<SyncPage> {
        let mut conn = self.reader().await?;
        let rows = B::stmt(B::SQL.sync)
            .id(user.0)
            .int(since)
            .int(i64::from(limit) + 1)
            .fetch_all(&mut conn)
            .await
            .map_err(db("sync"))?;
        sync_page(&rows, since, limit)
    }

    async fn latest_pos(&self) -> Result<SyncCursor> {
        let mut conn = self.reader().await?;
        B::stmt(B::SQL.latest_pos)
            .fetch_one(&mut conn)
            .await
            .map_err(db("latest pos"))?
            .int("latest")
    }

    async fn audience(&self, from: SyncCursor, to: SyncCursor) -> Result<Vec<UserId>> {
        if to <= from {
            return Ok(Vec::new());
        }
        let mut conn = self.reader().await?;
        let mut users = B::stmt(q::AUDIENCE)
            .int(from)
            .int(to)
            .fetch_all(&mut conn)
            .await
            .map_err(db("audience"))?
            .iter()
            .map(|r| r.uuid("id").map(UserId))
            .collect::<Result<Vec<_>>>()?;
        users.sort_unstable();
        Ok(users)
    }
}

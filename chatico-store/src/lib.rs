//! # chatico-store
//!
//! Where ChatiCO keeps its data: the [`chatico_core::ports::Store`] port on SQLite (feature
//! `sqlite`, the default: an embedded file, nothing to run) and on Postgres (feature
//! `postgres`), both through sqlx with embedded migrations applied on open
//! (`migrations/sqlite`, `migrations/postgres`). Blob stores live beside them, and (feature
//! `redis`) the state several gateway nodes share: presence, typing and the OTP cache.
//!
//! Both backends keep the port's contracts: every write is one transaction that records its
//! sync changes; `insert_message` allocates a gap-free seq, is idempotent on
//! `(sender, client_msg_id)` and answers only after commit, with concurrent calls batched
//! into one transaction (group commit, in the private `writer` module); sync positions are
//! commit-ordered; reads are single statements shaped for the screen; a lost database answers
//! `unavailable`.

#![warn(missing_docs)]

pub mod blob;
// The SQL layer both backends share; nothing of it is built without one.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod codec;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod db_error;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod writer;

#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteConfig, SqliteDurability, SqliteStore};

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresConfig, PostgresStore};

#[cfg(feature = "redis")]
pub mod redis;

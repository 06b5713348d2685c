//! Mapping sqlx errors to [`chatico_core::Error`]: anything that means "the database cannot
//! be reached right now" becomes [`Error::Unavailable`] (retry later; nothing acknowledged was
//! lost), everything else [`Error::Internal`]. Details go to `tracing`, never to the caller's
//! wire body (the core's `Error::body` hides both reasons).

use chatico_core::Error;

/// Postgres SQLSTATEs that mean the server or the connection is going away or overloaded.
fn pg_unavailable(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources (too many connections, disk full)
        || code.starts_with("57P") // admin/crash shutdown, cannot connect now
        || code == "40001" // serialization failure: retry
        || code == "40P01" // deadlock detected: retry
}

/// SQLite result codes (primary, possibly extended) that are transient or environmental.
fn sqlite_unavailable(code: &str) -> bool {
    let Ok(n) = code.parse::<i64>() else { return false };
    matches!(
        n & 0xff,
        5  // SQLITE_BUSY
        | 6  // SQLITE_LOCKED
        | 10 // SQLITE_IOERR
        | 13 // SQLITE_FULL
        | 14 // SQLITE_CANTOPEN
    )
}

/// True if the error is a unique-constraint violation (either backend).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

/// Maps a sqlx error; `op` names the operation for the log.
pub(crate) fn map_err(op: &'static str, e: sqlx::Error) -> Error {
    let unavailable = match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| pg_unavailable(&c) || sqlite_unavailable(&c)),
        _ => false,
    };
    if unavailable {
        tracing::warn!(op, error = %e, "database unavailable");
        Error::unavailable(format!("database unavailable during {op}: {e}"))
    } else {
        tracing::error!(op, error = %e, "database error");
        Error::internal(format!("database error during {op}: {e}"))
    }
}

/// `map_err` as a closure for `.map_err(db(op))`.
pub(crate) fn db(op: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| map_err(op, e)
}

/// Why a group-commit batch did not commit: a database error kept raw (so the caller can
/// tell a unique violation, i.e. the same idempotency key stored concurrently by another
/// process) or an already decided error.
pub(crate) enum BatchError {
    Db(&'static str, sqlx::Error),
    Core(Error),
}

impl From<Error> for BatchError {
    fn from(e: Error) -> Self {
        BatchError::Core(e)
    }
}

impl BatchError {
    pub(crate) fn into_error(self) -> Error {
        match self {
            BatchError::Db(op, e) => map_err(op, e),
            BatchError::Core(e) => e,
        }
    }

    pub(crate) fn is_unique_violation(&self) -> bool {
        matches!(self, BatchError::Db(_, e) if is_unique_violation(e))
    }
}

/// `BatchError::Db` as a closure for `.map_err(raw(op))`.
pub(crate) fn raw(op: &'static str) -> impl Fn(sqlx::Error) -> BatchError {
    move |e| BatchError::Db(op, e)
}

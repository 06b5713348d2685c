//! Test schemas in the shared PostgreSQL: a guard that drops a test's schema when the test
//! ends (also when it panics), and a sweep of the schemas killed runs left behind.
//!
//! Test schemas are named `<prefix>_<pid>_<unix nanos>` (see
//! [`crate::process::unique_suffix`]), so a sweep can tell their age from the name alone.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Runs `f` against `url` on a thread of its own (its own small runtime), so it works from
/// `Drop`, from inside an async test and while unwinding. Errors are printed, not raised:
/// cleaning up must never fail a test.
fn with_pg(
    url: &str,
    what: &str,
    f: impl FnOnce(&mut sqlx::PgConnection) -> futures::future::BoxFuture<'_, Result<(), sqlx::Error>> + Send + 'static,
) {
    let url = url.to_owned();
    let what = what.to_owned();
    let r = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            use sqlx::Connection;
            let mut conn = tokio::time::timeout(Duration::from_secs(10), sqlx::PgConnection::connect(&url))
                .await
                .map_err(|_| "connect timed out".to_owned())?
                .map_err(|e| e.to_string())?;
            tokio::time::timeout(Duration::from_secs(30), f(&mut conn))
                .await
                .map_err(|_| "timed out".to_owned())?
                .map_err(|e| e.to_string())
        })
    })
    .join();
    match r {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("{what}: {e}"),
        Err(_) => eprintln!("{what}: the cleanup thread panicked"),
    }
}

/// Drops `schema` (and everything in it) now.
pub fn drop_schema(url: &str, schema: &str) {
    let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", schema.replace('"', ""));
    with_pg(url, &format!("dropping schema {schema}"), move |c| {
        Box::pin(async move { sqlx::query(&sql).execute(c).await.map(|_| ()) })
    });
}

/// Drops a test's schema when dropped: hold it for as long as the test uses the schema.
pub struct SchemaGuard {
    url: String,
    /// The schema's name.
    pub schema: String,
}

impl SchemaGuard {
    /// Guards `schema` in the database at `url`.
    pub fn new(url: &str, schema: &str) -> SchemaGuard {
        SchemaGuard {
            url: url.to_owned(),
            schema: schema.to_owned(),
        }
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        drop_schema(&self.url, &self.schema);
    }
}

/// The age of a schema named `<prefix>_<pid>_<unix nanos>`, if it is one of `prefix`'s.
pub fn schema_age(name: &str, prefix: &str, now: SystemTime) -> Option<Duration> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('_')?;
    let (pid, nanos) = rest.split_once('_')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || !nanos.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let at = UNIX_EPOCH + Duration::from_nanos(nanos.parse::<u64>().ok()?);
    Some(now.duration_since(at).unwrap_or(Duration::ZERO))
}

/// Drops every schema `<prefix>_<pid>_<nanos>` of one of `prefixes` older than `older_than`
/// (left by runs that were killed before their guards ran). Once per process and prefix set
/// is enough: call it when a suite starts.
pub fn sweep_stale_schemas(url: &str, prefixes: &[&str], older_than: Duration) {
    let prefixes: Vec<String> = prefixes.iter().map(|p| (*p).to_owned()).collect();
    with_pg(url, "sweeping stale test schemas", move |c| {
        Box::pin(async move {
            let names: Vec<(String,)> = sqlx::query_as("SELECT nspname::text FROM pg_namespace")
                .fetch_all(&mut *c)
                .await?;
            let now = SystemTime::now();
            for (name,) in names {
                if prefixes
                    .iter()
                    .any(|p| schema_age(&name, p, now).is_some_and(|age| age > older_than))
                {
                    eprintln!("dropping stale test schema {name}");
                    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                        .execute(&mut *c)
                        .await?;
                }
            }
            Ok(())
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_the_prefix_with_a_pid_and_a_time_have_an_age() {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        let old = format!("cluster_42_{}", Duration::from_secs(5_000).as_nanos());
        assert_eq!(schema_age(&old, "cluster", now), Some(Duration::from_secs(5_000)));
        assert_eq!(schema_age(&old, "state", now), None);
        assert_eq!(schema_age("cluster_x_1", "cluster", now), None);
        assert_eq!(schema_age("cluster_42", "cluster", now), None);
        assert_eq!(schema_age("clusterx_42_1", "cluster", now), None);
        assert_eq!(schema_age("cluster_42_1a", "cluster", now), None);
        // A name from the future (clock skew) is brand new.
        let future = format!("state_1_{}", Duration::from_secs(20_000).as_nanos());
        assert_eq!(schema_age(&future, "state", now), Some(Duration::ZERO));
    }
}

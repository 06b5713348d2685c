//! Storage backends for ChatiCO (SQLite, Postgres, blob stores). Filled by the SQL-store and adapters issues.

pub mod blob;

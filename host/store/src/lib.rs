//! `ward-store`: Ward's persistence layer.
//!
//! Instances, their encrypted credentials, ingestion cursors, audit events,
//! directory users and the egress log, in SQLite today. Every query is a
//! runtime sqlx query written in SQL that PostgreSQL also accepts (`$n`
//! placeholders, `ON CONFLICT`, row-value comparisons), so a PostgreSQL
//! backend needs its own migration files but not its own queries.
//!
//! The ingestion guarantee lives in [`Store::commit_audit_page`]: a page's
//! events and the cursor that follows it commit in one transaction, and
//! events are unique per (instance, provider event id), so re-fetching a page
//! after a crash stores nothing twice and loses nothing.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod api;
mod credentials;
mod egress;
mod error;
mod ingest;
mod instances;
mod key;
mod model;
mod plugins;
mod schedule;
mod sinks;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chacha20poly1305::XChaCha20Poly1305;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

pub use api::{InstanceSettings, OauthOutcome, OauthState, StoreStats};
pub use error::StoreError;
pub use key::{KEY_LEN, MasterKey};
pub use model::{
    AUDIT_STREAM, Credentials, DEFAULT_PAGE, EgressRecord, EventOrder, EventQuery, Instance,
    InstanceStatus, MAX_PAGE, NewEvent, NewInstance, NewUser, StoredEvent, StoredUser,
    USERS_STREAM,
};
pub use plugins::PluginApproval;
pub use sinks::{SeqQuery, SequencedEvent, SinkLag, SinkState};

/// SQLite allows one writer at a time, so more connections only help
/// concurrent readers (API queries while ingestion runs); writers queue on
/// the busy timeout.
const MAX_CONNECTIONS: u32 = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite's default cap on bound parameters per statement (PostgreSQL's is
/// 65,535); multi-row inserts size their chunks under it.
pub(crate) const MAX_BOUND_PARAMS: usize = 32_766;

/// Handle to the database. Cloning is cheap and clones share the pool.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("pool", &self.inner.pool)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if absent) the SQLite file at `path` in WAL mode with
    /// `synchronous=NORMAL`, foreign keys on and a 5 s busy timeout, and
    /// applies pending migrations.
    ///
    /// A new file is created readable by its owner only: it holds tenants'
    /// audit trails even though credentials inside are encrypted.
    pub async fn open_sqlite(path: &Path, key: MasterKey) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        precreate_private(path).map_err(|e| open_err(sqlx::Error::Io(e)))?;

        // WAL with synchronous=NORMAL can lose the last commits on power
        // loss but never on a process crash, and never splits a transaction:
        // events and their cursor still land (or vanish) together.
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            // 8 MiB per connection (default 2 MiB): keeps the events
            // indexes' hot pages cached once a backfill passes ~1M rows,
            // where the default cost ~15% of ingest throughput. Pages are
            // allocated on use, so idle connections stay small.
            .pragma("cache_size", "-8192");
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate { source })?;
        Ok(Store {
            inner: Arc::new(Inner {
                pool,
                cipher: key.cipher(),
            }),
        })
    }

    /// Closes every connection, checkpointing the WAL. Other clones become
    /// unusable; call this on shutdown.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }
}

#[cfg(unix)]
fn precreate_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        // SQLite gives its -wal and -shm files the database file's mode.
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn precreate_private(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

/// Reads column `name`, reporting a type mismatch as a database error.
pub(crate) fn col<'r, T>(row: &'r SqliteRow, name: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    use sqlx::Row;
    row.try_get(name)
        .map_err(StoreError::db("decoding a stored row"))
}

/// `u64` counters are stored as BIGINT; values past `i64::MAX` cannot occur
/// in practice, so saturate rather than fail a whole batch.
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Appends `rows` tuples of `per_row` anonymous `?` placeholders to `sql`.
///
/// Multi-row inserts are the one place that does not use `$n`: SQLite maps
/// each named parameter to its index with a linear scan, which makes binding
/// a 6,000-parameter statement quadratic (it dominated ingestion profiles).
/// A PostgreSQL backend needs `$n` here instead; nothing else changes.
pub(crate) fn values_clause(sql: &mut String, rows: usize, per_row: usize) {
    let mut tuple = String::with_capacity(per_row * 2 + 1);
    tuple.push('(');
    for i in 0..per_row {
        tuple.push_str(if i == 0 { "?" } else { ",?" });
    }
    tuple.push(')');
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push_str(&tuple);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_clause_numbers_params() {
        let mut sql = String::new();
        values_clause(&mut sql, 2, 3);
        assert_eq!(sql, "(?,?,?),(?,?,?)");
    }
}

//! `ward-store`: Ward's persistence layer.
//!
//! Instances, their encrypted credentials, ingestion cursors, audit events,
//! directory users and the egress log, in SQLite (the embedded default) or
//! PostgreSQL (several daemons sharing one database). Every query is a
//! runtime sqlx query written in SQL both accept (`$n` placeholders,
//! `ON CONFLICT`, row-value comparisons), run through [`dispatch!`] on
//! whichever pool the store holds; the backends differ only in their
//! migration files (`migrations/sqlite`, `migrations/postgres`) and in the
//! placeholders of multi-row inserts ([`values_clause`]).
//!
//! The ingestion guarantee lives in [`Store::commit_audit_page`]: a page's
//! events and the cursor that follows it commit in one transaction, and
//! events are unique per (instance, provider event id), so re-fetching a page
//! after a crash stores nothing twice and loses nothing.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

/// Runs `$body` with `$p` bound to the store's pool, whichever backend it
/// is. The body is compiled once per backend, so the same query text and
/// binds serve both; it must evaluate to the same type in both arms.
macro_rules! dispatch {
    ($store:expr, $p:ident => $body:expr) => {
        match $store.pool() {
            $crate::Pool::Sqlite($p) => $body,
            $crate::Pool::Postgres($p) => $body,
        }
    };
}

mod api;
mod budgets;
mod checkpoint;
mod credentials;
mod egress;
mod error;
mod ingest;
mod instances;
mod key;
mod leases;
pub mod migrate;
mod model;
mod plugins;
mod private_file;
mod schedule;
mod sinks;
pub mod testing;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chacha20poly1305::XChaCha20Poly1305;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

pub use api::{InstanceSettings, OauthOutcome, OauthState, StoreStats};
pub use budgets::RateTake;
pub use error::StoreError;
pub use key::{KEY_LEN, MasterKey};
pub use leases::{Fence, Lease};
pub use model::{
    AUDIT_STREAM, Credentials, DEFAULT_PAGE, EgressRecord, EventOrder, EventQuery, Instance,
    InstanceStatus, MAX_PAGE, NewEvent, NewInstance, NewUser, StoredEvent, StoredUser,
    USERS_STREAM,
};
pub use plugins::PluginApproval;
pub use private_file::create_private_file;
pub use sinks::{SeqQuery, SequencedEvent, SinkLag, SinkState};

/// SQLite allows one writer at a time, so more connections only help
/// concurrent readers (API queries while ingestion runs); writers queue on
/// the busy timeout.
const MAX_CONNECTIONS: u32 = 4;
/// PostgreSQL serves concurrent writers; a few more connections let the
/// scheduler's workers commit while the API reads.
const PG_MAX_CONNECTIONS: u32 = 8;
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
    pool: Pool,
    cipher: XChaCha20Poly1305,
    /// SQLite: checkpoints the WAL after commits, off the commit path.
    checkpointer: Option<checkpoint::Checkpointer>,
    /// SQLite: held by the write transaction in progress (see
    /// [`Store::write_turn`]).
    write_turn: tokio::sync::Mutex<()>,
}

/// The database behind a [`Store`].
#[derive(Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One SQLite file, one daemon.
    Sqlite,
    /// A PostgreSQL database, shareable by several daemons.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`, as `/healthz` reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("pool", &self.inner.pool)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store named by a `store.url`: `sqlite://PATH` or
    /// `postgres://…` (also `postgresql://…`).
    pub async fn open(url: &str, key: MasterKey) -> Result<Store, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            return Store::open_sqlite(Path::new(path), key).await;
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Store::open_postgres(url, key).await;
        }
        Err(StoreError::UnsupportedUrl {
            url: redact_url(url),
        })
    }

    /// Connects to a PostgreSQL database and applies pending migrations
    /// (under PostgreSQL's migration lock, so daemons starting together
    /// migrate once).
    pub async fn open_postgres(url: &str, key: MasterKey) -> Result<Store, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(PG_MAX_CONNECTIONS)
            .connect(url)
            .await
            .map_err(|source| StoreError::Connect {
                url: redact_url(url),
                source,
            })?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate { source })?;
        Ok(Store {
            inner: Arc::new(Inner {
                pool: Pool::Postgres(pool),
                cipher: key.cipher(),
                checkpointer: None,
                write_turn: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Waits until no other write transaction of this store is in progress,
    /// on SQLite; the guard keeps the turn until it is dropped. Every
    /// `begin()` of a write transaction takes it first.
    ///
    /// SQLite admits one writer at a time, and a connection that finds the
    /// file locked sleeps in SQLite's busy handler for 1, 2, 5, 10, 15 ms…
    /// before trying again, so it could start up to 10 ms after the lock
    /// was free (`strace` counted 302 such sleeps in a 100,000-event
    /// backfill, 0 with the turn; BENCHMARKS.md, fifth pass). Queued here,
    /// the next writer starts as soon as the last one commits. Writes
    /// outside a transaction do not take the turn and still fall back on
    /// the busy handler. PostgreSQL locks rows, not the database: no turn
    /// is taken.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.pool() {
            Pool::Sqlite(_) => Some(self.inner.write_turn.lock().await),
            Pool::Postgres(_) => None,
        }
    }

    /// Which engine this store runs on.
    pub fn backend(&self) -> Backend {
        match self.pool() {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

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
            .pragma("cache_size", "-8192")
            // 16 KiB pages (default 4 KiB) for a new file: an audit page of
            // 1,000 events (~1.4 MB) then takes a quarter of the WAL frames,
            // write calls and b-tree pages. A file created with another page
            // size keeps it (WAL mode fixes it).
            .page_size(16 * 1024)
            // A backstop: the store's checkpointer keeps the WAL short.
            .pragma("wal_autocheckpoint", checkpoint::BACKSTOP_PAGES.to_string());
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options.clone())
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate { source })?;
        let checkpointer = checkpoint::Checkpointer::start(&options)
            .await
            .map_err(open_err)?;
        Ok(Store {
            inner: Arc::new(Inner {
                pool: Pool::Sqlite(pool),
                cipher: key.cipher(),
                checkpointer: Some(checkpointer),
                write_turn: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Closes every connection, checkpointing the WAL. Other clones become
    /// unusable; call this on shutdown.
    pub async fn close(&self) {
        if let Some(c) = &self.inner.checkpointer {
            c.stop().await;
        }
        dispatch!(self, p => p.close().await);
    }

    /// Asks the checkpointer (SQLite) to move the WAL into the database
    /// file soon; a no-op on PostgreSQL.
    pub(crate) fn wal_written(&self) {
        if let Some(c) = &self.inner.checkpointer {
            c.wake();
        }
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }
}

/// `url` without its password, for error messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
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

/// A column type both backends decode.
pub(crate) trait ColType:
    for<'r> sqlx::Decode<'r, sqlx::Sqlite>
    + sqlx::Type<sqlx::Sqlite>
    + for<'r> sqlx::Decode<'r, sqlx::Postgres>
    + sqlx::Type<sqlx::Postgres>
{
}

impl<T> ColType for T where
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite>
        + sqlx::Type<sqlx::Sqlite>
        + for<'r> sqlx::Decode<'r, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
{
}

/// A result row of either backend, so row decoders are written once.
pub(crate) trait StoreRow {
    fn get<T: ColType>(&self, name: &str) -> Result<T, sqlx::Error>;
}

impl StoreRow for SqliteRow {
    fn get<T: ColType>(&self, name: &str) -> Result<T, sqlx::Error> {
        sqlx::Row::try_get(self, name)
    }
}

impl StoreRow for PgRow {
    fn get<T: ColType>(&self, name: &str) -> Result<T, sqlx::Error> {
        sqlx::Row::try_get(self, name)
    }
}

/// Reads column `name`, reporting a type mismatch as a database error.
pub(crate) fn col<T: ColType, R: StoreRow>(row: &R, name: &str) -> Result<T, StoreError> {
    row.get(name)
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

/// Appends `rows` tuples of `per_row` placeholders to `sql`.
///
/// Multi-row inserts are the one place where the backends' SQL differs:
/// SQLite gets anonymous `?` because it maps each named parameter to its
/// index with a linear scan, which makes binding a 6,000-parameter statement
/// quadratic (it dominated ingestion profiles); PostgreSQL only knows `$n`.
pub(crate) fn values_clause(backend: Backend, sql: &mut String, rows: usize, per_row: usize) {
    use std::fmt::Write;
    if backend == Backend::Sqlite {
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
        return;
    }
    for r in 0..rows {
        sql.push_str(if r > 0 { ",(" } else { "(" });
        for i in 0..per_row {
            let sep = if i > 0 { "," } else { "" };
            // Writing to a String cannot fail.
            let _ = write!(sql, "{sep}${}", r * per_row + i + 1);
        }
        sql.push(')');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_clause_numbers_params() {
        let mut sql = String::new();
        values_clause(Backend::Sqlite, &mut sql, 2, 3);
        assert_eq!(sql, "(?,?,?),(?,?,?)");
        let mut sql = String::new();
        values_clause(Backend::Postgres, &mut sql, 2, 3);
        assert_eq!(sql, "($1,$2,$3),($4,$5,$6)");
    }
}

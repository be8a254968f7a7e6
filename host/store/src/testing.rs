//! Support for test harnesses (this crate's tests and `ward-tests`): a
//! fresh PostgreSQL database per test on the server named by
//! `WARD_TEST_POSTGRES_URL`. Not used by the daemon.

/// The advisory lock every event-inserting transaction takes on PostgreSQL,
/// for tests that play a second daemon in the middle of a commit.
pub use crate::ingest::EVENT_SEQ_LOCK;

use rand::RngCore;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The environment variable naming the test server's superuser URL.
pub const POSTGRES_URL_ENV: &str = "WARD_TEST_POSTGRES_URL";

/// What a test says when it needs PostgreSQL and has none.
pub const HOW_TO_START: &str = "WARD_TEST_POSTGRES_URL is not set: the PostgreSQL tests need a server. \
     Run them through `cargo xtask test [CARGO TEST ARGS…]` (e.g. `--test scale_out`), which starts a throwaway cluster \
     (initdb/pg_ctl in a temp dir on a loopback port), sets the variable and removes the cluster \
     afterwards; or set WARD_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/postgres to a server \
     where USER may create databases";

/// Creates a database with a random name on the test server and returns
/// its URL. Fails (never skips) with [`HOW_TO_START`] when the variable
/// is unset.
pub async fn fresh_postgres_database() -> Result<String, String> {
    let admin = std::env::var(POSTGRES_URL_ENV).map_err(|_| HOW_TO_START.to_owned())?;
    let mut bytes = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let name: String = std::iter::once("ward_test_".to_owned())
        .chain(bytes.iter().map(|b| format!("{b:02x}")))
        .collect();
    let mut conn = PgConnection::connect(&admin).await.map_err(|e| {
        format!(
            "connecting to {} ({POSTGRES_URL_ENV}): {e}; is the server running?",
            crate::redact_url(&admin)
        )
    })?;
    // The name is ours (hex), so it needs no quoting beyond this.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .map_err(|e| format!("creating test database {name}: {e}"))?;
    let _ = conn.close().await;
    let base = admin.split('?').next().unwrap_or(&admin);
    let (server, _) = base
        .rsplit_once('/')
        .filter(|(server, _)| server.contains("://") && !server.ends_with('/'))
        .ok_or_else(|| {
            format!("{POSTGRES_URL_ENV} must look like postgres://USER@HOST:PORT/DATABASE")
        })?;
    Ok(format!("{server}/{name}"))
}

/// A test's hold on [`EVENT_SEQ_LOCK`] through its own connection: every
/// page commit on the database waits behind it, with its transaction open,
/// until [`SeqLockHold::release`]. Lets a test stop a daemon in the middle
/// of a commit, deterministically.
pub struct SeqLockHold {
    conn: PgConnection,
}

impl SeqLockHold {
    /// Takes the lock on the database at `url`.
    pub async fn take(url: &str) -> Result<SeqLockHold, String> {
        let mut conn = PgConnection::connect(url)
            .await
            .map_err(|e| format!("connecting to {}: {e}", crate::redact_url(url)))?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(EVENT_SEQ_LOCK)
            .execute(&mut conn)
            .await
            .map_err(|e| format!("taking the event sequence lock: {e}"))?;
        Ok(SeqLockHold { conn })
    }

    /// How many transactions wait for the lock (page commits held).
    pub async fn waiters(&mut self) -> Result<i64, String> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(&mut self.conn)
        .await
        .map_err(|e| format!("counting the event sequence lock's waiters: {e}"))
    }

    /// Lets the held commits go, oldest first.
    pub async fn release(mut self) -> Result<(), String> {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(EVENT_SEQ_LOCK)
            .execute(&mut self.conn)
            .await
            .map_err(|e| format!("releasing the event sequence lock: {e}"))?;
        let _ = self.conn.close().await;
        Ok(())
    }
}

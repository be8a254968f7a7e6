//! Support for test harnesses (this crate's tests and `ward-tests`): a
//! fresh PostgreSQL database per test on the server named by
//! `WARD_TEST_POSTGRES_URL`. Not used by the daemon.

use rand::RngCore;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The environment variable naming the test server's superuser URL.
pub const POSTGRES_URL_ENV: &str = "WARD_TEST_POSTGRES_URL";

/// What a test says when it needs PostgreSQL and has none.
pub const HOW_TO_START: &str = "WARD_TEST_POSTGRES_URL is not set: the PostgreSQL tests need a server. \
     Run them through `cargo xtask pg-test [CARGO TEST ARGS…]`, which starts a throwaway cluster \
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

//! Shared helpers for the store's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use sqlx::AnyConnection;
use sqlx::Connection;
use tempfile::TempDir;
pub use ward_store::Backend;
use ward_store::{EgressRecord, Instance, MasterKey, NewEvent, NewInstance, NewUser, Store};

/// Runs each listed `async fn name(backend: Backend)` as two tests,
/// `sqlite::name` and `postgres::name`: every store test holds for both.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name(ward_store::Backend::Sqlite).await
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                super::$name(ward_store::Backend::Postgres).await
            })*
        }
    };
}

pub struct TestDb {
    pub dir: TempDir,
    /// The SQLite file (unused on PostgreSQL).
    pub path: PathBuf,
    /// What `Store::open` takes: `sqlite://…` or `postgres://…`.
    pub url: String,
    pub key: MasterKey,
    pub store: Store,
}

/// A fresh store: a new SQLite file, or a new database on the PostgreSQL
/// server named by `WARD_TEST_POSTGRES_URL` (one database per test).
pub async fn open(backend: Backend) -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.db");
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}", path.display()),
        Backend::Postgres => ward_store::testing::fresh_postgres_database()
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    };
    let key = MasterKey::generate();
    let store = Store::open(&url, key.clone()).await.unwrap();
    assert_eq!(store.backend(), backend);
    TestDb {
        dir,
        path,
        url,
        key,
        store,
    }
}

impl TestDb {
    /// A connection that bypasses the store, for inspecting or tampering
    /// with rows (`$n` placeholders work on both backends).
    pub async fn raw(&self) -> AnyConnection {
        sqlx::any::install_default_drivers();
        let url = match self.store.backend() {
            Backend::Sqlite => format!("sqlite://{}", self.path.display()),
            Backend::Postgres => self.url.clone(),
        };
        AnyConnection::connect(&url).await.unwrap()
    }
}

pub fn new_instance(name: &str) -> NewInstance {
    NewInstance {
        plugin_key: "okta".into(),
        plugin_version: "1.2.3".into(),
        name: name.into(),
        config: BTreeMap::from([("domain".to_string(), format!("{name}.okta.com"))]),
        tags: vec!["prod".into(), name.into()],
    }
}

pub async fn instance(store: &Store, name: &str) -> Instance {
    store.create_instance(&new_instance(name)).await.unwrap()
}

pub fn event(id: &str, time_ms: i64) -> NewEvent {
    NewEvent {
        event_id: id.into(),
        time_ms,
        action: "user.session.start".into(),
        actor_id: Some(format!("actor-{}", time_ms % 7)),
        actor_kind: "user".into(),
        actor_name: Some(format!("Actor {}", time_ms % 7)),
        actor_email: Some(format!("actor{}@example.com", time_ms % 7)),
        targets_json: r#"[{"type":"app","id":"0oa1"}]"#.into(),
        ip: Some("192.0.2.10".into()),
        user_agent: Some("Mozilla/5.0".into()),
        outcome: "success".into(),
        raw_json: format!(r#"{{"uuid":"{id}","published":{time_ms}}}"#),
    }
}

/// `n` events with ids `{prefix}-{i}` and increasing times from `start_ms`.
pub fn events(prefix: &str, start_ms: i64, n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|i| event(&format!("{prefix}-{i}"), start_ms + i as i64))
        .collect()
}

pub fn user(id: &str, email: &str) -> NewUser {
    NewUser {
        user_id: id.into(),
        email: Some(email.into()),
        login: Some(email.into()),
        name: Some(format!("User {id}")),
        status: Some("ACTIVE".into()),
        is_admin: false,
        created_ms: Some(1_600_000_000_000),
        last_login_ms: None,
        raw_json: format!(r#"{{"id":"{id}"}}"#),
    }
}

pub fn egress(instance_id: &str, at_ms: i64, allowed: bool) -> EgressRecord {
    EgressRecord {
        instance_id: instance_id.into(),
        plugin_key: "okta".into(),
        call: "fetch-audit".into(),
        at_ms,
        method: "GET".into(),
        url: format!("https://acme.okta.com/api/v1/logs?after={at_ms}"),
        allowed,
        reason: (!allowed).then(|| "host not granted".to_string()),
        grant: allowed.then(|| "http:acme.okta.com".to_string()),
        status: allowed.then_some(200),
        bytes_sent: 0,
        bytes_received: if allowed { 12_345 } else { 0 },
        latency_ms: 42,
    }
}

/// The instance's audit cursor, as a test compares it.
pub async fn audit_cursor(store: &Store, id: &str) -> Option<String> {
    store.cursor(id, ward_store::AUDIT_STREAM).await.unwrap()
}

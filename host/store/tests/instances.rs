#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ward_store::{AUDIT_STREAM, InstanceStatus, Store, StoreError, USERS_STREAM};

async fn create_list_get(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;
    let b = instance(&db.store, "globex").await;

    assert_eq!(a.id.len(), 32);
    assert!(a.id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a.id, b.id);
    assert_eq!(a.status, InstanceStatus::Connecting);
    assert_eq!(a.config["domain"], "acme.okta.com");
    assert_eq!(a.tags, vec!["prod", "acme"]);
    assert!(a.created_ms > 1_600_000_000_000);
    assert_eq!(a.last_success_ms, None);
    assert_eq!(a.credentials_updated_ms, None);

    assert_eq!(db.store.instance(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(db.store.instance("nope").await.unwrap(), None);

    let all = db.store.instances().await.unwrap();
    let ids: Vec<_> = all.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(all.len(), 2);
    assert!(ids.contains(&a.id.as_str()) && ids.contains(&b.id.as_str()));
}

async fn status_and_success(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;

    db.store
        .set_status(
            &a.id,
            InstanceStatus::Error,
            Some("token revoked: reconnect"),
        )
        .await
        .unwrap();
    db.store
        .record_success(&a.id, 1_700_000_000_123)
        .await
        .unwrap();
    let got = db.store.instance(&a.id).await.unwrap().unwrap();
    assert_eq!(got.status, InstanceStatus::Error);
    assert_eq!(
        got.status_message.as_deref(),
        Some("token revoked: reconnect")
    );
    assert_eq!(got.last_success_ms, Some(1_700_000_000_123));

    db.store
        .set_status(&a.id, InstanceStatus::Connected, None)
        .await
        .unwrap();
    let got = db.store.instance(&a.id).await.unwrap().unwrap();
    assert_eq!(got.status, InstanceStatus::Connected);
    assert_eq!(got.status_message, None);

    let err = db
        .store
        .set_status("missing", InstanceStatus::Disabled, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InstanceNotFound { .. }), "{err}");
    assert!(matches!(
        db.store.record_success("missing", 1).await,
        Err(StoreError::InstanceNotFound { .. })
    ));
}

#[test]
fn status_strings() {
    for s in [
        InstanceStatus::Connecting,
        InstanceStatus::Connected,
        InstanceStatus::Error,
        InstanceStatus::Disabled,
    ] {
        assert_eq!(s.as_str().parse::<InstanceStatus>().unwrap(), s);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            format!("\"{}\"", s.as_str())
        );
    }
    let err = "paused".parse::<InstanceStatus>().unwrap_err();
    assert!(err.to_string().contains("paused"), "{err}");
}

async fn reopen_keeps_data(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;
    db.store
        .commit_audit_page(&a.id, &events("e", 1000, 5), "c5")
        .await
        .unwrap();
    db.store.close().await;

    let store = Store::open(&db.url, db.key.clone()).await.unwrap();
    assert_eq!(store.instance(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.event_count(&a.id).await.unwrap(), 5);
    assert_eq!(
        store.cursor(&a.id, AUDIT_STREAM).await.unwrap().as_deref(),
        Some("c5")
    );
}

#[cfg(unix)]
#[tokio::test]
async fn database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let db = open(Backend::Sqlite).await;
    let mode = std::fs::metadata(&db.path).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "mode {mode:o}");
}

async fn delete_cascades(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;
    let b = instance(&db.store, "globex").await;
    for inst in [&a, &b] {
        db.store
            .put_credentials(
                &inst.id,
                &ward_store::Credentials {
                    secrets: [("api_token".to_string(), "t".to_string())].into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        db.store
            .commit_audit_page(&inst.id, &events("e", 0, 10), "c")
            .await
            .unwrap();
        db.store
            .commit_users_page(&inst.id, &[user("u1", "u1@x")], Some("uc"))
            .await
            .unwrap();
        db.store
            .append_egress(&[egress(&inst.id, 5, true)])
            .await
            .unwrap();
    }

    db.store.delete_instance(&a.id).await.unwrap();

    assert_eq!(db.store.instance(&a.id).await.unwrap(), None);
    assert_eq!(db.store.credentials(&a.id).await.unwrap(), None);
    assert_eq!(db.store.cursor(&a.id, AUDIT_STREAM).await.unwrap(), None);
    assert_eq!(db.store.cursor(&a.id, USERS_STREAM).await.unwrap(), None);
    assert_eq!(db.store.event_count(&a.id).await.unwrap(), 0);
    assert_eq!(db.store.user_count(&a.id).await.unwrap(), 0);
    assert!(db.store.egress(&a.id, 10).await.unwrap().is_empty());

    // Every table, checked directly, holds nothing of the deleted instance…
    let mut conn = db.raw().await;
    for table in ["credentials", "cursors", "events", "users", "egress"] {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {table} WHERE instance_id = $1"
        )))
        .bind(&a.id)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(n, 0, "{table}");
    }

    // …and the other instance is untouched.
    assert!(db.store.credentials(&b.id).await.unwrap().is_some());
    assert_eq!(db.store.event_count(&b.id).await.unwrap(), 10);
    assert_eq!(db.store.user_count(&b.id).await.unwrap(), 1);
    assert_eq!(db.store.egress(&b.id, 10).await.unwrap().len(), 1);

    let err = db.store.delete_instance(&a.id).await.unwrap_err();
    assert!(matches!(err, StoreError::InstanceNotFound { .. }), "{err}");
}

both_backends!(
    create_list_get,
    status_and_success,
    reopen_keeps_data,
    delete_cascades,
);

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use ward_store::{Credentials, MasterKey, Store, StoreError};

fn creds(token: &str) -> Credentials {
    Credentials {
        secrets: BTreeMap::from([
            ("api_token".to_string(), token.to_string()),
            ("client_secret".to_string(), format!("{token}-client")),
        ]),
        expires_at_ms: Some(1_900_000_000_000),
        scopes: vec!["okta.logs.read".into(), "okta.users.read".into()],
        principal: Some("svc-ward@acme".into()),
    }
}

async fn round_trip_and_replace(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;
    assert_eq!(db.store.credentials(&a.id).await.unwrap(), None);

    let first = creds("00aFirstToken");
    db.store.put_credentials(&a.id, &first).await.unwrap();
    assert_eq!(db.store.credentials(&a.id).await.unwrap(), Some(first));
    let updated = db
        .store
        .instance(&a.id)
        .await
        .unwrap()
        .unwrap()
        .credentials_updated_ms;
    assert!(updated.is_some());

    let second = creds("00aSecondToken");
    db.store.put_credentials(&a.id, &second).await.unwrap();
    assert_eq!(db.store.credentials(&a.id).await.unwrap(), Some(second));

    let err = db
        .store
        .put_credentials("missing", &creds("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InstanceNotFound { .. }), "{err}");
}

#[test]
fn debug_prints_names_not_values() {
    let shown = format!("{:?}", creds("00aSuperSecretValue"));
    assert!(
        shown.contains("api_token") && shown.contains("client_secret"),
        "{shown}"
    );
    assert!(!shown.contains("SuperSecret"), "{shown}");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Reads the database file and its WAL (and shared-memory index) raw.
fn raw_files(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let p = format!("{}{suffix}", path.display());
            std::fs::read(&p).ok().map(|bytes| (p, bytes))
        })
        .collect()
}

#[tokio::test]
async fn secrets_never_reach_the_file() {
    let db = open(Backend::Sqlite).await;
    let a = instance(&db.store, "acme").await;
    let secret = "00aPLAINTEXT-canary-7f3c9e1d";
    db.store
        .put_credentials(&a.id, &creds(secret))
        .await
        .unwrap();

    // While open, the fresh write sits in the WAL.
    let files = raw_files(&db.path);
    assert!(files.iter().any(|(p, _)| p.ends_with("-wal")));
    for (p, bytes) in &files {
        assert!(!contains(bytes, secret.as_bytes()), "secret found in {p}");
    }

    // After close, the checkpoint has moved it into the main file.
    db.store.close().await;
    let files = raw_files(&db.path);
    assert!(!files.is_empty());
    for (p, bytes) in &files {
        assert!(!contains(bytes, secret.as_bytes()), "secret found in {p}");
        assert!(
            !contains(bytes, b"client_secret"),
            "secret name found in {p}: the blob should hide names too"
        );
    }
    // Sanity check that the grep can find things: non-secret config is there.
    let main = std::fs::read(&db.path).unwrap();
    assert!(contains(&main, b"acme.okta.com"));
}

async fn wrong_master_key_fails_clearly(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;
    db.store
        .put_credentials(&a.id, &creds("tok"))
        .await
        .unwrap();
    db.store.close().await;

    let other = Store::open(&db.url, MasterKey::generate()).await.unwrap();
    let err = other.credentials(&a.id).await.unwrap_err();
    assert!(matches!(err, StoreError::Decrypt { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("can't be decrypted"), "{msg}");
    assert!(msg.contains("reconnect"), "{msg}");
    assert!(msg.contains(&a.id), "{msg}");
    other.close().await;

    // The right key still works: nothing was damaged by the failed read.
    let store = Store::open(&db.url, db.key.clone()).await.unwrap();
    assert_eq!(store.credentials(&a.id).await.unwrap(), Some(creds("tok")));
}

async fn row_copied_to_another_instance_fails(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;
    let b = instance(&db.store, "globex").await;
    db.store
        .put_credentials(&a.id, &creds("acme-token"))
        .await
        .unwrap();
    db.store
        .put_credentials(&b.id, &creds("globex-token"))
        .await
        .unwrap();

    let mut conn = db.raw().await;
    sqlx::query(
        "UPDATE credentials SET \
         nonce = (SELECT nonce FROM credentials WHERE instance_id = $1), \
         ciphertext = (SELECT ciphertext FROM credentials WHERE instance_id = $1) \
         WHERE instance_id = $2",
    )
    .bind(&a.id)
    .bind(&b.id)
    .execute(&mut conn)
    .await
    .unwrap();

    let err = db.store.credentials(&b.id).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Decrypt { instance_id } if *instance_id == b.id),
        "{err:?}"
    );
    assert!(err.to_string().contains("can't be decrypted"));
    // The source row is still fine.
    assert_eq!(
        db.store.credentials(&a.id).await.unwrap(),
        Some(creds("acme-token"))
    );
}

async fn flipped_ciphertext_bit_fails(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;
    db.store
        .put_credentials(&a.id, &creds("tok"))
        .await
        .unwrap();

    let mut conn = db.raw().await;
    let mut ct: Vec<u8> =
        sqlx::query_scalar("SELECT ciphertext FROM credentials WHERE instance_id = $1")
            .bind(&a.id)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    ct[3] ^= 0x01;
    sqlx::query("UPDATE credentials SET ciphertext = $1 WHERE instance_id = $2")
        .bind(ct)
        .bind(&a.id)
        .execute(&mut conn)
        .await
        .unwrap();

    assert!(matches!(
        db.store.credentials(&a.id).await,
        Err(StoreError::Decrypt { .. })
    ));
}

async fn each_write_uses_a_fresh_nonce(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;
    let mut conn = db.raw().await;
    let mut nonces = Vec::new();
    for _ in 0..3 {
        db.store
            .put_credentials(&a.id, &creds("same"))
            .await
            .unwrap();
        let n: Vec<u8> = sqlx::query_scalar("SELECT nonce FROM credentials WHERE instance_id = $1")
            .bind(&a.id)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(n.len(), 24);
        nonces.push(n);
    }
    assert_ne!(nonces[0], nonces[1]);
    assert_ne!(nonces[1], nonces[2]);
}

both_backends!(
    round_trip_and_replace,
    wrong_master_key_fails_clearly,
    row_copied_to_another_instance_fails,
    flipped_ciphertext_bit_fails,
    each_write_uses_a_fresh_nonce,
);

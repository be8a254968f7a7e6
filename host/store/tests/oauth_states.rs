//! OAuth states: a claim is exclusive, a release gives the state back in
//! the phase it was claimed in, and declined or expired states cannot be
//! claimed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use ward_store::{OauthState, Store};

async fn issue(store: &Store, hash: &str, expires_in_ms: i64) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    store
        .create_oauth_state(&OauthState {
            state_sha256: hash.to_owned(),
            element_key: "egnyte".into(),
            config: BTreeMap::from([("domain".to_owned(), "acme".to_owned())]),
            client_id: "client-1".into(),
            client_secret: Some("client-secret".into()),
            callback_url: "https://client.example.com/oauth/cb".into(),
            expires_ms: now + expires_in_ms,
            code_sha256: None,
        })
        .await
        .unwrap();
}

async fn a_claim_is_exclusive_and_a_release_restores_the_phase(backend: Backend) {
    let db = open(backend).await;
    let store = &db.store;

    // Issued, never returned: claimed with no code, secret decrypted.
    issue(store, "issued", 600_000).await;
    let st = store.claim_oauth_state("issued").await.unwrap().unwrap();
    assert_eq!(st.code_sha256, None);
    assert_eq!(st.client_secret.as_deref(), Some("client-secret"));
    assert!(store.claim_oauth_state("issued").await.unwrap().is_none());
    store.release_oauth_state("issued").await.unwrap();
    // Back to `issued`: Ward's callback can still record a code.
    assert_eq!(
        store
            .oauth_state_returned("issued", "code-hash", "the-code")
            .await
            .unwrap()
            .as_deref(),
        Some("egnyte")
    );
    // Returned: the claim carries the code, a release keeps it.
    let st = store.claim_oauth_state("issued").await.unwrap().unwrap();
    assert_eq!(st.code_sha256.as_deref(), Some("code-hash"));
    store.release_oauth_state("issued").await.unwrap();
    let st = store.claim_oauth_state("issued").await.unwrap().unwrap();
    assert_eq!(st.code_sha256.as_deref(), Some("code-hash"));
    assert!(store.claim_oauth_state("issued").await.unwrap().is_none());

    // Declined and expired states cannot be claimed.
    issue(store, "declined", 600_000).await;
    store.oauth_state_declined("declined").await.unwrap();
    assert!(store.claim_oauth_state("declined").await.unwrap().is_none());
    issue(store, "expired", -1_000).await;
    assert!(store.claim_oauth_state("expired").await.unwrap().is_none());
    assert!(
        store
            .claim_oauth_state("never-issued")
            .await
            .unwrap()
            .is_none()
    );
}

async fn the_outcome_shows_the_code_only_while_the_state_is_returned(backend: Backend) {
    let db = open(backend).await;
    let store = &db.store;
    issue(store, "s", 600_000).await;
    let o = store.oauth_outcome("s").await.unwrap().unwrap();
    assert_eq!(
        (o.phase.as_str(), o.code_returned, o.expired),
        ("issued", false, false)
    );
    assert_eq!(o.code, None);
    store
        .oauth_state_returned("s", "code-hash", "the-code")
        .await
        .unwrap();
    let o = store.oauth_outcome("s").await.unwrap().unwrap();
    assert_eq!(
        (o.phase.as_str(), o.code.as_deref()),
        ("returned", Some("the-code"))
    );
    // Sealed at rest: the code is not in the database file in clear.
    let on_disk: Vec<u8> = ["ward.db", "ward.db-wal"]
        .iter()
        .filter_map(|name| std::fs::read(db.dir.path().join(name)).ok())
        .flatten()
        .collect();
    assert!(
        !on_disk.windows(8).any(|w| w == b"the-code"),
        "the code is stored in clear"
    );
    // Claimed for an exchange: used, and the code is gone.
    store.claim_oauth_state("s").await.unwrap().unwrap();
    let o = store.oauth_outcome("s").await.unwrap().unwrap();
    assert_eq!((o.phase.as_str(), o.code_returned), ("consumed", true));
    assert_eq!(o.code, None);
    // Declined: consumed without a code; expired; never issued.
    issue(store, "d", 600_000).await;
    store.oauth_state_declined("d").await.unwrap();
    let o = store.oauth_outcome("d").await.unwrap().unwrap();
    assert_eq!((o.phase.as_str(), o.code_returned), ("consumed", false));
    issue(store, "e", -1_000).await;
    assert!(store.oauth_outcome("e").await.unwrap().unwrap().expired);
    assert!(store.oauth_outcome("never").await.unwrap().is_none());
}

both_backends!(
    a_claim_is_exclusive_and_a_release_restores_the_phase,
    the_outcome_shows_the_code_only_while_the_state_is_returned,
);

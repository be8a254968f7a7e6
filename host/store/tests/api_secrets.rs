//! API secret hashes offered by daemons sharing a store: the first
//! complete pair stored wins, later offers are refused and change nothing,
//! and an incomplete pair is replaced.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ward_store::Store;

async fn hashes(store: &Store) -> (String, String) {
    let stored = store.api_secret_hashes().await.unwrap();
    (stored["user"].clone(), stored["organization"].clone())
}

async fn daemons_offering_at_once_agree_on_one_pair(backend: Backend) {
    let db = open(backend).await;
    let mut offers = tokio::task::JoinSet::new();
    for i in 0..4 {
        // Each daemon has its own store handle: its own connections.
        let store = Store::open(&db.url, db.key.clone()).await.unwrap();
        offers.spawn(async move {
            let pair = (format!("user-{i}"), format!("org-{i}"));
            let taken = store.offer_api_secret_hashes(&pair.0, &pair.1).await;
            (pair, taken.unwrap())
        });
    }
    let winners: Vec<_> = offers
        .join_all()
        .await
        .into_iter()
        .filter(|(_, taken)| *taken)
        .map(|(pair, _)| pair)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one offer is taken: {winners:?}");
    assert_eq!(hashes(&db.store).await, winners[0]);
}

async fn a_stored_pair_is_kept_and_an_incomplete_one_replaced(backend: Backend) {
    let db = open(backend).await;
    let store = &db.store;
    // One hash without the other (a crash between two writes).
    store.set_api_secret_hash("user", "old-user").await.unwrap();
    assert!(store.offer_api_secret_hashes("u1", "o1").await.unwrap());
    assert_eq!(hashes(store).await, ("u1".into(), "o1".into()));
    // A complete pair stays; offering it again is answered yes.
    assert!(!store.offer_api_secret_hashes("u2", "o2").await.unwrap());
    assert!(!store.offer_api_secret_hashes("u1", "o2").await.unwrap());
    assert_eq!(hashes(store).await, ("u1".into(), "o1".into()));
    assert!(store.offer_api_secret_hashes("u1", "o1").await.unwrap());
}

both_backends!(
    daemons_offering_at_once_agree_on_one_pair,
    a_stored_pair_is_kept_and_an_incomplete_one_replaced,
);

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ward_store::{AUDIT_STREAM, StoreError, USERS_STREAM};

const TTL: i64 = 60_000;

async fn claim_renew_release(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;
    let b = instance(&db.store, "globex").await;
    let c = instance(&db.store, "initech").await;
    db.store.set_disabled(&c.id, true).await.unwrap();

    // Bounded: one at a time; disabled instances are skipped.
    let first = db.store.claim_leases("d1", TTL, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].owner.as_str(), first[0].epoch), ("d1", 1));
    let rest = db.store.claim_leases("d1", TTL, 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    let mut ids = vec![first[0].instance_id.clone(), rest[0].instance_id.clone()];
    ids.sort();
    let mut want = vec![a.id.clone(), b.id.clone()];
    want.sort();
    assert_eq!(ids, want);
    // Nothing left to claim, for us or anyone.
    assert!(
        db.store
            .claim_leases("d1", TTL, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let held = db.store.renew_leases("d1", TTL).await.unwrap();
    assert_eq!(held.len(), 2);
    assert!(held.iter().all(|l| l.owner == "d1" && l.epoch == 1));
    assert_eq!(db.store.lease(&a.id).await.unwrap().unwrap().owner, "d1");

    assert_eq!(db.store.release_leases("d1").await.unwrap(), 2);
    // A released lease is claimable at once, under a new epoch.
    let taken = db.store.claim_leases("d2", TTL, 10).await.unwrap();
    assert_eq!(taken.len(), 2);
    assert!(taken.iter().all(|l| l.owner == "d2" && l.epoch == 2));
    assert!(db.store.renew_leases("d1", TTL).await.unwrap().is_empty());
}

async fn a_lost_lease_cannot_commit(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;
    // A lease that lapses at once, so a second daemon may take it.
    let old = db.store.claim_leases("d1", -1, 10).await.unwrap().remove(0);
    db.store
        .commit_audit_page_fenced(&old.fence(), &a.id, &events("e", 1_000, 5), "c1")
        .await
        .unwrap();

    let new = db
        .store
        .claim_lease("d2", &a.id, TTL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((new.owner.as_str(), new.epoch), ("d2", old.epoch + 1));

    // The old holder's late pages are refused whole: no event, no cursor.
    let err = db
        .store
        .commit_audit_page_fenced(&old.fence(), &a.id, &events("late", 9_000, 5), "c-late")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Fenced { instance_id, owner, epoch }
            if *instance_id == a.id && owner == "d1" && *epoch == old.epoch),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("another daemon took the instance over")
    );
    let err = db
        .store
        .commit_users_page_fenced(&old.fence(), &a.id, &[user("u1", "u1@example.com")], None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced { .. }), "{err:?}");
    assert_eq!(db.store.event_count(&a.id).await.unwrap(), 5);
    assert_eq!(db.store.user_count(&a.id).await.unwrap(), 0);
    assert_eq!(
        db.store
            .cursor(&a.id, AUDIT_STREAM)
            .await
            .unwrap()
            .as_deref(),
        Some("c1")
    );
    assert_eq!(db.store.cursor(&a.id, USERS_STREAM).await.unwrap(), None);

    // The new holder commits.
    db.store
        .commit_audit_page_fenced(&new.fence(), &a.id, &events("e2", 2_000, 3), "c2")
        .await
        .unwrap();
    assert_eq!(db.store.event_count(&a.id).await.unwrap(), 8);
}

async fn a_held_lease_is_not_claimed(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;
    let held = db
        .store
        .claim_leases("d1", TTL, 10)
        .await
        .unwrap()
        .remove(0);
    // Claiming again renews without a new epoch.
    let again = db
        .store
        .claim_lease("d1", &a.id, TTL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.epoch, held.epoch);
    match backend {
        // Another daemon waits for expiry…
        Backend::Postgres => {
            assert!(
                db.store
                    .claim_leases("d2", TTL, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert_eq!(db.store.claim_lease("d2", &a.id, TTL).await.unwrap(), None);
        }
        // …except on SQLite, where the one daemon of the file holds all.
        Backend::Sqlite => {
            let taken = db.store.claim_leases("d2", TTL, 10).await.unwrap();
            assert_eq!(taken[0].epoch, held.epoch + 1);
        }
    }
}

both_backends!(
    claim_renew_release,
    a_lost_lease_cannot_commit,
    a_held_lease_is_not_claimed,
);

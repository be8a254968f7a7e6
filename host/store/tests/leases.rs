#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use ward_store::{StoreError, USERS_STREAM};

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
    assert_eq!(audit_cursor(&db.store, &a.id).await.as_deref(), Some("c1"));
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

/// Sessions of this test's database waiting on a lock.
async fn lock_waiters(conn: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(conn)
    .await
    .unwrap()
}

async fn until_waiters(conn: &mut sqlx::PgConnection, n: i64) {
    for _ in 0..3000 {
        if lock_waiters(conn).await >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("never saw {n} sessions waiting on a lock");
}

/// Liveness, not speed: the call must return while the page is in flight.
async fn without_waiting<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("{what} waited for the page commit in flight"))
}

/// A page commit in flight (its fence checked, its events inserted, held
/// by a test lock on the instance row) keeps its lease against every
/// claim, yet never holds up its daemon's heartbeat or another daemon's
/// claim of other leases.
#[tokio::test]
async fn postgres_a_page_in_flight_keeps_its_lease_and_never_blocks_a_heartbeat() {
    use sqlx::Connection as _;
    let db = open(Backend::Postgres).await;
    let a = instance(&db.store, "acme").await;
    // Lapsed at once: only the page in flight keeps others off it.
    let held = db.store.claim_leases("d1", -1, 10).await.unwrap().remove(0);
    let mut test = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut test).await.unwrap();
    sqlx::query("SELECT 1 FROM instances WHERE id = $1 FOR UPDATE")
        .bind(&a.id)
        .fetch_all(&mut test)
        .await
        .unwrap();
    let mut watch = sqlx::PgConnection::connect(&db.url).await.unwrap();

    let store = db.store.clone();
    let (fence, id) = (held.fence(), a.id.clone());
    let page = tokio::spawn(async move {
        store
            .commit_audit_page_fenced(&fence, &id, &events("e", 1_000, 5), "c1")
            .await
    });
    until_waiters(&mut watch, 1).await;

    // Another daemon's claim skips the lease in use, without waiting.
    let claimed = without_waiting("a claim", db.store.claim_leases("d2", TTL, 10)).await;
    assert!(claimed.unwrap().is_empty());
    // The holder's heartbeat renews it, without waiting.
    let renewed = without_waiting("a renewal", db.store.renew_leases("d1", TTL)).await;
    assert_eq!(renewed.unwrap()[0].epoch, held.epoch);
    // An operator's start on another daemon waits for the page…
    db.store.release_leases("d1").await.unwrap();
    let store = db.store.clone();
    let id = a.id.clone();
    let start = tokio::spawn(async move { store.claim_lease("d2", &id, TTL).await });
    until_waiters(&mut watch, 2).await;
    assert!(!start.is_finished());

    // …which commits under the epoch it checked; then the start takes over.
    sqlx::query("COMMIT").execute(&mut test).await.unwrap();
    assert_eq!(page.await.unwrap().unwrap(), 5);
    let taken = start.await.unwrap().unwrap().unwrap();
    assert_eq!((taken.owner.as_str(), taken.epoch), ("d2", held.epoch + 1));
    assert_eq!(db.store.event_count(&a.id).await.unwrap(), 5);
    assert_eq!(audit_cursor(&db.store, &a.id).await.as_deref(), Some("c1"));
}

both_backends!(
    claim_renew_release,
    a_lost_lease_cannot_commit,
    a_held_lease_is_not_claimed,
);

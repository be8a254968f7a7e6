#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

async fn append_and_list_newest_first(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;
    let b = instance(&db.store, "globex").await;

    db.store
        .append_egress(&[
            egress(&a.id, 100, true),
            egress(&a.id, 300, false),
            egress(&b.id, 200, true),
            egress(&a.id, 200, true),
        ])
        .await
        .unwrap();
    db.store.append_egress(&[]).await.unwrap();

    let got = db.store.egress(&a.id, 10).await.unwrap();
    let times: Vec<_> = got.iter().map(|r| r.at_ms).collect();
    assert_eq!(times, [300, 200, 100]);
    assert_eq!(got[0], egress(&a.id, 300, false));
    assert_eq!(got[1], egress(&a.id, 200, true));
    assert_eq!(got[0].reason.as_deref(), Some("host not granted"));
    assert_eq!(got[1].status, Some(200));
    assert_eq!(got[1].grant.as_deref(), Some("http:acme.okta.com"));

    assert_eq!(db.store.egress(&a.id, 2).await.unwrap().len(), 2);
    assert_eq!(db.store.egress(&b.id, 10).await.unwrap().len(), 1);
}

async fn large_batches_and_unknown_instances_are_kept(backend: Backend) {
    let db = open(backend).await;
    // More than one INSERT chunk, for an id with no instance (e.g. a
    // connection test before the instance was created).
    let records: Vec<_> = (0..1_234)
        .map(|i| egress("pending", i, i % 2 == 0))
        .collect();
    db.store.append_egress(&records).await.unwrap();
    let got = db.store.egress("pending", 1_000).await.unwrap();
    assert_eq!(got.len(), 1_000);
    assert_eq!(got[0].at_ms, 1_233);

    let mut big = egress("pending", 5_000, true);
    big.bytes_received = u64::from(u32::MAX) * 4;
    big.status = Some(503);
    db.store
        .append_egress(std::slice::from_ref(&big))
        .await
        .unwrap();
    assert_eq!(db.store.egress("pending", 1).await.unwrap()[0], big);
}

async fn prune_removes_old_records(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;
    let records: Vec<_> = (0..10).map(|i| egress(&a.id, i * 100, true)).collect();
    db.store.append_egress(&records).await.unwrap();
    assert_eq!(db.store.prune_egress(500).await.unwrap(), 5);
    let left = db.store.egress(&a.id, 100).await.unwrap();
    assert_eq!(left.len(), 5);
    assert!(left.iter().all(|r| r.at_ms >= 500));
}

both_backends!(
    append_and_list_newest_first,
    large_batches_and_unknown_instances_are_kept,
    prune_removes_old_records,
);

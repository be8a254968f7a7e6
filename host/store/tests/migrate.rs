//! `ward_store::migrate::copy` from SQLite into PostgreSQL: verbatim,
//! idempotent, and refusing destinations it must not write into. Needs
//! `WARD_TEST_POSTGRES_URL` (`cargo xtask test --test migrate`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ward_store::migrate::{MigrateError, copy};
use ward_store::{AUDIT_STREAM, Credentials, SeqQuery, Store};

/// A SQLite store with two instances (one with credentials), a page of
/// events each, and egress.
async fn source() -> TestDb {
    let db = open(Backend::Sqlite).await;
    for name in ["acme", "globex"] {
        let i = instance(&db.store, name).await;
        db.store
            .commit_audit_page(&i.id, &events(name, 1_000, 700), &format!("c-{name}"))
            .await
            .unwrap();
        db.store
            .append_egress(&[egress(&i.id, 5, true), egress(&i.id, 6, false)])
            .await
            .unwrap();
    }
    let first = db.store.instances().await.unwrap()[0].id.clone();
    let creds = Credentials {
        secrets: [("api_token".to_string(), "s3cret".to_string())].into(),
        ..Credentials::default()
    };
    db.store.put_credentials(&first, &creds).await.unwrap();
    // A sink halfway through the events, and its sealed secret.
    let seqs = db
        .store
        .events_after_seq(&SeqQuery {
            limit: 1_000,
            ..SeqQuery::default()
        })
        .await
        .unwrap();
    db.store.sink_state("siem").await.unwrap();
    db.store.ack_sink("siem", seqs[499].seq, 500).await.unwrap();
    db.store.put_sink_secret("siem", "hec-token").await.unwrap();
    db
}

#[tokio::test]
async fn copies_verbatim_once_and_new_rows_on_a_second_run() {
    let src = source().await;
    let dest = ward_store::testing::fresh_postgres_database()
        .await
        .unwrap();
    let report = copy(&src.url, &dest, |_, _| {}).await.unwrap();
    let copied = report.tables.iter().find(|t| t.table == "events").unwrap();
    assert_eq!(
        (copied.read, copied.inserted, copied.rows),
        (1400, 1400, 1400)
    );
    assert_eq!(
        copy(&src.url, &dest, |_, _| {}).await.unwrap().inserted(),
        0
    );

    // More arrives in the source: a re-run copies just that.
    let ids: Vec<String> = src
        .store
        .instances()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    src.store
        .commit_audit_page(&ids[0], &events("late", 9_000, 3), "c-late")
        .await
        .unwrap();
    let again = copy(&src.url, &dest, |_, _| {}).await.unwrap();
    // Three events; the cursor row already existed (it keeps its value:
    // nothing is overwritten).
    assert_eq!(again.inserted(), 3);

    // Same key: the credentials open; egress ids continue after the copy.
    let pg = Store::open(&dest, src.key.clone()).await.unwrap();
    // Sinks resume where they were: same cursor, same ingestion order,
    // the secret still sealed under the same key.
    let all = SeqQuery {
        limit: 10_000,
        ..SeqQuery::default()
    };
    assert_eq!(
        pg.events_after_seq(&all).await.unwrap(),
        src.store.events_after_seq(&all).await.unwrap()
    );
    assert_eq!(
        pg.sink_state("siem").await.unwrap(),
        src.store.sink_state("siem").await.unwrap()
    );
    assert_eq!(
        pg.sink_secret("siem").await.unwrap().as_deref(),
        Some("hec-token")
    );
    // New events land after every copied one, or a sink would miss them.
    let top = pg.events_after_seq(&all).await.unwrap().last().unwrap().seq;
    let newcomer = instance(&pg, "initech").await;
    pg.commit_audit_page(&newcomer.id, &events("new", 20_000, 2), "c-new")
        .await
        .unwrap();
    let fresh = pg
        .events_after_seq(&SeqQuery {
            after_seq: top,
            ..all.clone()
        })
        .await
        .unwrap();
    assert_eq!(fresh.len(), 2);
    let creds = pg.credentials(&ids[0]).await.unwrap().unwrap();
    assert_eq!(
        creds.secrets.get("api_token").map(String::as_str),
        Some("s3cret")
    );
    assert_eq!(pg.event_count(&ids[0]).await.unwrap(), 703);
    assert_eq!(
        pg.cursor(&ids[1], AUDIT_STREAM).await.unwrap().as_deref(),
        Some("c-globex")
    );
    pg.append_egress(&[egress(&ids[0], 7, true)]).await.unwrap();
}

#[tokio::test]
async fn refuses_a_destination_daemons_work_on_with_other_data() {
    let src = source().await;
    let dest = ward_store::testing::fresh_postgres_database()
        .await
        .unwrap();
    let pg = Store::open(&dest, src.key.clone()).await.unwrap();
    instance(&pg, "other").await;
    assert_eq!(
        pg.claim_leases("d9-live", 60_000, 10).await.unwrap().len(),
        1
    );
    let err = copy(&src.url, &dest, |_, _| {}).await.unwrap_err();
    assert!(
        matches!(&err, MigrateError::DestinationInUse { owners, table: "instances", .. } if owners == "d9-live"),
        "{err}"
    );
    assert!(err.to_string().contains("stop the daemons"), "{err}");
    assert_eq!(pg.instances().await.unwrap().len(), 1, "nothing written");

    // Without live leases the copy runs, and the count check names the
    // table holding rows the source does not have.
    pg.release_leases("d9-live").await.unwrap();
    let err = copy(&src.url, &dest, |_, _| {}).await.unwrap_err();
    assert!(
        matches!(
            err,
            MigrateError::CountMismatch {
                table: "instances",
                source_rows: 2,
                dest_rows: 3
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("table instances differs"), "{err}");
}

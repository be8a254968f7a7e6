//! Sink delivery state: what a sink reads, and when its cursor moves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ward_store::{SeqQuery, Store};

fn after(seq: i64, limit: u32) -> SeqQuery {
    SeqQuery {
        after_seq: seq,
        limit,
        ..SeqQuery::default()
    }
}

fn ids(batch: &[ward_store::SequencedEvent]) -> Vec<String> {
    batch.iter().map(|e| e.event.event_id.clone()).collect()
}

#[tokio::test]
async fn events_come_in_ingestion_order_not_event_time() {
    let db = open().await;
    let a = instance(&db.store, "acme").await;
    // The second page is older by event time but stored later.
    db.store
        .commit_audit_page(&a.id, &events("new", 9_000, 3), "c1")
        .await
        .unwrap();
    db.store
        .commit_audit_page(&a.id, &events("old", 1_000, 2), "c2")
        .await
        .unwrap();

    let batch = db.store.events_after_seq(&after(0, 100)).await.unwrap();
    assert_eq!(ids(&batch), ["new-0", "new-1", "new-2", "old-0", "old-1"]);
    assert!(batch.windows(2).all(|w| w[0].seq < w[1].seq));
}

#[tokio::test]
async fn unacknowledged_batch_is_read_again_after_a_restart() {
    let db = open().await;
    let a = instance(&db.store, "acme").await;
    db.store
        .commit_audit_page(&a.id, &events("e", 1_000, 10), "c1")
        .await
        .unwrap();
    let state = db.store.sink_state("siem").await.unwrap();
    assert_eq!((state.cursor_seq, state.delivered), (0, 0));

    // First batch acknowledged, second one read but the daemon dies before
    // the sink answers.
    let first = db.store.events_after_seq(&after(0, 4)).await.unwrap();
    db.store.ack_sink("siem", first[3].seq, 4).await.unwrap();
    let second = db
        .store
        .events_after_seq(&after(first[3].seq, 4))
        .await
        .unwrap();
    db.store.close().await;

    let store = Store::open_sqlite(&db.path, db.key.clone()).await.unwrap();
    let state = store.sink_state("siem").await.unwrap();
    assert_eq!(state.cursor_seq, first[3].seq);
    assert_eq!(state.delivered, 4);
    let again = store
        .events_after_seq(&after(state.cursor_seq, 4))
        .await
        .unwrap();
    assert_eq!(
        again, second,
        "the unacknowledged batch is sent again, whole"
    );
}

#[tokio::test]
async fn cursor_never_moves_backwards() {
    let db = open().await;
    db.store.sink_state("siem").await.unwrap();
    db.store.ack_sink("siem", 50, 50).await.unwrap();
    db.store.ack_sink("siem", 20, 20).await.unwrap();
    let state = db.store.sink_state("siem").await.unwrap();
    assert_eq!(state.cursor_seq, 50);
    assert_eq!(state.delivered, 70);
}

#[tokio::test]
async fn sequence_is_never_reused_after_an_instance_is_deleted() {
    let db = open().await;
    let a = instance(&db.store, "acme").await;
    let b = instance(&db.store, "globex").await;
    db.store
        .commit_audit_page(&a.id, &events("a", 1_000, 3), "c")
        .await
        .unwrap();
    db.store
        .commit_audit_page(&b.id, &events("b", 1_000, 3), "c")
        .await
        .unwrap();
    let all = db.store.events_after_seq(&after(0, 100)).await.unwrap();
    let top = all.last().unwrap().seq;
    db.store.sink_state("siem").await.unwrap();
    db.store.ack_sink("siem", top, 6).await.unwrap();

    // The newest events go away with their instance; new ones must still
    // land after the sink's cursor, or the sink would never see them.
    db.store.delete_instance(&b.id).await.unwrap();
    db.store
        .commit_audit_page(&a.id, &events("late", 5_000, 2), "c2")
        .await
        .unwrap();
    let fresh = db.store.events_after_seq(&after(top, 100)).await.unwrap();
    assert_eq!(ids(&fresh), ["late-0", "late-1"]);
}

#[tokio::test]
async fn instance_filter_and_lag_count_only_that_instance() {
    let db = open().await;
    let a = instance(&db.store, "acme").await;
    let b = instance(&db.store, "globex").await;
    db.store
        .commit_audit_page(&a.id, &events("a", 1_000, 3), "c")
        .await
        .unwrap();
    db.store
        .commit_audit_page(&b.id, &events("b", 1_000, 5), "c")
        .await
        .unwrap();
    let q = SeqQuery {
        instances: vec![b.id.clone()],
        ..after(0, 100)
    };
    let only_b = db.store.events_after_seq(&q).await.unwrap();
    assert_eq!(only_b.len(), 5);
    assert!(only_b.iter().all(|e| e.event.instance_id == b.id));

    let lag = db
        .store
        .sink_lag(0, std::slice::from_ref(&b.id))
        .await
        .unwrap();
    assert_eq!(lag.events, 5);
    assert!(lag.oldest_ingested_ms.is_some());
    let caught_up = db
        .store
        .sink_lag(only_b.last().unwrap().seq, &[])
        .await
        .unwrap();
    assert_eq!(caught_up.events, 0);
    assert_eq!(caught_up.oldest_ingested_ms, None);
}

#[tokio::test]
async fn dead_letter_holds_the_cursor_until_resumed() {
    let db = open().await;
    db.store.sink_state("siem").await.unwrap();
    db.store.ack_sink("siem", 10, 10).await.unwrap();
    db.store
        .sink_failed("siem", "HTTP 400: invalid event", true)
        .await
        .unwrap();
    let held = db.store.sink_state("siem").await.unwrap();
    assert!(held.dead_letter);
    assert_eq!(held.cursor_seq, 10);
    assert_eq!(held.last_error.as_deref(), Some("HTTP 400: invalid event"));

    assert!(db.store.resume_sink("siem").await.unwrap());
    assert!(!db.store.resume_sink("siem").await.unwrap());
    let resumed = db.store.sink_state("siem").await.unwrap();
    assert!(!resumed.dead_letter);
    assert_eq!(resumed.cursor_seq, 10);
    // A transient error is recorded but does not hold the sink.
    db.store
        .sink_failed("siem", "HTTP 503", false)
        .await
        .unwrap();
    assert!(!db.store.sink_state("siem").await.unwrap().dead_letter);
}

#[tokio::test]
async fn sink_secret_is_sealed_and_bound_to_its_sink() {
    let db = open().await;
    assert_eq!(db.store.sink_secret("siem").await.unwrap(), None);
    db.store
        .put_sink_secret("siem", "hec-token-123")
        .await
        .unwrap();
    assert_eq!(
        db.store.sink_secret("siem").await.unwrap().as_deref(),
        Some("hec-token-123")
    );

    let mut conn = raw(&db.path).await;
    let stored: Vec<u8> = sqlx::query_scalar("SELECT ciphertext FROM sink_secrets")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(!stored.windows(13).any(|w| w == b"hec-token-123"));
    // The row copied onto another sink's name does not open.
    sqlx::query(
        "INSERT INTO sink_secrets (name, nonce, ciphertext, updated_ms) \
         SELECT 'other', nonce, ciphertext, updated_ms FROM sink_secrets",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let err = db.store.sink_secret("other").await.unwrap_err();
    assert!(err.to_string().contains("sink `other`"), "{err}");
}

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

async fn events_come_in_ingestion_order_not_event_time(backend: Backend) {
    let db = open(backend).await;
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

async fn unacknowledged_batch_is_read_again_after_a_restart(backend: Backend) {
    let db = open(backend).await;
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

    let store = Store::open(&db.url, db.key.clone()).await.unwrap();
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

async fn cursor_never_moves_backwards(backend: Backend) {
    let db = open(backend).await;
    db.store.sink_state("siem").await.unwrap();
    db.store.ack_sink("siem", 50, 50).await.unwrap();
    db.store.ack_sink("siem", 20, 20).await.unwrap();
    let state = db.store.sink_state("siem").await.unwrap();
    assert_eq!(state.cursor_seq, 50);
    assert_eq!(state.delivered, 70);
}

async fn sequence_is_never_reused_after_an_instance_is_deleted(backend: Backend) {
    let db = open(backend).await;
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

async fn instance_filter_and_lag_count_only_that_instance(backend: Backend) {
    let db = open(backend).await;
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

async fn dead_letter_holds_the_cursor_until_resumed(backend: Backend) {
    let db = open(backend).await;
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

async fn sink_secret_is_sealed_and_bound_to_its_sink(backend: Backend) {
    let db = open(backend).await;
    assert_eq!(db.store.sink_secret("siem").await.unwrap(), None);
    db.store
        .put_sink_secret("siem", "hec-token-123")
        .await
        .unwrap();
    assert_eq!(
        db.store.sink_secret("siem").await.unwrap().as_deref(),
        Some("hec-token-123")
    );

    let mut conn = db.raw().await;
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

/// Several writers commit pages at once (several daemons on PostgreSQL)
/// while a sink reads behind them and moves its cursor: every event still
/// reaches the sink exactly once. A sequence that followed insert order
/// rather than commit order would let the cursor pass an event that was
/// still uncommitted, and the sink would never see it.
async fn concurrent_commits_never_let_a_sink_skip_an_event(backend: Backend) {
    let db = open(backend).await;
    const WRITERS: usize = 4;
    const PAGES: usize = 25;
    const PER_PAGE: usize = 20;
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = db.store.clone();
        let inst = instance(&store, &format!("tenant{w}")).await;
        writers.push(tokio::spawn(async move {
            for page in 0..PAGES {
                let evs = events(&format!("w{w}p{page}"), 1_000, PER_PAGE);
                store
                    .commit_audit_page(&inst.id, &evs, &format!("c{page}"))
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
        }));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = 0;
    let total = WRITERS * PAGES * PER_PAGE;
    loop {
        let done = writers.iter().all(|w| w.is_finished());
        let batch = db.store.events_after_seq(&after(cursor, 7)).await.unwrap();
        for e in &batch {
            assert!(
                seen.insert(e.event.event_id.clone()),
                "{} delivered twice",
                e.event.event_id
            );
            cursor = e.seq;
        }
        if done && batch.is_empty() {
            break;
        }
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(seen.len(), total, "the sink skipped events");
}

both_backends!(
    concurrent_commits_never_let_a_sink_skip_an_event,
    events_come_in_ingestion_order_not_event_time,
    unacknowledged_batch_is_read_again_after_a_restart,
    cursor_never_moves_backwards,
    sequence_is_never_reused_after_an_instance_is_deleted,
    instance_filter_and_lag_count_only_that_instance,
    dead_letter_holds_the_cursor_until_resumed,
    sink_secret_is_sealed_and_bound_to_its_sink,
);

/// On PostgreSQL a sequence value is drawn at insert, not at commit. Another
/// daemon is in the middle of committing a page (its events already hold
/// sequence numbers) while this one commits a page and a sink reads: the
/// sink must not see this daemon's later-numbered events first and move its
/// cursor past the other's, or those would never be delivered.
#[tokio::test]
async fn postgres_a_commit_in_flight_elsewhere_is_not_skipped_by_a_sink() {
    let db = open(Backend::Postgres).await;
    let a = instance(&db.store, "acme").await;
    let b = instance(&db.store, "globex").await;
    // The other daemon's transaction, held open mid-commit.
    let mut other = db.raw().await;
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(ward_store::testing::EVENT_SEQ_LOCK)
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO events (instance_id, event_id, time_ms, action, actor_kind, targets_json, \
         outcome, raw_json, ingested_ms) VALUES ($1, 'slow', 1000, 'x', 'user', '[]', 'success', '{}', 1)",
    )
    .bind(b.id.as_str())
    .execute(&mut other)
    .await
    .unwrap();

    let store = db.store.clone();
    let id = a.id.clone();
    let ours = tokio::spawn(async move {
        store
            .commit_audit_page(&id, &events("fast", 2_000, 3), "c1")
            .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // The sink reads and acknowledges whatever is visible now.
    let visible = db.store.events_after_seq(&after(0, 100)).await.unwrap();
    let cursor = visible.last().map_or(0, |e| e.seq);
    let mut seen = ids(&visible);

    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    ours.await.unwrap().unwrap();
    seen.extend(ids(&db
        .store
        .events_after_seq(&after(cursor, 100))
        .await
        .unwrap()));
    seen.sort();
    assert_eq!(
        seen,
        ["fast-0", "fast-1", "fast-2", "slow"],
        "every event reaches the sink once"
    );
}

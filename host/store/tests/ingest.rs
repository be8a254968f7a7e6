#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ward_store::{
    EventOrder, EventQuery, MasterKey, NewEvent, Store, StoreError, StoredEvent, USERS_STREAM,
};

/// The event counter must always agree with the rows actually stored.
async fn assert_counted(db: &TestDb, id: &str) {
    let mut conn = db.raw().await;
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE instance_id = $1")
        .bind(id)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(db.store.event_count(id).await.unwrap(), rows as u64);
}

async fn same_page_twice_stores_once(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;
    let page = events("e", 1_000, 100);

    assert_eq!(
        db.store
            .commit_audit_page(&a.id, &page, "c1")
            .await
            .unwrap(),
        100
    );
    assert_eq!(
        db.store
            .commit_audit_page(&a.id, &page, "c2")
            .await
            .unwrap(),
        0
    );
    assert_eq!(db.store.event_count(&a.id).await.unwrap(), 100);
    assert_eq!(audit_cursor(&db.store, &a.id).await.as_deref(), Some("c2"));

    // An overlapping page stores only its new half.
    let overlap = events("e", 1_000, 150);
    assert_eq!(
        db.store
            .commit_audit_page(&a.id, &overlap, "c3")
            .await
            .unwrap(),
        50
    );
    assert_eq!(db.store.event_count(&a.id).await.unwrap(), 150);

    // Event ids are unique per instance, not globally.
    let b = instance(&db.store, "globex").await;
    assert_eq!(
        db.store
            .commit_audit_page(&b.id, &page, "c1")
            .await
            .unwrap(),
        100
    );
    assert_eq!(db.store.event_count(&a.id).await.unwrap(), 150);
}

async fn duplicate_ids_within_one_page_store_once(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;
    let page = vec![event("dup", 1), event("dup", 2), event("other", 3)];
    assert_eq!(
        db.store.commit_audit_page(&a.id, &page, "c").await.unwrap(),
        2
    );
}

async fn empty_page_moves_cursor(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;
    assert_eq!(
        db.store.commit_audit_page(&a.id, &[], "c9").await.unwrap(),
        0
    );
    assert_eq!(audit_cursor(&db.store, &a.id).await.as_deref(), Some("c9"));
}

async fn failed_page_leaves_events_and_cursor_untouched(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;
    db.store
        .commit_audit_page(&a.id, &events("ok", 0, 10), "before")
        .await
        .unwrap();

    // Far larger than one INSERT chunk, with the bad row near the end, so
    // earlier chunks have already executed inside the transaction when it
    // fails.
    let mut page = events("new", 100, 3_000);
    page[2_900].event_id = String::new();
    let err = db
        .store
        .commit_audit_page(&a.id, &page, "after")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Rejected { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("nothing from this batch was stored"),
        "{err}"
    );

    assert_eq!(db.store.event_count(&a.id).await.unwrap(), 10);
    assert_eq!(
        audit_cursor(&db.store, &a.id).await.as_deref(),
        Some("before")
    );
    // The store is still usable afterwards.
    page[2_900].event_id = "fixed".into();
    assert_eq!(
        db.store
            .commit_audit_page(&a.id, &page, "after")
            .await
            .unwrap(),
        3_000
    );
}

async fn page_for_unknown_instance_is_refused(backend: Backend) {
    let db = open(backend).await;
    let err = db
        .store
        .commit_audit_page("missing", &events("e", 0, 3), "c")
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InstanceNotFound { .. }),
        "{err:?}"
    );
    let err = db
        .store
        .commit_users_page("missing", &[], None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InstanceNotFound { .. }),
        "{err:?}"
    );
}

async fn twenty_thousand_events_in_twenty_pages(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;
    let mut total = 0;
    for page in 0..20 {
        let evs = events(&format!("p{page}"), page * 1_000, 1_000);
        total += db
            .store
            .commit_audit_page(&a.id, &evs, &format!("cursor-{page}"))
            .await
            .unwrap();
    }
    assert_eq!(total, 20_000);
    assert_eq!(db.store.event_count(&a.id).await.unwrap(), 20_000);
    assert_counted(&db, &a.id).await;
    assert_eq!(
        audit_cursor(&db.store, &a.id).await.as_deref(),
        Some("cursor-19")
    );
}

async fn concurrent_writers_all_commit(backend: Backend) {
    let db = open(backend).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(instance(&db.store, &format!("i{i}")).await.id);
    }
    let mut tasks = Vec::new();
    for id in ids.clone() {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            for page in 0..10 {
                let evs = events(&format!("p{page}"), page * 100, 100);
                store
                    .commit_audit_page(&id, &evs, &format!("c{page}"))
                    .await
                    .unwrap();
                // Interleave reads, which in WAL mode never block the writer.
                store.event_count(&id).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for id in ids {
        assert_eq!(db.store.event_count(&id).await.unwrap(), 1_000);
        assert_counted(&db, &id).await;
    }
}

async fn set_cursor_sets_and_clears(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;
    db.store
        .set_cursor(&a.id, "audit", Some("x"))
        .await
        .unwrap();
    assert_eq!(
        db.store.cursor(&a.id, "audit").await.unwrap().as_deref(),
        Some("x")
    );
    db.store.set_cursor(&a.id, "audit", None).await.unwrap();
    assert_eq!(db.store.cursor(&a.id, "audit").await.unwrap(), None);
    assert!(matches!(
        db.store.set_cursor("missing", "audit", Some("x")).await,
        Err(StoreError::InstanceNotFound { .. })
    ));
}

async fn users_upsert_and_cursor(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;

    let page1 = vec![user("u1", "a@x"), user("u2", "b@x"), user("u3", "c@x")];
    assert_eq!(
        db.store
            .commit_users_page(&a.id, &page1, Some("next-1"))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        db.store
            .cursor(&a.id, USERS_STREAM)
            .await
            .unwrap()
            .as_deref(),
        Some("next-1")
    );

    // u2 changes, u4 is new, and u4 appears twice: the later entry wins.
    let mut u2 = user("u2", "b2@x");
    u2.is_admin = true;
    u2.last_login_ms = Some(1_700_000_000_000);
    let page2 = vec![u2, user("u4", "old@x"), user("u4", "d@x")];
    assert_eq!(
        db.store
            .commit_users_page(&a.id, &page2, None)
            .await
            .unwrap(),
        2
    );
    assert_eq!(db.store.cursor(&a.id, USERS_STREAM).await.unwrap(), None);
    assert_eq!(db.store.user_count(&a.id).await.unwrap(), 4);

    let all = db.store.users(&a.id, 10, None).await.unwrap();
    let ids: Vec<_> = all.iter().map(|u| u.user_id.as_str()).collect();
    assert_eq!(ids, ["u1", "u2", "u3", "u4"]);
    assert_eq!(all[1].email.as_deref(), Some("b2@x"));
    assert!(all[1].is_admin);
    assert_eq!(all[1].last_login_ms, Some(1_700_000_000_000));
    assert!(!all[0].is_admin);
    assert_eq!(all[3].email.as_deref(), Some("d@x"));
    assert_eq!(all[0].instance_id, a.id);
    assert!(all[0].updated_ms > 0);

    // Pagination by user id.
    let first = db.store.users(&a.id, 2, None).await.unwrap();
    assert_eq!(first.len(), 2);
    let rest = db
        .store
        .users(&a.id, 2, Some(&first[1].user_id))
        .await
        .unwrap();
    let ids: Vec<_> = rest.iter().map(|u| u.user_id.as_str()).collect();
    assert_eq!(ids, ["u3", "u4"]);
    assert!(
        db.store
            .users(&a.id, 2, Some("u4"))
            .await
            .unwrap()
            .is_empty()
    );
}

fn ev(id: &str, time_ms: i64, action: &str, actor: &str) -> NewEvent {
    let mut e = event(id, time_ms);
    e.action = action.into();
    e.actor_id = Some(format!("id-{actor}"));
    e.actor_email = Some(format!("{actor}@example.com"));
    e.actor_name = Some(actor.to_uppercase());
    e
}

fn keys(events: &[StoredEvent]) -> Vec<(i64, String)> {
    events
        .iter()
        .map(|e| (e.time_ms, e.event_id.clone()))
        .collect()
}

async fn event_queries_filter_and_paginate(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;
    let b = instance(&db.store, "globex").await;
    // Ties on time_ms make the event_id tie-break matter.
    let page = vec![
        ev("a", 100, "login", "alice"),
        ev("b", 100, "logout", "bob"),
        ev("c", 100, "login", "bob"),
        ev("d", 200, "login", "alice"),
        ev("e", 300, "logout", "alice"),
        ev("f", 300, "login", "carol"),
        ev("g", 400, "login", "bob"),
    ];
    db.store.commit_audit_page(&a.id, &page, "c").await.unwrap();
    db.store
        .commit_audit_page(&b.id, &[ev("zz", 250, "login", "alice")], "c")
        .await
        .unwrap();

    let mut expected: Vec<(i64, String)> = page
        .iter()
        .map(|e| (e.time_ms, e.event_id.clone()))
        .collect();
    expected.sort();

    for (order, want) in [
        (EventOrder::OldestFirst, expected.clone()),
        (
            EventOrder::NewestFirst,
            expected.iter().rev().cloned().collect(),
        ),
    ] {
        // Walk in pages of 3; the concatenation must equal the full order.
        let mut got = Vec::new();
        let mut q = EventQuery {
            limit: 3,
            order,
            ..Default::default()
        };
        loop {
            let rows = db.store.events(&a.id, &q).await.unwrap();
            assert!(rows.len() <= 3);
            let Some(last) = rows.last() else { break };
            q.after = Some((last.time_ms, last.event_id.clone()));
            got.extend(keys(&rows));
        }
        assert_eq!(got, want, "{order:?}");
    }

    let q = |f: fn(&mut EventQuery)| {
        let mut q = EventQuery {
            order: EventOrder::OldestFirst,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let ids = |rows: Vec<StoredEvent>| rows.into_iter().map(|e| e.event_id).collect::<Vec<_>>();

    let got = db
        .store
        .events(
            &a.id,
            &q(|q| {
                q.since_ms = Some(200);
                q.until_ms = Some(400);
            }),
        )
        .await
        .unwrap();
    assert_eq!(ids(got), ["d", "e", "f"]);

    let got = db
        .store
        .events(&a.id, &q(|q| q.action = Some("logout".into())))
        .await
        .unwrap();
    assert_eq!(ids(got), ["b", "e"]);

    // The actor filter matches id, email or name, exactly.
    for actor in ["id-bob", "bob@example.com", "BOB"] {
        let mut query = q(|_| {});
        query.actor = Some(actor.into());
        let got = db.store.events(&a.id, &query).await.unwrap();
        assert_eq!(ids(got), ["b", "c", "g"], "{actor}");
    }
    let got = db
        .store
        .events(&a.id, &q(|q| q.actor = Some("bo".into())))
        .await
        .unwrap();
    assert!(got.is_empty());

    // Filters combine, and other instances' events never appear.
    let got = db
        .store
        .events(
            &a.id,
            &q(|q| {
                q.action = Some("login".into());
                q.actor = Some("alice@example.com".into());
                q.since_ms = Some(150);
            }),
        )
        .await
        .unwrap();
    assert_eq!(ids(got), ["d"]);

    // Stored rows carry every field back.
    let got = db.store.events(&a.id, &q(|q| q.limit = 1)).await.unwrap();
    let e = &got[0];
    assert_eq!(e.instance_id, a.id);
    assert_eq!(e.event_id, "a");
    assert_eq!(e.actor_kind, "user");
    assert_eq!(e.targets_json, page[0].targets_json);
    assert_eq!(e.raw_json, page[0].raw_json);
    assert_eq!(e.ip, page[0].ip);
    assert_eq!(e.user_agent, page[0].user_agent);
    assert_eq!(e.outcome, "success");
    assert!(e.ingested_ms > 0);
}

async fn event_limits_are_capped(backend: Backend) {
    let db = open(backend).await;
    let a = instance(&db.store, "acme").await;
    db.store
        .commit_audit_page(&a.id, &events("e", 0, 1_200), "c")
        .await
        .unwrap();
    let big = EventQuery {
        limit: 5_000,
        ..Default::default()
    };
    assert_eq!(db.store.events(&a.id, &big).await.unwrap().len(), 1_000);
    let default = EventQuery::default();
    assert_eq!(
        db.store.events(&a.id, &default).await.unwrap().len(),
        ward_store::DEFAULT_PAGE as usize
    );
}

both_backends!(
    same_page_twice_stores_once,
    duplicate_ids_within_one_page_store_once,
    empty_page_moves_cursor,
    failed_page_leaves_events_and_cursor_untouched,
    page_for_unknown_instance_is_refused,
    twenty_thousand_events_in_twenty_pages,
    concurrent_writers_all_commit,
    set_cursor_sets_and_clears,
    users_upsert_and_cursor,
    event_queries_filter_and_paginate,
    event_limits_are_capped,
);

/// A file created before version 9 (events unique by id, 4 KiB pages) is
/// upgraded in place: every event keeps its `seq` (sink cursors refer to
/// it), the sequence never goes back past deleted rows, and the time key
/// takes over deduplication.
#[tokio::test]
async fn sqlite_upgrade_to_the_time_key_keeps_every_event_and_its_seq() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.db");
    let pool = SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true),
    )
    .await
    .unwrap();
    let mut v8 = sqlx::migrate!("./migrations/sqlite");
    v8.migrations = v8
        .migrations
        .iter()
        .filter(|m| m.version <= 8)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    v8.run(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO instances (id, plugin_key, plugin_version, name, config_json, tags_json, \
         status, created_ms) VALUES ('i1', 'okta', '1.0.0', 'acme', '{}', '[]', 'connected', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    for (id, time) in [("e1", 10), ("e2", 20), ("e3", 30)] {
        sqlx::query(
            "INSERT INTO events (instance_id, event_id, time_ms, action, actor_kind, \
             targets_json, outcome, raw_json, ingested_ms) \
             VALUES ('i1', $1, $2, 'a', 'user', '[]', 'success', '{}', 0)",
        )
        .bind(id)
        .bind(time)
        .execute(&pool)
        .await
        .unwrap();
    }
    // The newest event is deleted: its seq (3) must never be handed out again.
    sqlx::query("DELETE FROM events WHERE event_id = 'e3'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE instances SET event_count = 2 WHERE id = 'i1'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let url = format!("sqlite://{}", path.display());
    let store = Store::open(&url, MasterKey::generate()).await.unwrap();
    // A new event takes a seq after the deleted one; a re-fetched one is skipped.
    let new = store
        .commit_audit_page("i1", &[event("e4", 40)], "c1")
        .await
        .unwrap();
    let refetched = store
        .commit_audit_page("i1", &[event("e2", 20)], "c2")
        .await
        .unwrap();
    assert_eq!((new, refetched), (1, 0));
    assert_eq!(store.event_count("i1").await.unwrap(), 3);
    store.close().await;

    let pool = SqlitePool::connect(&url).await.unwrap();
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT event_id, seq FROM events ORDER BY seq")
        .fetch_all(&pool)
        .await
        .unwrap();
    let rows: Vec<(&str, i64)> = rows.iter().map(|(id, seq)| (id.as_str(), *seq)).collect();
    assert_eq!(rows, [("e1", 1), ("e2", 2), ("e4", 4)]);
    pool.close().await;
}

/// A new SQLite file uses 16 KiB pages: a 1,000-event page then writes a
/// quarter of the WAL frames it would with SQLite's default 4 KiB.
#[tokio::test]
async fn sqlite_new_file_uses_16_kib_pages() {
    use sqlx::Connection as _;
    let db = open(Backend::Sqlite).await;
    db.store.close().await;
    let mut raw = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.path.display()))
        .await
        .unwrap();
    let size: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut raw)
        .await
        .unwrap();
    assert_eq!(size, 16 * 1024);
}

/// Commits leave the WAL checkpoint to the store's own connection: a
/// committed page reaches the database file itself while the store stays
/// open, although it is far below SQLite's automatic threshold (a copy of
/// the file without its WAL holds the events).
#[tokio::test]
async fn sqlite_committed_pages_reach_the_database_file_without_a_close() {
    use sqlx::Connection as _;
    let db = open(Backend::Sqlite).await;
    let a = instance(&db.store, "acme").await;
    let evs = events("p", 0, 100);
    db.store.commit_audit_page(&a.id, &evs, "c1").await.unwrap();
    let copy = db.dir.path().join("copy.db");
    let mut found = 0;
    // Waits for the background checkpoint (not a timing assertion: the
    // deadline only stops a broken build from hanging).
    for _ in 0..200 {
        std::fs::copy(&db.path, &copy).unwrap();
        let mut raw = sqlx::SqliteConnection::connect(&format!("sqlite://{}", copy.display()))
            .await
            .unwrap();
        found = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM events")
            .fetch_one(&mut raw)
            .await
            .unwrap_or(0);
        raw.close().await.unwrap();
        std::fs::remove_file(&copy).unwrap();
        if found == 100 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        found, 100,
        "the page never left the WAL while the store was open"
    );
    assert_eq!(db.store.event_count(&a.id).await.unwrap(), 100);
}

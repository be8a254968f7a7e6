//! `ward store migrate` round trip with real processes: a `ward serve` on
//! SQLite backfills part of an Okta org and stops; `ward store migrate`
//! copies the store into PostgreSQL (twice: the second run copies nothing);
//! a `ward serve` on PostgreSQL resumes every instance from its cursor and
//! finishes the backfill, storing each event once. Needs
//! `WARD_TEST_POSTGRES_URL` (`cargo xtask test -p ward --test store_migrate`).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use ward_standins::okta::OktaConfig;
use ward_store::{AUDIT_STREAM, MasterKey, Store, USERS_STREAM};
use ward_tests::processes::{
    OktaFixture, connect_okta_instances, run_ward, signal, spawn_serve, stored_event_ids,
};

const EVENTS: usize = 40_000;
const INSTANCES: usize = 3;

fn ward_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ward"))
}

/// The stored cursor of every instance on `stream` (absent: none yet).
async fn cursors(
    store: &Store,
    ids: &[String],
    stream: &str,
) -> anyhow::Result<HashMap<String, Option<String>>> {
    let mut out = HashMap::new();
    for id in ids {
        out.insert(id.clone(), store.cursor(id, stream).await?);
    }
    Ok(out)
}

async fn event_counts(store: &Store, ids: &[String]) -> anyhow::Result<Vec<u64>> {
    let mut out = Vec::new();
    for id in ids {
        out.push(store.event_count(id).await?);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_round_trip_resumes_every_instance_without_duplicates()
-> anyhow::Result<()> {
    let pg_url = ward_store::testing::fresh_postgres_database()
        .await
        .map_err(anyhow::Error::msg)?;
    let fixture = OktaFixture::start(OktaConfig {
        events: EVENTS,
        users: 30,
        ..OktaConfig::default()
    })
    .await?;
    let (okta, dir) = (&fixture.okta, fixture.dir.path());
    let db = dir.join("ward.db");
    let key_file = dir.join("master.key");

    // 1. An installation on SQLite backfills part of the org, then stops.
    let sqlite_config = dir.join("sqlite.toml");
    let sqlite_text = fixture.serve_config("[scheduler]\npoll_interval_secs = 1");
    std::fs::write(&sqlite_config, &sqlite_text)?;
    let ids = connect_okta_instances(&sqlite_text, "Okta", INSTANCES, Some(600_000)).await?;
    let sqlite = Store::open_sqlite(&db, MasterKey::load_or_create(&key_file)?).await?;
    let mut serve = spawn_serve(ward_bin(), &sqlite_config, Some(&dir.join("sqlite.log")))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let counts = event_counts(&sqlite, &ids).await?;
        let started = cursors(&sqlite, &ids, AUDIT_STREAM).await?;
        if counts.iter().all(|n| *n >= 2_000) && started.values().all(Option::is_some) {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the SQLite daemon did not start every backfill: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal(&serve, "TERM")?;
    serve.wait()?;
    let before = event_counts(&sqlite, &ids).await?;
    ensure!(
        before.iter().any(|n| *n < EVENTS as u64),
        "the backfill finished before the daemon was stopped: {before:?}"
    );
    let audit_cursors = cursors(&sqlite, &ids, AUDIT_STREAM).await?;
    let users_cursors = cursors(&sqlite, &ids, USERS_STREAM).await?;
    let sqlite_stats = sqlite.stats().await?;
    sqlite.close().await;

    // 2. Copy, then copy again: the second run finds everything there.
    let from = format!("sqlite://{}", db.display());
    let first = run_ward(
        ward_bin(),
        &["store", "migrate", "--from", &from, "--to", &pg_url],
    )?;
    let first = String::from_utf8(first.stdout)?;
    ensure!(
        first.contains("every table's count matches") && !first.contains("copied 0 new rows"),
        "{first}"
    );
    let second = run_ward(
        ward_bin(),
        &["store", "migrate", "--from", &from, "--to", &pg_url],
    )?;
    let second = String::from_utf8(second.stdout)?;
    ensure!(second.contains("copied 0 new rows"), "{second}");

    let pg = Store::open(&pg_url, MasterKey::load_or_create(&key_file)?).await?;
    ensure!(event_counts(&pg, &ids).await? == before);
    ensure!(cursors(&pg, &ids, AUDIT_STREAM).await? == audit_cursors);
    ensure!(cursors(&pg, &ids, USERS_STREAM).await? == users_cursors);
    ensure!(pg.stats().await? == sqlite_stats, "store statistics differ");
    for id in &ids {
        // Sealed under the same key: the copied credentials open.
        pg.credentials(id)
            .await?
            .with_context(|| format!("{id}: credentials copied"))?;
        ensure!(pg.lease(id).await?.is_none(), "{id}: leases are not copied");
    }

    // 3. A daemon on PostgreSQL resumes from the copied cursors.
    let requests_before = okta.requests().len();
    let pg_config = dir.join("pg.toml");
    std::fs::write(
        &pg_config,
        fixture.serve_config(&format!(
            "[store]\nurl = \"{pg_url}\"\nkey_file = \"{}\"\n\n\
             [scheduler]\npoll_interval_secs = 1\ndaemon_name = \"pg\"\n",
            key_file.display()
        )),
    )?;
    let mut serve = spawn_serve(ward_bin(), &pg_config, Some(&dir.join("pg.log")))?;
    let mut seen: HashMap<String, Vec<Option<String>>> = audit_cursors
        .iter()
        .map(|(id, c)| (id.clone(), vec![c.clone()]))
        .collect();
    let mut last_counts = before.clone();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let counts = event_counts(&pg, &ids).await?;
        for ((id, n), last) in ids.iter().zip(&counts).zip(&mut last_counts) {
            ensure!(*n >= *last, "{id}: events went from {last} to {n}");
            *last = *n;
            let cursor = pg.cursor(id, AUDIT_STREAM).await?;
            let history = seen.entry(id.clone()).or_default();
            if history.last() != Some(&cursor) {
                ensure!(
                    !history.contains(&cursor),
                    "{id}: cursor moved back to {cursor:?}"
                );
                history.push(cursor);
            }
        }
        if counts.iter().all(|n| *n >= EVENTS as u64) {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the PostgreSQL daemon did not finish: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A poll round after the end adds nothing.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    signal(&serve, "TERM")?;
    serve.wait()?;

    // Resumed, not restarted: no System Log request began from `since`,
    // and every copied cursor was the URL an instance asked for first.
    let after: Vec<String> = okta.requests()[requests_before..]
        .iter()
        .map(|r| r.path_and_query.clone())
        .collect();
    let logs: Vec<&String> = after
        .iter()
        .filter(|p| p.starts_with("/api/v1/logs"))
        .collect();
    ensure!(
        logs.iter().all(|p| !p.contains("since=")),
        "an instance started its backfill over"
    );
    for (id, cursor) in &audit_cursors {
        let cursor = cursor.as_deref().context("cursor")?;
        let path = cursor
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .context("cursor is a URL")?;
        ensure!(
            logs.iter().any(|p| p.as_str() == path),
            "{id} did not resume from its cursor {cursor}"
        );
    }

    let expected: HashSet<String> = okta.event_ids().into_iter().collect();
    for id in &ids {
        let stored = stored_event_ids(&pg, id).await?;
        let unique: HashSet<String> = stored.iter().cloned().collect();
        ensure!(unique.len() == stored.len(), "duplicates in {id}");
        ensure!(unique == expected, "instance {id} lost events");
        ensure!(pg.event_count(id).await? == EVENTS as u64);
    }
    Ok(())
}

//! The store backends (#11): events/s committed into SQLite and into
//! PostgreSQL (the same pages, fenced by a lease as the scheduler commits
//! them), and how long another daemon takes to pick up an instance after
//! its holder is killed with `kill -9`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ward_store::{MasterKey, NewEvent, NewInstance, Store};

use crate::daemon::{Daemon, Upstream, write_config_with};
use crate::figure::{Figure, cpu_time, median, micros, ratio};
use crate::standin::Org;

/// Events committed into each backend, in pages of [`PAGE`].
const EVENTS: usize = 100_000;
const PAGE: usize = 1_000;
/// Takeovers measured.
const TAKEOVERS: usize = 10;
/// Lease TTL of the takeover daemons (`scheduler.lease_ttl_secs`).
const LEASE_TTL_SECS: u64 = 5;

/// Raw JSON bytes per event: the Okta stand-in's mean (the ingestion
/// group's note reports it; the published System Log examples are 2.2 KB).
const RAW_BYTES: usize = 2_020;

/// A synthetic Okta event with [`RAW_BYTES`] of raw JSON, like the stand-in's.
fn event(i: usize) -> NewEvent {
    let mut e = crate::sinks::event(i);
    let pad = "x".repeat(RAW_BYTES.saturating_sub(e.raw_json.len() + 12));
    e.raw_json = format!("{},\"pad\":\"{pad}\"}}", e.raw_json.trim_end_matches('}'));
    e
}

/// Prints the store figures; `ward` is the release binary for the takeover.
pub async fn run(ward: &Path) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pages: Vec<Vec<NewEvent>> = (0..EVENTS)
        .map(event)
        .collect::<Vec<_>>()
        .chunks(PAGE)
        .map(<[NewEvent]>::to_vec)
        .collect();
    let sqlite = Store::open_sqlite(&dir.path().join("ward.db"), MasterKey::generate()).await?;
    let (on_sqlite, sqlite_cpu) = commit_all(&sqlite, pages.clone()).await?;
    let sqlite_cpu = micros(sqlite_cpu) / EVENTS as f64;
    sqlite.close().await;
    let pg_url = fresh_database().await?;
    let pg = Store::open(&pg_url, MasterKey::generate()).await?;
    let (on_pg, _) = commit_all(&pg, pages).await?;
    pg.close().await;
    let per_sec = |d: Duration| EVENTS as f64 / d.as_secs_f64().max(1e-9);
    Figure {
        figure: "store: CPU µs/event committing into SQLite".into(),
        value: format!("{sqlite_cpu:.1} µs"),
        baseline: format!("{CPU_GOAL_US} µs (#14's goal for the whole daemon)"),
        ratio: format!("{:.2}× of the goal", sqlite_cpu / CPU_GOAL_US),
        note: format!("utime+stime of this process over the SQLite commits below: the store's threads, SQLite and its WAL checkpointer, with nothing fetched, parsed or checked; pages of {PAGE} owned events (~{RAW_BYTES} B raw JSON each) moved into `commit_audit_page_fenced` as the scheduler does"),
    }
    .emit()?;
    Figure {
        figure: "store: events/s committed into PostgreSQL".into(),
        value: format!("{:.0} events/s", per_sec(on_pg)),
        baseline: format!("{:.0} events/s into SQLite", per_sec(on_sqlite)),
        ratio: ratio(per_sec(on_pg), per_sec(on_sqlite)),
        note: format!("the same {EVENTS} events (~{RAW_BYTES} B raw JSON each) in pages of {PAGE}, each page and its cursor in one transaction fenced by the instance's lease (`commit_audit_page_fenced`, as the scheduler commits), one writer; SQLite file in a temp dir (WAL, synchronous=NORMAL), PostgreSQL 15 on loopback from `cargo xtask bench`'s throwaway cluster (fsync off: it measures Ward's statements, not the disk)"),
    }
    .emit()?;

    let takeovers = takeover(ward, dir.path()).await?;
    let mut sorted = takeovers.clone();
    let med = median(&mut sorted);
    Figure {
        figure: "lease takeover after kill -9 (median of 10)".into(),
        value: format!("{:.1} s", med.as_secs_f64()),
        baseline: format!("lease TTL {LEASE_TTL_SECS} s"),
        ratio: format!("{:.2}× TTL", med.as_secs_f64() / LEASE_TTL_SECS as f64),
        note: format!("2 release `ward serve` on one PostgreSQL (`scheduler.lease_ttl_secs = {LEASE_TTL_SECS}`), one Okta instance; the holder is killed with SIGKILL, time until the other daemon holds the lease under a new epoch (`GET /instances/{{id}}` worker), then the killed one restarts; samples {}", takeovers.iter().map(|d| format!("{:.1}", d.as_secs_f64())).collect::<Vec<_>>().join(", ")),
    }
    .emit()?;
    Ok(())
}

/// A new database on the server named by `WARD_TEST_POSTGRES_URL`
/// (`cargo xtask bench` starts a throwaway cluster and sets it).
async fn fresh_database() -> anyhow::Result<String> {
    ward_store::testing::fresh_postgres_database()
        .await
        .map_err(anyhow::Error::msg)
}

/// #14's goal for the daemon's CPU per ingested event, in µs.
const CPU_GOAL_US: f64 = 10.0;

/// Commits every page into `store` under a lease, moving each page in as
/// the scheduler does; returns the wall time and this process's CPU time
/// over the commits.
async fn commit_all(
    store: &Store,
    pages: Vec<Vec<NewEvent>>,
) -> anyhow::Result<(Duration, Duration)> {
    let pages_len = pages.len();
    let instance = store
        .create_instance(&NewInstance {
            plugin_key: "okta".into(),
            plugin_version: "bench".into(),
            name: "bench".into(),
            config: BTreeMap::from([("domain".to_string(), "bench".to_string())]),
            tags: Vec::new(),
        })
        .await?;
    let lease = store
        .claim_leases("bench", 600_000, 1)
        .await?
        .into_iter()
        .next()
        .context("claiming the bench instance's lease")?;
    let (wall0, cpu0) = (Instant::now(), cpu_time(None)?);
    for (n, page) in pages.into_iter().enumerate() {
        store
            .commit_audit_page_fenced(&lease.fence(), &instance.id, page, &format!("c{n}"))
            .await?;
    }
    let (wall, cpu) = (wall0.elapsed(), cpu_time(None)? - cpu0);
    let stored = store.event_count(&instance.id).await?;
    anyhow::ensure!(
        stored == (pages_len * PAGE) as u64,
        "{stored} events stored, expected {}",
        pages_len * PAGE
    );
    Ok((wall, cpu))
}

/// Two daemons on one PostgreSQL database; kills the holder of one
/// instance's lease [`TAKEOVERS`] times and measures each takeover.
async fn takeover(ward: &Path, dir: &Path) -> anyhow::Result<Vec<Duration>> {
    let url = fresh_database().await?;
    let org = Org::start(20_000, dir).await?;
    let host = org.host();
    let key = dir.join("master.key");
    MasterKey::load_or_create(&key)?;
    let configs = ["a", "b"]
        .iter()
        .map(|name| {
            let data = dir.join(format!("daemon-{name}"));
            std::fs::create_dir_all(&data)?;
            write_config_with(
                &data,
                Some(&Upstream {
                    host: &host,
                    addr: org.okta.addr(),
                    ca_file: &org.ca_file,
                }),
                &format!(
                    "[store]\nurl = {url:?}\nkey_file = {key:?}\n[scheduler]\ndaemon_name = \"{name}\"\nlease_ttl_secs = {LEASE_TTL_SECS}\n"
                ),
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut daemons = [
        Daemon::start(ward, &configs[0]).await?.0,
        Daemon::start(ward, &configs[1]).await?.0,
    ];
    let id = daemons[0].create_okta("ward-demo", &org.token).await?;
    let mut samples = Vec::with_capacity(TAKEOVERS);
    for _ in 0..TAKEOVERS {
        let (holder, epoch) = wait_for_holder(&daemons[0], &id, None).await?;
        // Daemon ids are the configured name plus a per-run suffix.
        let (killed, other) = if holder.starts_with("a-") {
            (0, 1)
        } else {
            (1, 0)
        };
        let pid = daemons[killed].pid();
        let killed_at = Instant::now();
        std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .context("running kill")?;
        wait_for_holder(&daemons[other], &id, Some(epoch)).await?;
        samples.push(killed_at.elapsed());
        daemons[killed] = Daemon::start(ward, &configs[killed]).await?.0;
    }
    Ok(samples)
}

/// Polls `daemon` until some daemon holds the instance's lease (under an
/// epoch above `after`, if given).
async fn wait_for_holder(
    daemon: &Daemon,
    id: &str,
    after: Option<i64>,
) -> anyhow::Result<(String, i64)> {
    let started = Instant::now();
    loop {
        if let Some((holder, epoch)) = daemon.worker(id).await?
            && after.is_none_or(|a| epoch > a)
        {
            return Ok((holder, epoch));
        }
        if started.elapsed() > Duration::from_secs(10 * LEASE_TTL_SECS) {
            anyhow::bail!(
                "no daemon took instance {id}'s lease within {} s",
                10 * LEASE_TTL_SECS
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

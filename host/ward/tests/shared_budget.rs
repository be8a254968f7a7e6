//! Two real `ward serve` processes on one PostgreSQL database, each working
//! two of four Okta instances of the same org: together they stay within
//! the org's budget (counted from the requests the stand-in received), and
//! a `Retry-After` one daemon receives stops the other's calls too. Needs
//! `WARD_TEST_POSTGRES_URL` (`cargo xtask test -p ward --test shared_budget`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::ensure;
use ward_standins::okta::OktaConfig;
use ward_store::{MasterKey, Store};
use ward_tests::processes::{
    OktaFixture, connect_okta_instances, ensure_running, signal, spawn_serve,
};

/// The org's budget, requests a minute (each instance's
/// `requestsPerMinute`; a token bucket also allows a minute's burst).
const RPM: u32 = 20;
const INSTANCES: usize = 4;
/// How long both daemons run before the Retry-After.
const RUN: Duration = Duration::from_secs(75);
const RETRY_AFTER_SECS: u64 = 30;

fn ward_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ward"))
}

/// The most requests arriving within any 60 s (by arrival time).
fn busiest_minute(at: &[Instant]) -> usize {
    let mut at = at.to_vec();
    at.sort();
    let mut best = 0;
    let mut start = 0;
    for end in 0..at.len() {
        while at[end] - at[start] >= Duration::from_secs(60) {
            start += 1;
        }
        best = best.max(end + 1 - start);
    }
    best
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_share_one_tenant_budget_and_its_retry_after() -> anyhow::Result<()> {
    let url = ward_store::testing::fresh_postgres_database()
        .await
        .map_err(anyhow::Error::msg)?;
    // Far more events than the budget lets through: the backfill never ends.
    let fixture = OktaFixture::start(OktaConfig {
        events: 100_000,
        users: 5,
        ..OktaConfig::default()
    })
    .await?;
    let dir = fixture.dir.path();
    let key_file = dir.join("master.key");
    let config = |name: &str| {
        fixture.serve_config(&format!(
            "[store]\nurl = \"{url}\"\nkey_file = \"{}\"\n\n\
             [scheduler]\npoll_interval_secs = 1\nmax_leases = 2\ndaemon_name = \"{name}\"\n",
            key_file.display()
        ))
    };
    let ids = connect_okta_instances(&config("setup"), "Okta", INSTANCES, Some(RPM)).await?;
    let store = Store::open(&url, MasterKey::load_or_create(&key_file)?).await?;

    let first = fixture.okta.requests().len();
    let started_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let mut daemons: Vec<(Child, PathBuf)> = Vec::new();
    for name in ["d0", "d1"] {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config(name))?;
        let log = dir.join(format!("{name}.log"));
        daemons.push((spawn_serve(ward_bin(), &path, Some(&log))?, log));
    }

    // Two instances on each daemon.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut per_daemon: HashMap<String, usize> = HashMap::new();
        for id in &ids {
            if let Some(lease) = store.lease(id).await? {
                let daemon = lease.owner.split('-').next().unwrap_or_default().to_owned();
                *per_daemon.entry(daemon).or_default() += 1;
            }
        }
        if per_daemon.get("d0") == Some(&2) && per_daemon.get("d1") == Some(&2) {
            break;
        }
        for (child, log) in &mut daemons {
            ensure_running(child, log)?;
        }
        ensure!(
            Instant::now() < deadline,
            "the instances were not spread over both daemons: {per_daemon:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(RUN).await;

    // 1. The budget held across both daemons, and both were calling.
    let during: Vec<Instant> = fixture.okta.requests()[first..]
        .iter()
        .map(|r| r.at)
        .collect();
    let busiest = busiest_minute(&during);
    eprintln!(
        "{} requests in {RUN:?}, at most {busiest} within one minute (budget {RPM}/min)",
        during.len()
    );
    ensure!(
        busiest <= 2 * RPM as usize,
        "{busiest} requests within one minute: the budget is {RPM}/min plus a minute's burst"
    );
    ensure!(
        during.len() > RPM as usize,
        "only {} requests in {RUN:?}: the daemons were not working",
        during.len()
    );
    for id in &ids {
        let calls = store.egress(id, 1000).await?;
        ensure!(
            calls.iter().any(|e| e.allowed && e.at_ms >= started_ms),
            "instance {id} made no call: its daemon was idle"
        );
    }

    // 2. One daemon's Retry-After holds the other daemon back too.
    let before = fixture.okta.requests().len();
    fixture.okta.retry_after_next(1, RETRY_AFTER_SECS);
    let deadline = Instant::now() + Duration::from_secs(60);
    let limited = loop {
        if let Some(r) = fixture.okta.requests()[before..]
            .iter()
            .find(|r| r.status == 429)
        {
            break r.at;
        }
        ensure!(Instant::now() < deadline, "no request met the 429");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let block = Duration::from_secs(RETRY_AFTER_SECS);
    tokio::time::sleep(
        (limited + block + Duration::from_secs(10)).saturating_duration_since(Instant::now()),
    )
    .await;
    let after = fixture.okta.requests()[before..].to_vec();
    let blocked: Vec<_> = after
        .iter()
        .filter(|r| r.at > limited && r.at < limited + block)
        .collect();
    eprintln!(
        "{} requests during the {RETRY_AFTER_SECS} s Retry-After",
        blocked.len()
    );
    // Only calls already under way when the 429 was answered (one per
    // other instance at most) may arrive during the block.
    ensure!(
        blocked.len() < INSTANCES,
        "{} requests during the {RETRY_AFTER_SECS} s Retry-After: {:?}",
        blocked.len(),
        blocked
            .iter()
            .map(|r| &r.path_and_query)
            .collect::<Vec<_>>()
    );
    ensure!(
        after
            .iter()
            .any(|r| r.at >= limited + block && r.status == 200),
        "nobody called the org again after the Retry-After passed"
    );

    for (child, log) in &mut daemons {
        // Both daemons worked to the end.
        ensure_running(child, log)?;
        signal(child, "TERM")?;
        child.wait()?;
    }
    Ok(())
}

//! `ward demo`: the bundled Okta connector against a local Okta stand-in
//! (real HTTPS on loopback, reached under its real host name), on the
//! embedded SQLite store.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use ward_runtime::types::Grant;
use ward_runtime::{EgressConfig, Runtime, RuntimeConfig};
use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::tls::TestCa;
use ward_store::{MasterKey, Store};

use ward_daemon::connect::connect;
use ward_daemon::ingest::{Ingestor, Retry};

/// Options of `ward demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Backfill, print the summary and exit.
    pub once: bool,
    /// Events the stand-in starts with.
    pub events: usize,
    /// Users the stand-in starts with.
    pub users: usize,
    /// Where the database, master key and compile cache go.
    pub data_dir: PathBuf,
    /// Seconds between polls after the backfill.
    pub poll_secs: u64,
}

/// What the demo stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoSummary {
    /// Events stored.
    pub events: u64,
    /// Users stored.
    pub users: u64,
}

/// Runs the demo.
pub async fn run(opts: DemoOptions) -> anyhow::Result<DemoSummary> {
    std::fs::create_dir_all(&opts.data_dir)
        .with_context(|| format!("creating {}", opts.data_dir.display()))?;
    let ca = TestCa::generate()?;
    let okta = OktaStandIn::start(
        OktaConfig {
            events: opts.events,
            users: opts.users,
            backfill_span_days: 45,
            ..OktaConfig::default()
        },
        &ca,
    )
    .await?;
    println!(
        "Okta stand-in: https://{} on {} ({} events, {} users)",
        okta.host(),
        okta.addr(),
        okta.event_count(),
        opts.users
    );

    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(opts.data_dir.join("cache")),
        egress: EgressConfig {
            resolve: BTreeMap::from([(okta.host(), okta.addr())]),
            extra_roots_pem: vec![ca.ca_pem().to_string()],
            ..EgressConfig::default()
        },
        ..RuntimeConfig::default()
    })?;
    let bytes = ward_daemon::bundled::get("okta").context("the okta connector is not bundled")?;
    let plugin = runtime.load(bytes)?;

    // A demo starts from an empty store so its numbers mean something.
    let db = opts.data_dir.join("ward-demo.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let key = MasterKey::load_or_create(&opts.data_dir.join("master.key"))?;
    let store = Store::open_sqlite(&db, key).await?;

    let config = BTreeMap::from([("domain".to_string(), "ward-demo".to_string())]);
    let (instance, bound, report) = connect(
        &store,
        &plugin,
        "Okta (demo)",
        config,
        Grant::ApiToken(OktaConfig::default().api_token),
    )
    .await?;
    println!(
        "Connected instance {} to {} ({})",
        instance.id,
        report.account_name.as_deref().unwrap_or("?"),
        instance.status.as_str()
    );
    for check in &report.checks {
        println!(
            "  [{}] {}: {}",
            if check.ok { "ok" } else { "FAIL" },
            check.name,
            check.message
        );
    }

    let ingestor = Ingestor {
        store: store.clone(),
        bound,
        instance_id: instance.id.clone(),
        retry: Retry::default(),
    };
    let now = now_ms();
    let since = now - i64::from(plugin.manifest().schedule.backfill_days) * 86_400_000;
    let bar = ProgressBar::new(((now - since) / 1000) as u64);
    bar.set_style(
        ProgressStyle::with_template("backfill [{bar:40}] {percent:>3}% {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let stats = ingestor
        .sync_audit(since, |p| {
            if let Some(newest) = p.newest_ms {
                bar.set_position(((newest - since).max(0) / 1000) as u64);
            }
            bar.set_message(format!("{} events, {} pages", p.stats.new, p.stats.pages));
        })
        .await?;
    bar.finish_and_clear();
    let users = ingestor.sync_users().await?;
    store.record_success(&instance.id, now_ms()).await?;
    println!(
        "Backfill: {} pages, {} new events; users: {} listed",
        stats.pages, stats.new, users.seen
    );

    let summary = DemoSummary {
        events: store.event_count(&instance.id).await?,
        users: store.user_count(&instance.id).await?,
    };
    println!(
        "Data: {} (SQLite; table events, users, egress)",
        db.display()
    );
    println!("events: {}, users: {}", summary.events, summary.users);
    if opts.once {
        okta.shutdown().await;
        return Ok(summary);
    }

    println!(
        "Polling every {} s; new stand-in events arrive each round. Ctrl-C to stop.",
        opts.poll_secs
    );
    let mut round = 0u64;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_secs(opts.poll_secs)) => {}
        }
        round += 1;
        okta.append_events(5 + (round as usize * 7) % 40);
        match ingestor.sync_audit(since, |_| {}).await {
            Ok(stats) => {
                let total = store.event_count(&instance.id).await?;
                println!("poll {round}: +{} events (total {total})", stats.new);
            }
            Err(e) => println!("poll {round}: {e}"),
        }
    }
    okta.shutdown().await;
    let summary = DemoSummary {
        events: store.event_count(&instance.id).await?,
        users: store.user_count(&instance.id).await?,
    };
    println!("events: {}, users: {}", summary.events, summary.users);
    Ok(summary)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

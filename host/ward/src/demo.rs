//! `ward demo`: the real daemon (store, scheduler, REST API) with the bundled
//! connectors, pointed at local provider stand-ins (real HTTPS on loopback,
//! reached under the providers' real host names through resolve overrides
//! and a CA generated for the run), on the embedded SQLite store.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use ward_daemon::Daemon;
use ward_daemon::config::Config;
use ward_daemon::connect::connect;
use ward_daemon::scheduler::Phase;
use ward_runtime::types::Grant;
use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::tls::TestCa;

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
    /// Where the API listens (an ephemeral port is used if it is taken).
    pub listen: std::net::SocketAddr,
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

    // A demo starts from an empty store so its numbers mean something.
    let db = opts.data_dir.join("ward-demo.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let ca_file = opts.data_dir.join("demo-ca.pem");
    std::fs::write(&ca_file, ca.ca_pem())
        .with_context(|| format!("writing {}", ca_file.display()))?;
    let mut config = Config {
        data_dir: opts.data_dir.clone(),
        ..Config::default()
    };
    config.store.url = Some(format!("sqlite://{}", db.display()));
    config.api.listen = opts.listen;
    config.egress.resolve = BTreeMap::from([(okta.host(), okta.addr())]);
    config.egress.ca_files = vec![ca_file];
    // The stand-ins live on loopback; the operator (this demo) allows
    // exactly their address, nothing else in the restricted ranges.
    config.egress.allow_private = vec![format!("{}/32", okta.addr().ip())];
    config.scheduler.poll_interval_secs = opts.poll_secs;

    let daemon = Daemon::open(config).await?;
    let listener = crate::serve::bind(&daemon.config, true).await?;
    println!("Ward API: http://{}", listener.local_addr()?);

    let okta_plugin = daemon
        .registry
        .get("okta")
        .context("the okta connector is not bundled")?
        .plugin;
    let (instance, _bound, report) = connect(
        &daemon.store,
        &okta_plugin,
        "Okta (demo)",
        BTreeMap::from([("domain".to_string(), "ward-demo".to_string())]),
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
    daemon.scheduler.start(&instance.id);

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::serve::serve_until(
        daemon.clone(),
        listener,
        async move {
            let _ = stop_rx.await;
        },
    ));

    backfill_progress(&daemon, &instance.id).await?;
    let summary = summary(&daemon, &instance.id).await?;
    println!(
        "Data: {} (SQLite; tables events, users, egress, instances, credentials, cursors)",
        db.display()
    );
    println!("events: {}, users: {}", summary.events, summary.users);
    if opts.once {
        let _ = stop_tx.send(());
        server.await.context("daemon task")??;
        okta.shutdown().await;
        return Ok(summary);
    }

    println!(
        "Polling every {} s; the stand-in publishes new events each round. Ctrl-C to stop.",
        opts.poll_secs
    );
    let mut round = 0u64;
    let mut last = summary.events;
    loop {
        tokio::select! {
            _ = crate::serve::shutdown_signal() => break,
            _ = tokio::time::sleep(Duration::from_secs(opts.poll_secs)) => {}
        }
        round += 1;
        okta.append_events(5 + (round as usize * 7) % 40);
        let total = daemon.store.event_count(&instance.id).await?;
        let status = daemon
            .store
            .instance(&instance.id)
            .await?
            .map(|i| i.status.as_str().to_string())
            .unwrap_or_default();
        println!(
            "poll {round}: +{} events (total {total}, {status})",
            total - last
        );
        last = total;
    }
    let _ = stop_tx.send(());
    server.await.context("daemon task")??;
    okta.shutdown().await;
    Ok(summary)
}

/// Shows the backfill as a progress bar over the backfill window, until the
/// worker has caught up and read the users once.
async fn backfill_progress(daemon: &Daemon, id: &str) -> anyhow::Result<()> {
    let bar = ProgressBar::new(1000);
    bar.set_style(
        ProgressStyle::with_template("backfill [{bar:40}] {percent:>3}% {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut since = None;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let progress = daemon.scheduler.progress(id);
        if let Some(p) = &progress {
            since = since.or(p.backfill_since_ms);
            if let (Some(since), Some(newest)) = (since, p.newest_event_ms) {
                let now = now_ms();
                let done = (newest - since).max(0) as f64 / (now - since).max(1) as f64;
                bar.set_position((done.min(1.0) * 1000.0) as u64);
            }
            bar.set_message(format!("{} events, {} pages", p.new_events, p.pages));
            let users_read = daemon.store.users_synced_ms(id).await?.is_some();
            if p.caught_up_ms.is_some() && users_read {
                break;
            }
            if p.phase == Phase::Stopped {
                break;
            }
        }
    }
    bar.finish_and_clear();
    let instance = daemon
        .store
        .instance(id)
        .await?
        .context("instance vanished")?;
    if let Some(p) = daemon.scheduler.progress(id) {
        println!(
            "Backfill: {} pages, {} new events; status {}{}",
            p.pages,
            p.new_events,
            instance.status.as_str(),
            instance
                .status_message
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        );
    }
    anyhow::ensure!(
        instance.status == ward_store::InstanceStatus::Connected,
        "the demo instance is not connected"
    );
    Ok(())
}

async fn summary(daemon: &Daemon, id: &str) -> anyhow::Result<DemoSummary> {
    Ok(DemoSummary {
        events: daemon.store.event_count(id).await?,
        users: daemon.store.user_count(id).await?,
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

//! Scale (#14): one release `ward serve` with 1,000 Okta instances, each
//! on its own tenant host (1,000 Okta stand-ins in this process, one CA,
//! every host resolved by the daemon's `egress.resolve`), created through
//! the REST API with up to [`IN_FLIGHT`] requests at once so their small
//! backfills overlap. Reports the daemon's peak RSS while they run, its
//! RSS once all are backfilled and idle, and the memory per idle instance.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::tls::TestCa;

use crate::daemon::{Daemon, Upstream, write_config_for};
use crate::figure::{Figure, rss_mib};

const INSTANCES: usize = 1_000;
/// System Log events per tenant (one page).
const EVENTS: u64 = 20;
/// `POST /instances` requests in flight at once.
const IN_FLIGHT: usize = 32;
/// How long the daemon sits idle after the last backfill before the idle
/// figure is read (before the instances' next 60 s poll).
const SETTLE: Duration = Duration::from_secs(45);

/// Prints the scale figures.
pub async fn run(ward: &Path) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = TestCa::generate().context("generating the stand-ins' CA")?;
    let ca_file = dir.path().join("standin-ca.pem");
    std::fs::write(&ca_file, ca.ca_pem())?;
    let mut tenants = Vec::with_capacity(INSTANCES);
    for i in 0..INSTANCES {
        let config = OktaConfig {
            org: format!("tenant{i:04}"),
            events: EVENTS as usize,
            users: 2,
            seed: i as u64 + 1,
            rate_limit_per_minute: 10_000_000,
            ..OktaConfig::default()
        };
        tenants.push(
            OktaStandIn::start(config, &ca)
                .await
                .with_context(|| format!("starting Okta stand-in {i}"))?,
        );
    }
    let hosts: Vec<String> = tenants.iter().map(OktaStandIn::host).collect();
    let upstreams: Vec<Upstream<'_>> = tenants
        .iter()
        .zip(&hosts)
        .map(|(t, host)| Upstream {
            host,
            addr: t.addr(),
            ca_file: &ca_file,
        })
        .collect();
    let data = dir.path().join("ward-scale");
    std::fs::create_dir_all(&data)?;
    let config = write_config_for(&data, &upstreams, "")?;
    let (daemon, _) = Daemon::start(ward, &config).await?;
    let daemon = Arc::new(daemon);
    let pid = daemon.pid();
    let empty = rss_mib(pid)?;

    // Peak RSS, sampled every 20 ms until every backfill is done.
    let peak_kib = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak_kib, done) = (peak_kib.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Ok(rss) = rss_mib(pid) {
                    peak_kib.fetch_max((rss * 1024.0) as u64, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let token = OktaConfig::default().api_token;
    let started = Instant::now();
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut creating = tokio::task::JoinSet::new();
    for host in &hosts {
        let domain = host.split('.').next().unwrap_or_default().to_string();
        let (daemon, token, permits) = (daemon.clone(), token.clone(), permits.clone());
        creating.spawn(async move {
            let _permit = permits.acquire().await?;
            let id = daemon.create_okta(&domain, &token).await?;
            daemon.set_rate(&id, 1_000_000).await
        });
    }
    while let Some(created) = creating.join_next().await {
        created??;
    }
    let created = started.elapsed();
    loop {
        let instances = daemon.instances().await?;
        if let Some((id, stored, _)) = instances.iter().find(|(_, _, s)| s == "error") {
            anyhow::bail!("instance {id} went to error after {stored} events");
        }
        let backfilled = instances.iter().filter(|(_, n, _)| *n >= EVENTS).count();
        if backfilled >= INSTANCES {
            break;
        }
        if started.elapsed() > Duration::from_secs(900) {
            anyhow::bail!("{backfilled} of {INSTANCES} instances backfilled in 900 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let backfilled = started.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.await?;
    let peak = peak_kib.load(Ordering::Relaxed) as f64 / 1024.0;
    tokio::time::sleep(SETTLE).await;
    let idle = rss_mib(pid)?;
    let setup = format!(
        "release `ward serve`, {INSTANCES} Okta instances on {INSTANCES} tenant hosts (stand-ins on loopback, one CA), API token, {EVENTS} events each; created through POST /instances ({IN_FLIGHT} in flight) in {:.1} s, all backfilled after {:.1} s",
        created.as_secs_f64(),
        backfilled.as_secs_f64()
    );
    Figure::alone(
        "RSS during 1,000 concurrent small backfills (peak)",
        format!("{peak:.0} MiB"),
        format!(
            "{setup}; VmRSS sampled every 20 ms from the first POST until every instance stored its events; goal ≤ 400 MiB"
        ),
    )
    .emit()?;
    Figure {
        figure: "RSS idle with 1,000 instances".into(),
        value: format!("{idle:.0} MiB"),
        baseline: format!("{empty:.0} MiB with no instance"),
        ratio: "—".into(),
        note: format!(
            "{setup}; VmRSS {} s after the last backfill; goal ≤ 150 MiB",
            SETTLE.as_secs()
        ),
    }
    .emit()?;
    Figure::alone(
        "memory per idle instance",
        format!(
            "{:.0} KiB",
            (idle - empty).max(0.0) * 1024.0 / INSTANCES as f64
        ),
        format!("(idle RSS − RSS with no instance) / {INSTANCES}"),
    )
    .emit()
}

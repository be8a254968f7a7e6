//! Start-up: each bundled connector's compile time, and `ward serve`
//! starting with the three bundled connectors, cold (empty compile cache)
//! and warm (cache filled by the cold start).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::daemon::{Daemon, write_config};
use crate::figure::{Figure, cpu_time, median, ratio, rss_mib};
use crate::runtime::runtime;

const WARM_STARTS: usize = 5;

/// Prints the compile and start-up figures.
pub async fn run(ward: &Path) -> anyhow::Result<()> {
    let uncached = runtime(None, None)?;
    for (key, bytes) in ward_daemon::bundled::PLUGINS {
        let (wall0, cpu0) = (Instant::now(), cpu_time(None)?);
        uncached
            .load(bytes)
            .map_err(|e| anyhow::anyhow!("compiling the bundled connector `{key}`: {e}"))?;
        let (wall, cpu) = (wall0.elapsed(), cpu_time(None)? - cpu0);
        Figure::alone(
            &format!("compile: {key} connector"),
            format!("{} ms", wall.as_millis()),
            format!(
                "`Runtime::load` without a cache ({} KiB component, Cranelift, parallel compilation): {} ms CPU",
                bytes.len() / 1024,
                cpu.as_millis()
            ),
        )
        .emit()?;
    }

    let dir = tempfile::tempdir()?;
    let config = write_config(dir.path(), None)?;
    let (daemon, cold) = Daemon::start(ward, &config).await?;
    drop(daemon);
    let mut warm: Vec<Duration> = Vec::with_capacity(WARM_STARTS);
    let mut idle_rss = 0.0;
    for _ in 0..WARM_STARTS {
        let (daemon, took) = Daemon::start(ward, &config).await?;
        warm.push(took);
        idle_rss = rss_mib(daemon.pid())?;
    }
    let warm = median(&mut warm);
    Figure {
        figure: "start-up: `ward serve`, 3 bundled plugins, warm cache".into(),
        value: format!("{} ms", warm.as_millis()),
        baseline: format!("{} ms cold (empty cache)", cold.as_millis()),
        ratio: ratio(cold.as_secs_f64(), warm.as_secs_f64()),
        note: format!(
            "spawn until `/livez` answers (store opened, plugins loaded), median of {WARM_STARTS} warm starts on the same data directory; goal ≤ 200 ms"
        ),
    }
    .emit()?;
    Figure::alone(
        "daemon RSS idle, no instances",
        format!("{idle_rss:.0} MiB"),
        "VmRSS of `ward serve` just after a warm start",
    )
    .emit()?;
    Ok(())
}

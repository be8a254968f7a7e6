//! Per-call overhead: instantiate + a no-op export (`auth-url`, which
//! builds a URL and makes no request) + teardown, through [`Bound`],
//! sequentially and from several tasks at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ward_runtime::Bound;

use crate::figure::{Figure, cpu_time, median, micros, ratio};
use crate::runtime::{bundled, okta, runtime};

const WARM_UP: usize = 2_000;
const SEQUENTIAL: usize = 20_000;
const CONCURRENT: usize = 40_000;

async fn call(bound: &Bound) -> anyhow::Result<()> {
    bound
        .auth_url("https://ward.local/oauth/callback", "bench-state")
        .await
        .result
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("auth-url failed: {e}"))
}

/// Prints the sequential and concurrent figures.
pub async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = runtime(Some(dir.path()), None)?;
    let plugin = bundled(&runtime, "okta")?;
    let bound = Arc::new(okta(&plugin, "ward-demo", BTreeMap::new())?);
    for _ in 0..WARM_UP {
        call(&bound).await?;
    }
    let mut samples = Vec::with_capacity(SEQUENTIAL);
    let (wall0, cpu0) = (Instant::now(), cpu_time(None)?);
    for _ in 0..SEQUENTIAL {
        let t = Instant::now();
        call(&bound).await?;
        samples.push(t.elapsed());
    }
    let wall = wall0.elapsed();
    let cpu = cpu_time(None)? - cpu0;
    let sequential_rate = SEQUENTIAL as f64 / wall.as_secs_f64();
    let med = median(&mut samples);
    let p99 = samples
        .get(samples.len() * 99 / 100)
        .copied()
        .unwrap_or(Duration::ZERO);
    Figure {
        figure: "per call: instantiate + auth-url + teardown (sequential)".into(),
        value: format!("{:.1} µs median", micros(med)),
        baseline: "goal ≤ 15 µs (#14; not a measurement)".into(),
        ratio: ratio(15.0, micros(med)),
        note: format!(
            "Okta connector through `Bound::auth_url`, {SEQUENTIAL} calls after {WARM_UP} warm-up: mean {:.1} µs, p99 {:.1} µs, process CPU {:.1} µs/call, {sequential_rate:.0} calls/s",
            micros(wall) / SEQUENTIAL as f64,
            micros(p99),
            micros(cpu) / SEQUENTIAL as f64,
        ),
    }
    .emit()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for tasks in [cores, 8] {
        let per_task = CONCURRENT / tasks;
        let (wall0, cpu0) = (Instant::now(), cpu_time(None)?);
        let mut handles = Vec::new();
        for _ in 0..tasks {
            let bound = bound.clone();
            handles.push(tokio::spawn(async move {
                for _ in 0..per_task {
                    call(&bound).await?;
                }
                anyhow::Ok(())
            }));
        }
        for h in handles {
            h.await??;
        }
        let wall = wall0.elapsed();
        let cpu = cpu_time(None)? - cpu0;
        let calls = (per_task * tasks) as f64;
        let rate = calls / wall.as_secs_f64();
        Figure {
            figure: format!("per call: {tasks} concurrent tasks"),
            value: format!("{rate:.0} calls/s"),
            baseline: format!("{sequential_rate:.0} calls/s sequential"),
            ratio: ratio(rate, sequential_rate),
            note: format!(
                "{calls} calls on a {cores}-worker tokio runtime; process CPU {:.1} µs/call; ratio = scaling over one task (ideal: {cores}×)",
                micros(cpu) / calls
            ),
        }
        .emit()?;
    }
    Ok(())
}

//! Per-call overhead: instantiate + a no-op export (`auth-url`, which
//! builds a URL and makes no request) + teardown, through [`Bound`],
//! sequentially and from several tasks at once. Two baselines in the same
//! run and the same engine (Ward's, pooling allocator included): the same
//! component in wasmtime alone (a store holding only WASI state, no
//! broker, limits, output checks or redaction), and an empty component
//! (one export, no import): what instantiating any component costs here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ward_runtime::Bound;
use ward_runtime::bindings::CONNECTOR_V0_2;
use ward_runtime::bindings::v0_2::ward::connector::types::{ConfigEntry, Instance};
use ward_runtime::types::PluginError;
use wasmtime::component::{Component, ComponentExportIndex, InstancePre};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;

use crate::figure::{Figure, cpu_time, median, micros, ratio};
use crate::guest_host::{Guest, linker};
use crate::runtime::{bundled, okta, okta_config, runtime};

const WARM_UP: usize = 2_000;
/// Sequential calls per kind, in [`BLOCKS`] blocks, the kinds alternating
/// block by block so that a slow spell of the machine hits all three.
const SEQUENTIAL: usize = 20_000;
const BLOCKS: usize = 10;
const CONCURRENT: usize = 40_000;
const REDIRECT: &str = "https://ward.local/oauth/callback";
const STATE: &str = "bench-state";
const DOMAIN: &str = "ward-demo";

async fn call(bound: &Bound) -> anyhow::Result<()> {
    bound
        .auth_url(REDIRECT, STATE)
        .await
        .result
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("auth-url failed: {e}"))
}

/// The Okta component in wasmtime alone: Ward's engine, WASI from
/// wasmtime's crates, the same typed `auth-url` call Ward makes.
struct Bare {
    engine: Engine,
    pre: InstancePre<Guest>,
    auth_url: ComponentExportIndex,
    instance: Instance,
}

impl Bare {
    fn new(engine: &Engine, bytes: &[u8]) -> anyhow::Result<Bare> {
        let component =
            Component::new(engine, bytes).map_err(|e| anyhow::anyhow!("compiling: {e:#}"))?;
        let pre = linker(engine, &component)?
            .instantiate_pre(&component)
            .map_err(|e| anyhow::anyhow!("linking the Okta component: {e:#}"))?;
        let interface = component
            .get_export_index(None, CONNECTOR_V0_2)
            .ok_or_else(|| anyhow::anyhow!("the Okta component exports no {CONNECTOR_V0_2}"))?;
        let auth_url = component
            .get_export_index(Some(&interface), "auth-url")
            .ok_or_else(|| anyhow::anyhow!("the Okta component has no `auth-url`"))?;
        Ok(Bare {
            engine: engine.clone(),
            pre,
            auth_url,
            instance: Instance {
                config: okta_config(DOMAIN)
                    .into_iter()
                    .map(|(name, value)| ConfigEntry { name, value })
                    .collect(),
                auth: None,
            },
        })
    }

    async fn call(&self) -> anyhow::Result<()> {
        let mut store = Store::new(&self.engine, Guest::new(WasiCtx::builder().build()));
        store.epoch_deadline_async_yield_and_update(1);
        let component = self.pre.instantiate_async(&mut store).await.map_err(wt)?;
        let f = component
            .get_typed_func::<(&Instance, &str, &str), (Result<String, PluginError>,)>(
                &mut store,
                &self.auth_url,
            )
            .map_err(wt)?;
        let (out,) = f
            .call_async(&mut store, (&self.instance, REDIRECT, STATE))
            .await
            .map_err(wt)?;
        out.map_err(|e| anyhow::anyhow!("auth-url failed: {e:?}"))?;
        Ok(())
    }
}

/// wasmtime's error, with its causes, as ours.
fn wt(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:#}")
}

/// A component with one export returning a constant and no import.
const EMPTY: &str = r#"(component
  (core module $m
    (memory (export "memory") 1)
    (func (export "f") (result i32) (i32.const 7)))
  (core instance $i (instantiate $m))
  (func (export "f") (result u32) (canon lift (core func $i "f"))))"#;

struct Empty {
    engine: Engine,
    pre: InstancePre<()>,
}

impl Empty {
    fn new(engine: &Engine) -> anyhow::Result<Empty> {
        let bytes = wat::parse_str(EMPTY)?;
        let component =
            Component::new(engine, bytes).map_err(|e| anyhow::anyhow!("compiling: {e:#}"))?;
        let pre = wasmtime::component::Linker::new(engine)
            .instantiate_pre(&component)
            .map_err(|e| anyhow::anyhow!("linking the empty component: {e:#}"))?;
        Ok(Empty {
            engine: engine.clone(),
            pre,
        })
    }

    async fn call(&self) -> anyhow::Result<()> {
        let mut store = Store::new(&self.engine, ());
        store.epoch_deadline_async_yield_and_update(1);
        let component = self.pre.instantiate_async(&mut store).await.map_err(wt)?;
        let f = component
            .get_typed_func::<(), (u32,)>(&mut store, "f")
            .map_err(wt)?;
        let (out,) = f.call_async(&mut store, ()).await.map_err(wt)?;
        anyhow::ensure!(out == 7, "the empty component answered {out}, not 7");
        Ok(())
    }
}

/// Times `n` calls of `f`, one sample each.
async fn timed<F: AsyncFnMut() -> anyhow::Result<()>>(
    n: usize,
    samples: &mut Vec<Duration>,
    mut f: F,
) -> anyhow::Result<()> {
    for _ in 0..n {
        let t = Instant::now();
        f().await?;
        samples.push(t.elapsed());
    }
    Ok(())
}

/// Prints the sequential figures, the two baselines and the concurrent ones.
pub async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = runtime(Some(dir.path()), None)?;
    let plugin = bundled(&runtime, "okta")?;
    let bound = Arc::new(okta(&plugin, DOMAIN, BTreeMap::new())?);
    let bytes = ward_daemon::bundled::get("okta")
        .ok_or_else(|| anyhow::anyhow!("no bundled connector `okta`"))?;
    let bare = Bare::new(runtime.engine(), bytes)?;
    let empty = Empty::new(runtime.engine())?;
    let mut ward = Vec::with_capacity(SEQUENTIAL);
    let mut wasmtime = Vec::with_capacity(SEQUENTIAL);
    let mut floor = Vec::with_capacity(SEQUENTIAL);
    let mut discard = Vec::with_capacity(WARM_UP);
    timed(WARM_UP, &mut discard, || call(&bound)).await?;
    timed(WARM_UP, &mut discard, || bare.call()).await?;
    timed(WARM_UP, &mut discard, || empty.call()).await?;
    let (mut ward_wall, mut ward_cpu) = (Duration::ZERO, Duration::ZERO);
    let block = SEQUENTIAL / BLOCKS;
    for _ in 0..BLOCKS {
        let (wall0, cpu0) = (Instant::now(), cpu_time(None)?);
        timed(block, &mut ward, || call(&bound)).await?;
        ward_wall += wall0.elapsed();
        ward_cpu += cpu_time(None)? - cpu0;
        timed(block, &mut wasmtime, || bare.call()).await?;
        timed(block, &mut floor, || empty.call()).await?;
    }
    let sequential_rate = ward.len() as f64 / ward_wall.as_secs_f64();
    let med = median(&mut ward);
    let p99 = ward
        .get(ward.len() * 99 / 100)
        .copied()
        .unwrap_or(Duration::ZERO);
    let bare_med = median(&mut wasmtime);
    let floor_med = median(&mut floor);
    Figure {
        figure: "per call: instantiate + auth-url + teardown (sequential)".into(),
        value: format!("{:.1} µs median", micros(med)),
        baseline: "goal ≤ 15 µs (#14; not a measurement)".into(),
        ratio: ratio(15.0, micros(med)),
        note: format!(
            "Okta connector through `Bound::auth_url`, {SEQUENTIAL} calls after {WARM_UP} warm-up, in {BLOCKS} blocks alternating with the two baselines below: mean {:.1} µs, p99 {:.1} µs, process CPU {:.1} µs/call, {sequential_rate:.0} calls/s",
            micros(ward_wall) / ward.len() as f64,
            micros(p99),
            micros(ward_cpu) / ward.len() as f64,
        ),
    }
    .emit()?;
    Figure {
        figure: "per call: Ward over wasmtime alone".into(),
        value: format!("{:.1} µs median through Ward", micros(med)),
        baseline: format!("{:.1} µs median in wasmtime alone", micros(bare_med)),
        ratio: ratio(micros(bare_med), micros(med)),
        note: format!(
            "baseline: the same Okta component in Ward's engine (same pooling allocator), WASI and wasi:http from wasmtime's crates, a store holding nothing else, the same typed `auth-url` call; Ward adds {:.1} µs per call (its broker, limits, output checks, redaction, logs)",
            micros(med) - micros(bare_med),
        ),
    }
    .emit()?;
    Figure {
        figure: "per call: wasmtime floor (empty component)".into(),
        value: format!("{:.1} µs median", micros(floor_med)),
        baseline: format!("{:.1} µs the Okta component in wasmtime alone", micros(bare_med)),
        ratio: ratio(micros(floor_med), micros(bare_med)),
        note: "a component with one export returning a constant, no import, one page of memory, in Ward's engine: instantiate + call + teardown; what the Okta component costs beyond it is its 3 core modules, 55 imports and their lowerings".into(),
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

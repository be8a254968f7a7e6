//! Guest parse cost (#14): the Okta connector's System Log page parser
//! (`ward_okta::system_log::page`, the code its `fetch-audit` runs) on the
//! same 1,000-event page from the stand-in, called natively in this process
//! and inside wasm: `bench/parse-guest` is that parser built for
//! wasm32-wasip2 as a wasi:cli command, run in an engine configured like
//! the runtime's (component model, epoch interruption). Each side times
//! its own rounds, so instantiation and copying the page in are left out.

use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::Component;
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};

use crate::figure::{Figure, median, micros, ratio};
use crate::guest_host::{Guest, linker};
use crate::standin::Org;

/// Rounds timed on each side, in [`BLOCKS`] blocks alternating native and
/// wasm so that a slow spell of the machine hits both; each block starts
/// with [`WARM_UP`] untimed rounds (the wasm ones in a fresh instance).
const ROUNDS: usize = 100;
const BLOCKS: usize = 10;
const WARM_UP: usize = 2;
/// The guest component, built by `build.rs`.
const GUEST: &str = env!("WARD_BENCH_WARD_BENCH_PARSE");

/// Prints the parse figure.
pub async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let org = Org::start(1_000, dir.path()).await?;
    let (_, page) = org.first_page().await?;
    let guest = Wasm::new()?;
    let per_block = ROUNDS / BLOCKS;
    let (mut native, mut wasm) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    for _ in 0..BLOCKS {
        for round in 0..WARM_UP + per_block {
            let t = std::time::Instant::now();
            let events = ward_okta::system_log::page(&page)
                .map_err(|e| anyhow::anyhow!("the native parser refused the page: {e:?}"))?;
            let took = t.elapsed();
            anyhow::ensure!(
                events.len() == 1_000,
                "the page parsed into {} events natively, not 1,000",
                events.len()
            );
            if round >= WARM_UP {
                native.push(took);
            }
        }
        let (rounds, events) = guest.run(&page, WARM_UP + per_block).await?;
        anyhow::ensure!(
            events == 1_000,
            "the page parsed into {events} events in wasm, not 1,000"
        );
        wasm.extend(rounds.into_iter().skip(WARM_UP));
    }
    let (native, wasm) = (median(&mut native), median(&mut wasm));
    Figure {
        figure: "guest parse vs native (Okta page)".into(),
        value: format!("{:.0} µs in wasm", micros(wasm)),
        baseline: format!("{:.0} µs native", micros(native)),
        ratio: ratio(micros(native), micros(wasm)),
        note: format!(
            "`ward_okta::system_log::page` on one 1,000-event System Log page ({:.0} KB) from the stand-in, median of {ROUNDS} rounds per side in {BLOCKS} alternating blocks, each after {WARM_UP} warm-up rounds; wasm: bench/parse-guest (plugin profile, wasm32-wasip2) in wasmtime with the runtime's settings, timed inside the guest; wasm/native = {:.2}× (goal ≤ 1.5×)",
            page.len() as f64 / 1000.0,
            wasm.as_secs_f64() / native.as_secs_f64().max(1e-9),
        ),
    }
    .emit()
}

/// The parse guest, compiled and linked once.
struct Wasm {
    engine: Engine,
    component: Component,
    linker: wasmtime::component::Linker<Guest>,
}

impl Wasm {
    fn new() -> anyhow::Result<Wasm> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let component = Component::from_file(&engine, GUEST)
            .map_err(|e| anyhow::anyhow!("compiling {GUEST}: {e:#}"))?;
        // The parser links the connector crate, whose other exports import
        // the host's log and HTTP interfaces; the parse path calls neither.
        let linker = linker(&engine, &component)?;
        Ok(Wasm {
            engine,
            component,
            linker,
        })
    }

    /// Runs the guest over `page` for `rounds` rounds in a fresh instance;
    /// returns each round's time and the events of the last round.
    async fn run(&self, page: &[u8], rounds: usize) -> anyhow::Result<(Vec<Duration>, usize)> {
        let (engine, component, linker) = (&self.engine, &self.component, &self.linker);
        let expected = rounds;
        let stdout = MemoryOutputPipe::new(1 << 20);
        let rounds = rounds.to_string();
        let ctx = WasiCtx::builder()
            .stdin(MemoryInputPipe::new(page.to_vec()))
            .stdout(stdout.clone())
            .inherit_stderr()
            .args(&["ward_bench_parse", rounds.as_str()])
            .build();
        let mut store = Store::new(engine, Guest::new(ctx));
        // Nothing advances the epoch here: the check runs, the deadline never
        // passes.
        store.set_epoch_deadline(1);
        let command = Command::instantiate_async(&mut store, component, linker)
            .await
            .map_err(|e| anyhow::anyhow!("instantiating {GUEST}: {e:#}"))?;
        command
            .wasi_cli_run()
            .call_run(&mut store)
            .await
            .map_err(|e| anyhow::anyhow!("running {GUEST}: {e:#}"))?
            .map_err(|()| anyhow::anyhow!("{GUEST} failed; its error is above"))?;
        let out = String::from_utf8(stdout.contents().to_vec()).context("guest output")?;
        let mut samples = Vec::new();
        let mut events = 0;
        for line in out.lines() {
            let (nanos, n) = line
                .split_once(' ')
                .with_context(|| format!("guest printed `{line}`, not `NANOS EVENTS`"))?;
            samples.push(Duration::from_nanos(nanos.parse()?));
            events = n.parse()?;
        }
        if samples.len() != expected {
            anyhow::bail!("the guest ran {} rounds, not {expected}", samples.len());
        }
        Ok((samples, events))
    }
}

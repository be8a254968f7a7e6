//! Guest parse cost (#14): the Okta connector's System Log page parser
//! (`ward_okta::system_log::page`, the code its `fetch-audit` runs) on the
//! same 1,000-event page from the stand-in, called natively in this process
//! and inside wasm: `bench/parse-guest` is that parser built for
//! wasm32-wasip2 as a wasi:cli command, run in an engine configured like
//! the runtime's (component model, epoch interruption). Each side times
//! its own rounds, so instantiation and copying the page in are left out.

use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    Error as HttpErr, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

/// What a `wasi:http` send answers.
type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpErr>> + Send>,
    ),
    HttpErr,
>;

use crate::figure::{Figure, median, micros, ratio};
use crate::standin::Org;

/// Rounds timed on each side, after [`WARM_UP`] untimed ones.
const ROUNDS: usize = 100;
const WARM_UP: usize = 10;
/// The guest component, built by `build.rs`.
const GUEST: &str = env!("WARD_BENCH_WARD_BENCH_PARSE");

/// Prints the parse figure.
pub async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let org = Org::start(1_000, dir.path()).await?;
    let (_, page) = org.first_page().await?;

    let mut native = Vec::with_capacity(ROUNDS + WARM_UP);
    let mut native_events = 0;
    for _ in 0..ROUNDS + WARM_UP {
        let t = std::time::Instant::now();
        let events = ward_okta::system_log::page(&page)
            .map_err(|e| anyhow::anyhow!("the native parser refused the page: {e:?}"))?;
        native.push(t.elapsed());
        native_events = events.len();
    }
    let mut native = native.split_off(WARM_UP);
    let (mut wasm, wasm_events) = in_wasm(&page).await?;
    if native_events != 1_000 || wasm_events != native_events {
        anyhow::bail!(
            "the page parsed into {native_events} events natively and {wasm_events} in wasm, not 1,000 each"
        );
    }
    let (native, wasm) = (median(&mut native), median(&mut wasm));
    Figure {
        figure: "guest parse vs native (Okta page)".into(),
        value: format!("{:.0} µs in wasm", micros(wasm)),
        baseline: format!("{:.0} µs native", micros(native)),
        ratio: ratio(micros(native), micros(wasm)),
        note: format!(
            "`ward_okta::system_log::page` on one 1,000-event System Log page ({:.0} KB) from the stand-in, median of {ROUNDS} rounds after {WARM_UP} warm-up per side; wasm: bench/parse-guest (plugin profile, wasm32-wasip2) in wasmtime with the runtime's settings, timed inside the guest; wasm/native = {:.2}× (goal ≤ 1.5×)",
            page.len() as f64 / 1000.0,
            wasm.as_secs_f64() / native.as_secs_f64().max(1e-9),
        ),
    }
    .emit()
}

struct Guest {
    ctx: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: NoHttp,
}

/// The parse path sends no request; `wasi:http` is linked only because the
/// connector crate the guest links imports it.
struct NoHttp;

impl WasiHttpHooks for NoHttp {
    fn send_request(
        &mut self,
        _request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpErr>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        Box::new(async { Err(HttpErr::HttpRequestDenied) })
    }
}

impl WasiHttpView for Guest {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.hooks,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

/// Defines every function of the guest's `ward:` imports (the connector's
/// log interface, which the parse path never calls) as a trap. Not
/// `Linker::define_unknown_imports_as_traps`: it would shadow the WASI
/// interfaces the component imports at a newer patch version than the
/// linker's with instances of fresh resource types.
fn trap_ward_imports(
    engine: &Engine,
    component: &Component,
    linker: &mut Linker<Guest>,
) -> anyhow::Result<()> {
    for (name, item) in component.component_type().imports(engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        if !name.starts_with("ward:") {
            continue;
        }
        let mut defining = linker
            .instance(name)
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        for (func, item) in instance.exports(engine) {
            if let ComponentItem::ComponentFunc(_) = item.ty {
                let what = format!("{name}#{func}");
                defining
                    .func_new(func, move |_, _, _, _| {
                        Err(wasmtime::Error::msg(format!(
                            "{what} is not provided to the parse benchmark"
                        )))
                    })
                    .map_err(|e| anyhow::anyhow!("{e:#}"))?;
            }
        }
    }
    Ok(())
}

impl WasiView for Guest {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Runs the guest over `page`; returns the timed rounds (warm-up dropped)
/// and the events of the last round.
async fn in_wasm(page: &[u8]) -> anyhow::Result<(Vec<Duration>, usize)> {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true).epoch_interruption(true);
    let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let component = Component::from_file(&engine, GUEST)
        .map_err(|e| anyhow::anyhow!("compiling {GUEST}: {e:#}"))?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(|e| anyhow::anyhow!("linking WASI: {e:#}"))?;
    // The parser links the connector crate, whose other exports import the
    // host's log and HTTP interfaces; the parse path calls neither.
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(|e| anyhow::anyhow!("linking wasi:http: {e:#}"))?;
    trap_ward_imports(&engine, &component, &mut linker)?;
    let stdout = MemoryOutputPipe::new(1 << 20);
    let rounds = (ROUNDS + WARM_UP).to_string();
    let ctx = WasiCtx::builder()
        .stdin(MemoryInputPipe::new(page.to_vec()))
        .stdout(stdout.clone())
        .inherit_stderr()
        .args(&["ward_bench_parse", rounds.as_str()])
        .build();
    let mut store = Store::new(
        &engine,
        Guest {
            ctx,
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: NoHttp,
        },
    );
    // Nothing advances the epoch here: the check runs, the deadline never
    // passes.
    store.set_epoch_deadline(1);
    let command = Command::instantiate_async(&mut store, &component, &linker)
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
    if samples.len() != ROUNDS + WARM_UP {
        anyhow::bail!(
            "the guest ran {} rounds, not {}",
            samples.len(),
            ROUNDS + WARM_UP
        );
    }
    Ok((samples.split_off(WARM_UP), events))
}

//! A host for running components in wasmtime alone, with no Ward runtime
//! around them: WASI and `wasi:http` from wasmtime's own crates (no request
//! is ever sent), the `ward:` imports as traps. The `parse` figure runs its
//! guest in it; the `calls` figure measures wasmtime's own instantiate +
//! call + teardown of a connector with it, as the baseline of Ward's.

use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceTable};
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

/// The store data: a WASI context and tables, nothing of Ward's.
pub struct Guest {
    ctx: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: NoHttp,
}

impl Guest {
    /// A guest seeing `ctx` (its arguments and stdio).
    pub fn new(ctx: WasiCtx) -> Guest {
        Guest {
            ctx,
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: NoHttp,
        }
    }
}

/// The guests run here send no request; `wasi:http` is linked only
/// because the connector crate imports it.
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

impl WasiView for Guest {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// A linker for `component`: WASI, `wasi:http`, and every function of its
/// `ward:` imports defined as a trap.
pub fn linker(engine: &Engine, component: &Component) -> anyhow::Result<Linker<Guest>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(|e| anyhow::anyhow!("linking WASI: {e:#}"))?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(|e| anyhow::anyhow!("linking wasi:http: {e:#}"))?;
    trap_ward_imports(engine, component, &mut linker)?;
    Ok(linker)
}

/// Defines every function of the guest's `ward:` imports as a trap. Not
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
                            "{what} is not provided to benchmark guests"
                        )))
                    })
                    .map_err(|e| anyhow::anyhow!("{e:#}"))?;
            }
        }
    }
    Ok(())
}

//! Bindings of the current `ward:connector@0.2.0` contract (`wit/v0.2`).
//! Generated for the larger world, `plugin-with-exchange`; a component of
//! world `plugin` is called through the `connector` interface's indices
//! alone, so it never needs an `exchange` export.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../../wit/v0.2",
    world: "ward:connector/plugin-with-exchange",
    imports: { default: tracing },
    exports: { default: async },
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
    require_store_data_send: true,
});

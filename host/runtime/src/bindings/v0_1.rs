//! Bindings of the frozen `ward:connector@0.1.0` contract (`wit/v0.1`).
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../../wit/v0.1",
    world: "ward:connector/plugin",
    imports: { default: tracing },
    exports: { default: async },
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
    require_store_data_send: true,
});

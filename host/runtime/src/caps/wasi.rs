//! The WASI base every Rust `wasm32-wasip2` component imports (clocks,
//! random, stdio, and the filesystem/sockets/environment interfaces that
//! `std` links whether or not it uses them). Ward provides them *empty*: no
//! preopened directories, no environment variables, no arguments, no
//! sockets, no name lookup. Stdout and stderr go to small in-memory pipes; a
//! plugin that writes more than their capacity gets a write error, so a
//! flood costs bounded memory.

use wasmtime::component::Linker;
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::RuntimeError;

/// Capacity of each of stdout and stderr per call.
pub const STDIO_CAPACITY: usize = 64 * 1024;

/// The empty context plus handles to read what the plugin printed.
pub(crate) struct Sandbox {
    pub(crate) ctx: WasiCtx,
    pub(crate) stdout: MemoryOutputPipe,
    pub(crate) stderr: MemoryOutputPipe,
}

pub(crate) fn sandbox() -> Sandbox {
    let stdout = MemoryOutputPipe::new(STDIO_CAPACITY);
    let stderr = MemoryOutputPipe::new(STDIO_CAPACITY);
    let ctx = WasiCtx::builder()
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build();
    Sandbox {
        ctx,
        stdout,
        stderr,
    }
}

/// Adds the WASI p2 base interfaces.
pub fn add_to_linker(linker: &mut Linker<crate::HostState>) -> Result<(), RuntimeError> {
    wasmtime_wasi::p2::add_to_linker_async(linker)
        .map_err(|e| RuntimeError::Config(format!("linking WASI: {e:#}")))
}

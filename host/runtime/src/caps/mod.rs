//! Capabilities the host grants a plugin. Each lives in one module with one
//! `add_to_linker` entry point; [`add_all`] is the only place that links
//! them, so what a plugin can reach is visible here in one list.

pub mod http;
pub mod log;
pub mod secrets;
pub mod wasi;

use wasmtime::component::Linker;

use crate::RuntimeError;

/// Links every capability Ward offers.
pub fn add_all(linker: &mut Linker<crate::HostState>) -> Result<(), RuntimeError> {
    wasi::add_to_linker(linker)?;
    http::add_to_linker(linker)?;
    log::add_to_linker(linker)?;
    Ok(())
}

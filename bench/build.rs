//! Builds the `parse` figure's guest (`bench/parse-guest`, the Okta
//! connector's page parser as a wasi:cli command) for wasm32-wasip2.

use std::path::Path;

fn main() {
    let Some(manifest_dir) = std::env::var_os("CARGO_MANIFEST_DIR") else {
        println!("cargo:warning=CARGO_MANIFEST_DIR is not set: run this through cargo");
        std::process::exit(1);
    };
    let root = Path::new(&manifest_dir).join("..");
    println!(
        "cargo:rerun-if-changed={}",
        root.join("bench/parse-guest").display()
    );
    if let Err(e) = ward_plugin_build::build(&root, &["ward-bench-parse"], "WARD_BENCH_") {
        println!("cargo:warning={e}");
        std::process::exit(1);
    }
}

//! Builds the bundled connectors from `plugins/` and embeds them, so the
//! `ward` binary carries everything `ward demo` needs.

use std::path::Path;

fn main() {
    // Read at run time, not with `env!`: a build-script binary reused from
    // another checkout (same sources, moved target directory) must build the
    // plugins of this checkout, not of the one it was compiled in.
    let Some(manifest_dir) = std::env::var_os("CARGO_MANIFEST_DIR") else {
        println!("cargo:warning=CARGO_MANIFEST_DIR is not set: run this through cargo");
        std::process::exit(1);
    };
    let root = Path::new(&manifest_dir).join("../..");
    if let Err(e) = ward_plugin_build::build(
        &root,
        &["ward-okta", "ward-egnyte", "ward-zendesk"],
        "WARD_BUNDLED_",
    ) {
        println!("cargo:warning={e}");
        std::process::exit(1);
    }
}

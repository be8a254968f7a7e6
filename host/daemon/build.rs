//! Builds the bundled connectors from `plugins/` and embeds them, so the
//! `ward` binary carries everything `ward demo` needs.

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if let Err(e) = ward_plugin_build::build(
        &root,
        &["ward-okta", "ward-egnyte", "ward-zendesk"],
        "WARD_BUNDLED_",
    ) {
        println!("cargo:warning={e}");
        std::process::exit(1);
    }
}

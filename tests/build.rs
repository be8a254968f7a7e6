//! Builds the hostile test plugins from source for the sandbox tests.

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if let Err(e) = ward_plugin_build::build(
        &root,
        &[
            "ward-okta",
            "ward-egnyte",
            "ward-zendesk",
            "ward-hostile",
            "ward-undeclared",
            "ward-probe-v02",
            "ward-compat-v01",
        ],
        "WARD_TEST_PLUGIN_",
    ) {
        println!("cargo:warning={e}");
        std::process::exit(1);
    }
}

//! componentize-py, which builds Python connectors into components
//! (`examples/python-okta-lite`, `ward plugin new --lang python`).

use super::{Context, Export, python};

/// The pinned release: builds are reproducible only with one version.
pub const REQUIREMENT: &str = "componentize-py==0.25.1";

/// Installs componentize-py into `target/tools/componentize-py` and exports
/// `WARD_COMPONENTIZE_PY`, the path of its executable.
pub fn setup(ctx: &Context) -> anyhow::Result<Vec<Export>> {
    let venv = python::venv(&ctx.dir.join("componentize-py"), &[REQUIREMENT])?;
    Ok(vec![Export {
        name: "WARD_COMPONENTIZE_PY",
        value: venv.join("bin").join("componentize-py").into(),
    }])
}

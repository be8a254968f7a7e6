//! `ward plugin new NAME [--lang rust|python]`: a connector project that
//! builds and passes `ward plugin test` as generated. The templates are
//! embedded in the binary (`host/ward/templates/`, one folder per language
//! plus `common/` for the manifest and fixtures); the Python project also
//! gets its own copy of `sdk/python/ward_sdk` and of the contract
//! (`wit/v0.2`), so it builds without the Ward repository.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The language of a generated project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// A `cdylib` crate on `ward-sdk`, built for wasm32-wasip2.
    Rust,
    /// An app module on `ward_sdk`, built with componentize-py.
    Python,
}

/// `(path in the project, contents)`.
type File = (&'static str, &'static str);

/// Both languages: the manifest and a fixtures folder with a recorded
/// exchange (Test now, an audit page, the caught-up page, users, a 401).
const COMMON: &[File] = &[
    ("ward.toml", include_str!("../templates/common/ward.toml")),
    (
        "fixtures/harness.toml",
        include_str!("../templates/common/harness.toml"),
    ),
    (
        "fixtures/recorded/01-me.request",
        include_str!("../templates/common/recorded/01-me.request"),
    ),
    (
        "fixtures/recorded/01-me.response",
        include_str!("../templates/common/recorded/01-me.response"),
    ),
    (
        "fixtures/recorded/02-audit.request",
        include_str!("../templates/common/recorded/02-audit.request"),
    ),
    (
        "fixtures/recorded/02-audit.response",
        include_str!("../templates/common/recorded/02-audit.response"),
    ),
    (
        "fixtures/recorded/03-audit-caught-up.request",
        include_str!("../templates/common/recorded/03-audit-caught-up.request"),
    ),
    (
        "fixtures/recorded/03-audit-caught-up.response",
        include_str!("../templates/common/recorded/03-audit-caught-up.response"),
    ),
    (
        "fixtures/recorded/04-users.request",
        include_str!("../templates/common/recorded/04-users.request"),
    ),
    (
        "fixtures/recorded/04-users.response",
        include_str!("../templates/common/recorded/04-users.response"),
    ),
    (
        "fixtures/audit-unauthorized/01-audit.request",
        include_str!("../templates/common/audit-unauthorized/01-audit.request"),
    ),
    (
        "fixtures/audit-unauthorized/01-audit.response",
        include_str!("../templates/common/audit-unauthorized/01-audit.response"),
    ),
];

const RUST: &[File] = &[
    ("Cargo.toml", include_str!("../templates/rust/Cargo.toml")),
    ("src/lib.rs", include_str!("../templates/rust/src/lib.rs")),
    ("README.md", include_str!("../templates/rust/README.md")),
];

const PYTHON: &[File] = &[
    ("app.py", include_str!("../templates/python/app.py")),
    ("README.md", include_str!("../templates/python/README.md")),
    (
        "ward_sdk/__init__.py",
        include_str!("../../../sdk/python/ward_sdk/__init__.py"),
    ),
    (
        "ward_sdk/_bindings.py",
        include_str!("../../../sdk/python/ward_sdk/_bindings.py"),
    ),
    (
        "ward_sdk/errors.py",
        include_str!("../../../sdk/python/ward_sdk/errors.py"),
    ),
    (
        "ward_sdk/http.py",
        include_str!("../../../sdk/python/ward_sdk/http.py"),
    ),
    (
        "ward_sdk/log.py",
        include_str!("../../../sdk/python/ward_sdk/log.py"),
    ),
    (
        "ward_sdk/secrets.py",
        include_str!("../../../sdk/python/ward_sdk/secrets.py"),
    ),
    (
        "ward_sdk/times.py",
        include_str!("../../../sdk/python/ward_sdk/times.py"),
    ),
    (
        "wit/connector.wit",
        include_str!("../../../wit/v0.2/connector.wit"),
    ),
    (
        "wit/deps/cli.wit",
        include_str!("../../../wit/v0.2/deps/cli.wit"),
    ),
    (
        "wit/deps/clocks.wit",
        include_str!("../../../wit/v0.2/deps/clocks.wit"),
    ),
    (
        "wit/deps/filesystem.wit",
        include_str!("../../../wit/v0.2/deps/filesystem.wit"),
    ),
    (
        "wit/deps/http.wit",
        include_str!("../../../wit/v0.2/deps/http.wit"),
    ),
    (
        "wit/deps/io.wit",
        include_str!("../../../wit/v0.2/deps/io.wit"),
    ),
    (
        "wit/deps/random.wit",
        include_str!("../../../wit/v0.2/deps/random.wit"),
    ),
    (
        "wit/deps/sockets.wit",
        include_str!("../../../wit/v0.2/deps/sockets.wit"),
    ),
];

/// Files copied verbatim (the SDK and the contract), never templated.
const VERBATIM: &[&str] = &["ward_sdk/", "wit/"];

/// Where this build's repository keeps the Rust SDK (the Rust template
/// depends on it by path; `--sdk` overrides).
pub fn default_rust_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/sdk")
}

/// What `ward plugin new` was asked for.
#[derive(Debug, Clone)]
pub struct NewProject {
    /// Plugin key and folder name: lower case letters, digits and `-`.
    pub name: String,
    /// The language.
    pub lang: Lang,
    /// The folder to create (default: `./NAME`).
    pub dir: PathBuf,
    /// The Rust SDK folder the Rust template depends on.
    pub rust_sdk: PathBuf,
}

/// Writes the project; refuses a bad name or an existing folder. Returns
/// the files written.
pub fn generate(project: &NewProject) -> anyhow::Result<Vec<PathBuf>> {
    let name = &project.name;
    let valid = name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        bail!(
            "plugin name {name:?} is not a valid key: use lower case letters, digits and `-`, \
             starting with a letter (e.g. `acme` or `acme-audit`)"
        );
    }
    if project.dir.exists() {
        bail!(
            "{} already exists; choose another NAME or --dir",
            project.dir.display()
        );
    }
    let sdk = std::fs::canonicalize(&project.rust_sdk).unwrap_or(project.rust_sdk.clone());
    // Python components carry an interpreter: more memory and CPU per call.
    let (files, memory, cpu) = match project.lang {
        Lang::Rust => (RUST, "64", "5000"),
        Lang::Python => (PYTHON, "128", "10000"),
    };
    let vars = [
        ("{{name}}", name.as_str()),
        ("{{crate}}", &name.replace('-', "_")),
        ("{{sdk_path}}", &sdk.display().to_string()),
        ("{{memory_mib}}", memory),
        ("{{cpu_ms}}", cpu),
    ];
    let mut written = Vec::new();
    for (path, text) in COMMON.iter().chain(files) {
        let mut text = text.to_string();
        if !VERBATIM.iter().any(|v| path.starts_with(v)) {
            for (from, to) in &vars {
                text = text.replace(from, to);
            }
        }
        let out = project.dir.join(path);
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
        written.push(out);
    }
    Ok(written)
}

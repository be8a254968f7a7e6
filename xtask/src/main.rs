//! Project automation.
//!
//! - `cargo xtask test [CARGO TEST ARGS…]`: sets up the tools the test
//!   suite needs (`tools/`, one module per tool), then runs
//!   `cargo test --workspace` with their paths in the environment (see
//!   `test.rs`).
//! - `cargo xtask bench [--write] [--events N] [--only GROUP,…]`:
//!
//! Builds what the benchmarks need in release (the `ward` binary with and
//! without the demo's stand-ins, `ward-bench`), creates a Python venv with
//! `airbyte-source-okta` under `target/bench/` for the ingestion baseline,
//! runs every figure group of `ward-bench` once, prints the markdown table
//! and, with `--write`, replaces the table in BENCHMARKS.md. It asserts
//! nothing about time and is not part of `cargo test`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};
use serde::Deserialize;

mod table;
mod test;
mod tools;

/// `airbyte-source-okta` release the baseline runs.
const AIRBYTE_OKTA: &str = "airbyte-source-okta==0.3.26";
/// Every figure group of `ward-bench`, in the order they run.
const GROUPS: &[&str] = &[
    "startup", "calls", "scrub", "parse", "sinks", "store", "ingest", "scale", "python",
];

/// One figure as `ward-bench` prints it.
#[derive(Debug, Clone, Deserialize)]
pub struct Figure {
    figure: String,
    value: String,
    baseline: String,
    ratio: String,
    note: String,
    #[serde(skip)]
    command: String,
}

struct Options {
    write: bool,
    events: usize,
    only: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("bench") => {}
        Some("test") => return test::run(&workspace_root()?, args.collect()),
        other => bail!(
            "unknown task {other:?}: the tasks are `cargo xtask test [CARGO TEST ARGS…]` and \
             `cargo xtask bench [--write] [--events N] [--only GROUP,…]`"
        ),
    }
    let mut options = Options {
        write: false,
        events: 100_000,
        only: GROUPS.iter().map(|g| g.to_string()).collect(),
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--write" => options.write = true,
            "--events" => {
                options.events = args
                    .next()
                    .context("--events needs a number")?
                    .parse()
                    .context("--events needs a number")?;
            }
            "--only" => {
                let list = args.next().context("--only needs a list of groups")?;
                options.only = list.split(',').map(str::to_string).collect();
                if let Some(bad) = options.only.iter().find(|g| !GROUPS.contains(&g.as_str())) {
                    bail!(
                        "unknown group `{bad}`: the groups are {}",
                        GROUPS.join(", ")
                    );
                }
            }
            other => bail!("unknown argument `{other}` (use --write, --events N, --only GROUP,…)"),
        }
    }
    bench(&options)
}

/// The workspace root (xtask's parent directory).
fn workspace_root() -> anyhow::Result<PathBuf> {
    Ok(Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has no parent directory")?
        .to_path_buf())
}

/// `$CARGO_TARGET_DIR`, or `target/` in the workspace.
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn bench(options: &Options) -> anyhow::Result<()> {
    let root = workspace_root()?;
    let target = target_dir(&root);
    let work = target.join("bench");
    std::fs::create_dir_all(&work)?;
    let load_before = load_average();

    // The shipped binary is the one without stand-ins; the default build
    // (what `cargo run -p ward -- demo` uses) is built only to report its size.
    cargo(&root, &["build", "--release", "-p", "ward"])?;
    let release = target.join("release");
    let with_standins = size_mib(&release.join("ward"))?;
    cargo(
        &root,
        &["build", "--release", "-p", "ward", "--no-default-features"],
    )?;
    let ward = work.join("ward");
    std::fs::copy(release.join("ward"), &ward).context("copying the release ward binary")?;
    let without_standins = size_mib(&ward)?;
    cargo(&root, &["build", "--release", "-p", "ward-bench"])?;
    let bench_bin = release.join("ward-bench");

    let mut figures = vec![Figure {
        figure: "release binary size".into(),
        value: format!("{without_standins:.1} MiB without stand-ins"),
        baseline: format!("{with_standins:.1} MiB with (default features, for `ward demo`)"),
        ratio: "—".into(),
        note: "`[profile.release]` debug = false, strip = \"debuginfo\" (symbols kept); `--no-default-features` leaves out tests/standins".into(),
        command: "cargo build --release -p ward --no-default-features".into(),
    }];
    let python = if options.only.iter().any(|g| g == "ingest") {
        match airbyte_venv(&work) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("xtask: Airbyte baseline unavailable: {e:#}");
                None
            }
        }
    } else {
        None
    };
    // The Python group builds examples/python-okta-lite with the pinned
    // componentize-py the tests use (installed under target/tools once).
    for group in GROUPS
        .iter()
        .filter(|g| options.only.iter().any(|o| o == *g))
    {
        let mut args = vec![group.to_string()];
        if matches!(*group, "ingest" | "startup" | "store" | "scale" | "python") {
            args.extend(["--ward".into(), ward.display().to_string()]);
        }
        if *group == "ingest" {
            args.extend(["--events".into(), options.events.to_string()]);
            if let Some(python) = &python {
                args.extend(["--python".into(), python.display().to_string()]);
            }
        }
        let command = format!("cargo xtask bench --only {group}");
        eprintln!("xtask: ward-bench {}", args.join(" "));
        // The `store` group needs a PostgreSQL server: the tests' throwaway
        // cluster, stopped when `tools` is dropped after the group. The
        // `python` group builds examples/python-okta-lite with the pinned
        // componentize-py the tests use (installed under target/tools once).
        let tools = tools::Context::new(&target)?;
        let env = match *group {
            "store" => tools::postgres::setup(&tools)?,
            "python" => tools::componentize_py::setup(&tools)?,
            _ => Vec::new(),
        };
        match run_group(&bench_bin, &args, &env) {
            Ok(found) => figures.extend(found.into_iter().map(|f| Figure {
                command: command.clone(),
                ..f
            })),
            Err(e) => figures.push(Figure {
                figure: format!("group `{group}`"),
                value: "failed".into(),
                baseline: "—".into(),
                ratio: "—".into(),
                note: format!("{e:#}"),
                command,
            }),
        }
    }
    let machine = table::Machine::here(load_before, load_average())?;
    let text = table::render(&machine, &figures);
    println!("{text}");
    if options.write {
        let path = root.join("BENCHMARKS.md");
        table::replace_in(&path, &text)?;
        eprintln!("xtask: wrote the table into {}", path.display());
    }
    Ok(())
}

/// `nice cargo ARGS` in the workspace (the machine is shared).
fn cargo(root: &Path, args: &[&str]) -> anyhow::Result<()> {
    // The rustup proxy from PATH, not $CARGO: it honours the workspace's
    // rust-toolchain.toml, so release builds use the pinned compiler.
    let cargo = "cargo";
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new("nice")
        .arg(cargo)
        .args(args)
        .current_dir(root)
        .status()
        .with_context(|| format!("running {cargo} {}", args.join(" ")))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn run_group(bench: &Path, args: &[String], env: &[tools::Export]) -> anyhow::Result<Vec<Figure>> {
    let out = Command::new(bench)
        .args(args)
        .envs(env.iter().map(|e| (e.name, &e.value)))
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", bench.display()))?;
    let figures = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(serde_json::from_str::<Figure>)
        .collect::<Result<Vec<_>, _>>()
        .context("ward-bench printed a line that is not a figure")?;
    if !out.status.success() {
        bail!(
            "ward-bench {} failed ({}) after {} figures; its error is above",
            args.join(" "),
            out.status,
            figures.len()
        );
    }
    Ok(figures)
}

/// The venv's python, with `airbyte-source-okta` installed (once).
fn airbyte_venv(work: &Path) -> anyhow::Result<PathBuf> {
    let venv = tools::python::venv(&work.join("airbyte-venv"), &[AIRBYTE_OKTA])?;
    Ok(venv.join("bin").join("python"))
}

fn size_mib(path: &Path) -> anyhow::Result<f64> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading the size of {}", path.display()))?
        .len();
    Ok(len as f64 / (1024.0 * 1024.0))
}

/// The 1-, 5- and 15-minute load averages (`/proc/loadavg`).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

//! A connector written in Python (#10): `examples/python-okta-lite` built
//! with componentize-py (the pinned release `cargo xtask bench` installs),
//! packed with its `ward.toml`, against the Rust Okta connector as the
//! baseline: component size, compile time without a cache, start from the
//! compile cache, and `ward plugin inspect`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::figure::{Figure, cpu_time, median};
use crate::runtime::runtime;

/// Samples per timed figure (each a fresh runtime or process).
const SAMPLES: usize = 5;

/// One plugin's figures.
struct Measured {
    size: usize,
    compile: Duration,
    compile_cpu: Duration,
    cached: Duration,
    inspect: Duration,
}

/// Prints the Python figures. `ward` is the release binary (`ward plugin
/// inspect` is timed as an operator runs it).
pub async fn run(ward: &Path) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let example = ward_tests::python::repo_root().join("examples/python-okta-lite");
    let t = Instant::now();
    let bare = ward_tests::python::build(&example, "app", work.path())
        .context("building examples/python-okta-lite with componentize-py")?;
    let build = t.elapsed();
    let manifest = std::fs::read_to_string(example.join("ward.toml"))
        .context("reading examples/python-okta-lite/ward.toml")?;
    let packed = ward_runtime::pack::pack(&bare, &manifest)
        .context("packing examples/python-okta-lite with its ward.toml")?;
    let okta = ward_daemon::bundled::get("okta").context("no bundled Okta connector")?;

    let python = measure(ward, work.path(), "okta-lite", &packed)?;
    let rust = measure(ward, work.path(), "okta", okta)?;

    let kib = |n: usize| n as f64 / 1024.0;
    Figure {
        figure: "python: component size (okta-lite, packed)".into(),
        value: format!("{:.1} MiB", kib(python.size) / 1024.0),
        baseline: format!("{:.0} KiB Rust okta connector", kib(rust.size)),
        ratio: crate::figure::ratio(rust.size as f64, python.size as f64),
        note: format!(
            "examples/python-okta-lite + sdk/python built by componentize-py 0.25.1 (world `plugin`, wit/v0.2) in {:.1} s, packed with its ward.toml; the size is CPython and its standard library; ratio < 1: the Python component is that much larger",
            build.as_secs_f64()
        ),
    }
    .emit()?;
    Figure {
        figure: "python: compile (no cache)".into(),
        value: format!("{} ms", python.compile.as_millis()),
        baseline: format!("{} ms Rust okta connector", rust.compile.as_millis()),
        ratio: crate::figure::ratio(rust.compile.as_secs_f64(), python.compile.as_secs_f64()),
        note: format!(
            "`Runtime::load` without a cache (Cranelift, parallel compilation), median of {SAMPLES} fresh runtimes: {} ms CPU (Rust: {} ms CPU)",
            python.compile_cpu.as_millis(),
            rust.compile_cpu.as_millis()
        ),
    }
    .emit()?;
    Figure {
        figure: "python: cached start (load from the compile cache)".into(),
        value: format!("{:.1} ms", python.cached.as_secs_f64() * 1e3),
        baseline: format!(
            "{:.1} ms Rust okta connector",
            rust.cached.as_secs_f64() * 1e3
        ),
        ratio: crate::figure::ratio(rust.cached.as_secs_f64(), python.cached.as_secs_f64()),
        note: format!(
            "`Runtime::load` in a fresh runtime whose compile cache already holds the component (what a daemon restart does per plugin), median of {SAMPLES}"
        ),
    }
    .emit()?;
    Figure {
        figure: "python: `ward plugin inspect`".into(),
        value: format!("{} ms", python.inspect.as_millis()),
        baseline: format!("{} ms Rust okta connector", rust.inspect.as_millis()),
        ratio: crate::figure::ratio(rust.inspect.as_secs_f64(), python.inspect.as_secs_f64()),
        note: format!(
            "release `ward plugin inspect FILE --json` as a process (parses the manifest and imports, compiles nothing), wall clock, median of {SAMPLES}; goal < 1 s (#10)"
        ),
    }
    .emit()?;
    Ok(())
}

fn measure(ward: &Path, work: &Path, key: &str, bytes: &[u8]) -> anyhow::Result<Measured> {
    let mut compile = Vec::with_capacity(SAMPLES);
    let mut compile_cpu = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let uncached = runtime(None, None)?;
        let (wall0, cpu0) = (Instant::now(), cpu_time(None)?);
        uncached
            .load(bytes)
            .map_err(|e| anyhow::anyhow!("compiling `{key}`: {e}"))?;
        compile.push(wall0.elapsed());
        compile_cpu.push(cpu_time(None)? - cpu0);
    }

    let cache = work.join(format!("cache-{key}"));
    runtime(Some(&cache), None)?
        .load(bytes)
        .map_err(|e| anyhow::anyhow!("filling the compile cache with `{key}`: {e}"))?;
    let mut cached = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let warm = runtime(Some(&cache), None)?;
        let t = Instant::now();
        warm.load(bytes)
            .map_err(|e| anyhow::anyhow!("loading `{key}` from the compile cache: {e}"))?;
        cached.push(t.elapsed());
    }

    let file = work.join(format!("{key}.wasm"));
    std::fs::write(&file, bytes).with_context(|| format!("writing {}", file.display()))?;
    let mut inspect = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let t = Instant::now();
        let out = Command::new(ward)
            .args(["plugin", "inspect", "--json"])
            .arg(&file)
            .output()
            .with_context(|| format!("running {} plugin inspect", ward.display()))?;
        inspect.push(t.elapsed());
        if !out.status.success() {
            bail!(
                "`ward plugin inspect {}` failed ({}): {}",
                file.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(Measured {
        size: bytes.len(),
        compile: median(&mut compile),
        compile_cpu: median(&mut compile_cpu),
        cached: median(&mut cached),
        inspect: median(&mut inspect),
    })
}

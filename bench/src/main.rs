//! `ward-bench`: measures one group of Ward's performance figures and
//! prints each as a JSON line (see [`figure::Figure`]). Run by `cargo xtask
//! bench`, which builds it in release, runs every group and writes the
//! table in BENCHMARKS.md. Nothing here asserts on time.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod calls;
mod daemon;
mod figure;
mod guest_host;
mod ingest;
mod parse;
mod python;
mod runtime;
mod scale;
mod scrub;
mod sinks;
mod standin;
mod startup;
mod store;

#[derive(Parser)]
#[command(about = "Ward's benchmark figures (driven by `cargo xtask bench`)")]
struct Cli {
    #[command(subcommand)]
    group: Group,
}

#[derive(Subcommand)]
enum Group {
    /// A release `ward serve` backfills an Okta stand-in; baseline
    /// airbyte-source-okta on the same stand-in.
    Ingest {
        /// The `ward` binary to run.
        #[arg(long)]
        ward: PathBuf,
        /// Python of a venv holding airbyte-source-okta (baseline).
        #[arg(long)]
        python: Option<PathBuf>,
        /// System Log events in the stand-in.
        #[arg(long, default_value_t = 100_000)]
        events: usize,
    },
    /// Instantiate + no-op call + teardown through `Bound`.
    Calls,
    /// Response scrubbing on a 1,000-event page.
    Scrub,
    /// Plugin compile times and `ward serve` start-up.
    Startup {
        /// The `ward` binary to run.
        #[arg(long)]
        ward: PathBuf,
    },
    /// Events/s through the OCSF mapping and an HTTP sink, against plain
    /// store reads.
    Sinks,
    /// Events/s committed into SQLite vs PostgreSQL; lease takeover after
    /// `kill -9` (needs `WARD_TEST_POSTGRES_URL`).
    Store {
        /// The `ward` binary to run.
        #[arg(long)]
        ward: PathBuf,
    },
    /// `examples/python-okta-lite` built with componentize-py against the
    /// Rust Okta connector: size, compile, cached start, inspect. Needs
    /// `WARD_COMPONENTIZE_PY` (set by `cargo xtask bench`).
    Python {
        /// The `ward` binary (for `ward plugin inspect`).
        #[arg(long)]
        ward: PathBuf,
    },
    /// The Okta connector's page parser natively vs. in wasm.
    Parse,
    /// One `ward serve` with 1,000 Okta instances on 1,000 tenant hosts:
    /// peak RSS during their backfills, RSS idle, memory per instance.
    Scale {
        /// The `ward` binary to run.
        #[arg(long)]
        ward: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().group {
        Group::Ingest {
            ward,
            python,
            events,
        } => ingest::run(&ward, python.as_deref(), events).await,
        Group::Calls => calls::run().await,
        Group::Scrub => scrub::run().await,
        Group::Sinks => sinks::run().await,
        Group::Startup { ward } => startup::run(&ward).await,
        Group::Store { ward } => store::run(&ward).await,
        Group::Python { ward } => python::run(&ward).await,
        Group::Parse => parse::run().await,
        Group::Scale { ward } => scale::run(&ward).await,
    }
}

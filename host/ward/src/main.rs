//! The `ward` command.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ward", version, about = "Sandboxed SaaS audit connectors")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: REST API, scheduler, store.
    Serve {
        /// Configuration file (TOML); without it every default applies.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Run the bundled connectors against local provider stand-ins on the
    /// embedded store: connect, test, backfill, then poll.
    Demo {
        /// Backfill, print `events: N, users: M` and exit.
        #[arg(long)]
        once: bool,
        /// Events the Okta stand-in starts with.
        #[arg(long, default_value_t = 25_000)]
        events: usize,
        /// Users the Okta stand-in starts with.
        #[arg(long, default_value_t = 150)]
        users: usize,
        /// Directory for the database, master key and compile cache.
        #[arg(long, default_value = "ward-demo-data")]
        data_dir: PathBuf,
        /// Seconds between polls.
        #[arg(long, default_value_t = 5)]
        poll_secs: u64,
        /// Address of the demo daemon's API.
        #[arg(long, default_value = "127.0.0.1:8420")]
        listen: std::net::SocketAddr,
    },
    /// Plugin files: keys, signatures, inspection, diffs, approvals.
    Plugin {
        #[command(subcommand)]
        command: ward::plugin_cli::PluginCommand,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve { config } => {
            let config = match config {
                Some(path) => ward_daemon::Config::load(&path)?,
                None => ward_daemon::Config::default(),
            };
            ward::serve::run(config).await?;
        }
        Command::Demo {
            once,
            events,
            users,
            data_dir,
            poll_secs,
            listen,
        } => {
            ward::demo::run(ward::demo::DemoOptions {
                once,
                events,
                users,
                data_dir,
                poll_secs,
                listen,
            })
            .await?;
        }
        Command::Plugin { command } => {
            let code = ward::plugin_cli::run(command).await?;
            if code != 0 {
                std::process::exit(code);
            }
        }
    }
    Ok(())
}

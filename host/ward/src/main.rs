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
        /// Load plugins without trusted signatures (development only; said
        /// loudly at start-up and in /healthz).
        #[arg(long)]
        dev: bool,
    },
    /// Run the bundled connectors against local provider stand-ins on the
    /// embedded store: connect, test, backfill, then poll.
    Demo {
        /// Backfill, print each provider's and the total `events: N, users: M`, and exit.
        #[arg(long)]
        once: bool,
        /// Events each stand-in starts with (Okta over 45 days, Zendesk and
        /// Egnyte within their 7-day backfill window).
        #[arg(long, default_value_t = 12_000)]
        events: usize,
        /// Users each stand-in starts with.
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
    /// Manage instances through a running daemon's API.
    Instances {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: InstancesCommand,
    },
    /// Print an instance's events through a running daemon's API.
    Events {
        #[command(flatten)]
        api: ApiArgs,
        /// Instance id.
        #[arg(long)]
        instance: String,
        /// How many recent events to print first.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Keep printing new events as they are stored.
        #[arg(long)]
        follow: bool,
    },
}

/// Where the daemon's API is and where its secrets file lives.
#[derive(clap::Args)]
struct ApiArgs {
    /// The daemon's API URL.
    #[arg(long, env = "WARD_URL", default_value = "http://127.0.0.1:8420")]
    url: String,
    /// The daemon's data directory (for api-secrets.toml).
    #[arg(long, default_value = "ward-data")]
    data_dir: PathBuf,
}

/// Credentials for create and reconnect.
#[derive(clap::Args)]
struct ProviderFlags {
    /// API token (token-auth elements); also read from WARD_API_TOKEN.
    #[arg(long, env = "WARD_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// OAuth code returned by /oauth/callback.
    #[arg(long)]
    code: Option<String>,
    /// OAuth state returned by /oauth/callback.
    #[arg(long)]
    state: Option<String>,
    /// Basic-auth user name.
    #[arg(long)]
    username: Option<String>,
    /// Basic-auth password; also read from WARD_PASSWORD.
    #[arg(long, env = "WARD_PASSWORD", hide_env_values = true)]
    password: Option<String>,
}

impl ProviderFlags {
    fn into_args(self) -> ward::client::ProviderArgs {
        ward::client::ProviderArgs {
            api_token: self.api_token,
            code: self.code,
            state: self.state,
            username: self.username,
            password: self.password,
        }
    }
}

#[derive(Subcommand)]
enum InstancesCommand {
    /// List instances with their status.
    List,
    /// Connect a new instance.
    Create {
        /// Element (plugin) key, e.g. okta.
        #[arg(long)]
        element: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Configuration field, `name=value` (repeatable).
        #[arg(long = "config", value_parser = parse_kv)]
        config: Vec<(String, String)>,
        /// Tag (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[command(flatten)]
        provider: ProviderFlags,
    },
    /// Test now: run the element's checks.
    Test {
        /// Instance id.
        id: String,
    },
    /// Replace an instance's credentials (cursors kept).
    Reconnect {
        /// Instance id.
        id: String,
        #[command(flatten)]
        provider: ProviderFlags,
    },
    /// Delete an instance and its data.
    Delete {
        /// Instance id.
        id: String,
    },
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected name=value, got {s:?}"))
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
        Command::Serve { config, dev } => {
            let mut config = match config {
                Some(path) => ward_daemon::Config::load(&path)?,
                None => ward_daemon::Config::default(),
            };
            config.dev = dev;
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
        Command::Instances { api, command } => {
            let client = ward::client::Client::new(&api.url, &api.data_dir)?;
            match command {
                InstancesCommand::List => {
                    client.list().await?;
                }
                InstancesCommand::Create {
                    element,
                    name,
                    config,
                    tags,
                    provider,
                } => {
                    client
                        .create(
                            &element,
                            name.as_deref(),
                            config.into_iter().collect(),
                            tags,
                            &provider.into_args(),
                        )
                        .await?;
                }
                InstancesCommand::Test { id } => {
                    if !client.test(&id).await? {
                        std::process::exit(1);
                    }
                }
                InstancesCommand::Reconnect { id, provider } => {
                    client.reconnect(&id, &provider.into_args()).await?
                }
                InstancesCommand::Delete { id } => client.delete(&id).await?,
            }
        }
        Command::Events {
            api,
            instance,
            limit,
            follow,
        } => {
            let client = ward::client::Client::new(&api.url, &api.data_dir)?;
            client.events(&instance, limit, follow).await?;
        }
    }
    Ok(())
}

//! The `ward` command.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "ward", version, about = "Sandboxed SaaS audit connectors")]
struct Cli {
    /// Log format on stderr: `text` (coloured only on a terminal) or `json`
    /// (one object a line, for collectors). Levels: WARD_LOG or RUST_LOG
    /// (e.g. `info`, `ward_daemon=debug`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
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
    /// Store maintenance: `ward store migrate --from sqlite://… --to postgres://…`.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Run the bundled connectors against local provider stand-ins on the
    /// embedded store: connect, test, backfill, then poll.
    #[cfg(feature = "standins")]
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
    /// Installed elements (connectors) of a running daemon.
    Elements {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: ElementsCommand,
    },
    /// Connect a provider through a running daemon: with --api-token
    /// directly, with --api-key through the provider's OAuth consent. Prints
    /// the Test now checks; exits 1 unless the instance is connected.
    Connect {
        #[command(flatten)]
        api: ApiArgs,
        /// Element key, e.g. okta, zendesk, egnyte.
        key: String,
        #[command(flatten)]
        new: NewInstanceArgs,
        /// API token (token-auth elements); also read from WARD_API_TOKEN.
        #[arg(
            long,
            env = "WARD_API_TOKEN",
            hide_env_values = true,
            conflicts_with = "api_key"
        )]
        api_token: Option<String>,
        /// OAuth client id registered with the provider.
        #[arg(long)]
        api_key: Option<String>,
        /// OAuth client secret; also read from WARD_API_SECRET.
        #[arg(long, env = "WARD_API_SECRET", hide_env_values = true)]
        api_secret: Option<String>,
        /// Redirect URI registered with the provider (default: the daemon's
        /// `<api.public_url>/oauth/callback`).
        #[arg(long)]
        callback_url: Option<String>,
        /// Also open the consent URL in the desktop's browser.
        #[arg(long)]
        open: bool,
        /// Read the callback's answer (or the callback URL) from stdin
        /// instead of waiting for the daemon to receive it (for a redirect
        /// URI that is not Ward's callback).
        #[arg(long)]
        paste: bool,
    },
    /// Print a shell completion script: `ward completions bash > /etc/bash_completion.d/ward`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print an instance's events through a running daemon's API, or
    /// `ward events export` them as NDJSON.
    #[command(args_conflicts_with_subcommands = true)]
    Events {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: Option<EventsCommand>,
        /// Instance id.
        #[arg(long)]
        instance: Option<String>,
        /// How many recent events to print first.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Keep printing new events as they are stored.
        #[arg(long)]
        follow: bool,
    },
    /// Event delivery to SIEMs and files (`[[sinks]]` in ward.toml).
    Sinks {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: SinksCommand,
    },
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Stream stored events to stdout as NDJSON (OCSF or Ward JSON), in
    /// ingestion order, through the daemon's API.
    Export {
        /// Only this instance (default: every instance).
        #[arg(long)]
        instance: Option<String>,
        /// Only events at or after this time: RFC 3339, ms since the
        /// epoch, or an age such as 30m, 24h, 7d.
        #[arg(long)]
        since: Option<String>,
        /// ocsf (default) or ward.
        #[arg(long, default_value = "ocsf")]
        format: String,
    },
}

#[derive(Subcommand)]
enum SinksCommand {
    /// Every sink: state, delivered, lag, last error.
    List,
    /// Store a sink secret (e.g. the Splunk HEC token) read from stdin.
    Secret {
        /// The name a sink's `secret = "NAME"` refers to.
        name: String,
    },
    /// Take a sink out of dead-letter: it retries the refused batch.
    Resume {
        /// Sink name.
        name: String,
    },
}

/// Where the daemon's API is and where its secrets file lives (accepted
/// before or after the subcommand: `ward instances list --url …`).
#[derive(clap::Args)]
struct ApiArgs {
    /// The daemon's API URL (API client commands).
    #[arg(
        long,
        global = true,
        env = "WARD_URL",
        default_value = "http://127.0.0.1:8420"
    )]
    url: String,
    /// The daemon's data directory, where `ward serve` wrote api-secrets.toml
    /// (API client commands).
    #[arg(
        long = "data-dir",
        global = true,
        env = "WARD_DATA_DIR",
        default_value = "ward-data"
    )]
    api_data_dir: PathBuf,
}

/// What a new instance is called and configured with (create, connect).
#[derive(clap::Args)]
struct NewInstanceArgs {
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    /// Configuration field, `name=value` (repeatable), e.g. domain=acme.
    #[arg(long = "config", value_parser = parse_kv)]
    config: Vec<(String, String)>,
    /// Tag (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
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
enum StoreCommand {
    /// Copy every instance, credential (still sealed: the daemons on the
    /// destination need the same master key), cursor, event, user, egress
    /// record, API token, OAuth state and approval into another store.
    /// Idempotent and resumable: run it again after an interruption, or
    /// once the source's daemon is stopped, to copy what is missing. Counts
    /// are verified per table at the end.
    Migrate {
        /// The store to copy from, e.g. sqlite:///var/lib/ward/ward.db.
        #[arg(long)]
        from: String,
        /// The store to copy into, e.g. postgres://ward:…@db:5432/ward.
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand)]
enum ElementsCommand {
    /// Installed elements and versions held for approval.
    List,
    /// One element: how to connect it, its manifest and permissions.
    Show {
        /// Element key or digest.
        key: String,
    },
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
        #[command(flatten)]
        new: NewInstanceArgs,
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

/// Hands `url` to the desktop's opener (`xdg-open`, `open` on macOS); the
/// URL is printed either way, so a failure only says so.
fn open_in_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    if let Err(e) = std::process::Command::new(opener).arg(url).spawn() {
        eprintln!("could not run {opener} ({e}); open the URL above by hand");
    }
}

/// Logs to stderr: levels from WARD_LOG, else RUST_LOG, else `default`.
fn init_logging(format: LogFormat, default: &str) {
    use std::io::IsTerminal;
    let filter = ["WARD_LOG", "RUST_LOG"]
        .iter()
        .find_map(|v| tracing_subscriber::EnvFilter::try_from_env(v).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().with_ansi(false).init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// What the daemon logs without WARD_LOG/RUST_LOG: its own start-up,
/// syncs, waits and shutdown at info, everything else from warnings up.
const SERVE_LOG: &str =
    "warn,ward=info,ward_daemon=info,ward_api=info,ward_runtime=info,ward_store=info";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let default_log = match cli.command {
        Command::Serve { .. } => SERVE_LOG,
        _ => "warn",
    };
    init_logging(cli.log_format, default_log);
    match cli.command {
        Command::Serve { config, dev } => {
            let mut config = match config {
                Some(path) => ward_daemon::Config::load(&path)?,
                None => ward_daemon::Config::default(),
            };
            config.dev = dev;
            ward::serve::run(config).await?;
        }
        #[cfg(feature = "standins")]
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
            let client = ward::client::Client::new(&api.url, &api.api_data_dir)?;
            match command {
                InstancesCommand::List => {
                    client.list().await?;
                }
                InstancesCommand::Create {
                    element,
                    new,
                    provider,
                } => {
                    let created = client
                        .create(
                            &element,
                            new.name.as_deref(),
                            new.config.into_iter().collect(),
                            new.tags,
                            &provider.into_args(),
                        )
                        .await?;
                    if !ward::client::created_ok(&created) {
                        std::process::exit(1);
                    }
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
        Command::Elements { api, command } => {
            let client = ward::client::Client::new(&api.url, &api.api_data_dir)?;
            match command {
                ElementsCommand::List => {
                    client.elements().await?;
                }
                ElementsCommand::Show { key } => {
                    client.element(&key).await?;
                }
            }
        }
        Command::Connect {
            api,
            key,
            new,
            api_token,
            api_key,
            api_secret,
            callback_url,
            open,
            paste,
        } => {
            let client = ward::client::Client::new(&api.url, &api.api_data_dir)?;
            let config: std::collections::BTreeMap<String, String> =
                new.config.into_iter().collect();
            let provider = match (api_token, api_key) {
                (Some(token), _) => ward::client::ProviderArgs {
                    api_token: Some(token),
                    ..Default::default()
                },
                (None, Some(client_id)) => {
                    let consent = client
                        .oauth_url(
                            &key,
                            &client_id,
                            api_secret.as_deref(),
                            callback_url.as_deref(),
                            &config,
                        )
                        .await?;
                    println!(
                        "Open this URL in a browser and give consent as an administrator:\n\n  {consent}\n"
                    );
                    if open {
                        open_in_browser(&consent);
                    }
                    let (code, state) = if paste {
                        println!(
                            "Paste the callback's answer {{\"element\", \"code\", \"state\"}} (or the callback URL from the address bar) here and press Enter:"
                        );
                        let mut line = String::new();
                        std::io::stdin().read_line(&mut line)?;
                        ward::client::parse_callback(&line)?
                    } else {
                        println!("Waiting for the provider to send the browser back to Ward…");
                        client
                            .await_consent(&consent, std::time::Duration::from_secs(1))
                            .await?
                    };
                    ward::client::ProviderArgs {
                        code: Some(code),
                        state: Some(state),
                        ..Default::default()
                    }
                }
                (None, None) => anyhow::bail!(
                    "give --api-token (token-auth elements) or --api-key and --api-secret (OAuth); \
                     `ward elements show {key}` says which the element takes"
                ),
            };
            let created = client
                .create(&key, new.name.as_deref(), config, new.tags, &provider)
                .await?;
            if !ward::client::created_ok(&created) {
                std::process::exit(1);
            }
        }
        Command::Store {
            command: StoreCommand::Migrate { from, to },
        } => {
            let report = ward_store::migrate::copy(&from, &to, |table, read| {
                tracing::info!(table, read, "copying");
            })
            .await?;
            print!("{report}");
            println!(
                "copied {} new rows from {} to {}; every table's count matches",
                report.inserted(),
                ward_store::redact_url(&from),
                ward_store::redact_url(&to)
            );
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "ward", &mut std::io::stdout());
        }
        Command::Events {
            api,
            command,
            instance,
            limit,
            follow,
        } => {
            let client = ward::client::Client::new(&api.url, &api.api_data_dir)?;
            match command {
                Some(EventsCommand::Export {
                    instance,
                    since,
                    format,
                }) => {
                    let n = client
                        .export(instance.as_deref(), since.as_deref(), &format)
                        .await?;
                    eprintln!("ward: exported {n} event(s)");
                }
                None => {
                    let instance = instance.ok_or_else(|| {
                        anyhow::anyhow!("give --instance ID, or use `ward events export`")
                    })?;
                    client.events(&instance, limit, follow).await?;
                }
            }
        }
        Command::Sinks { api, command } => {
            let client = ward::client::Client::new(&api.url, &api.api_data_dir)?;
            match command {
                SinksCommand::List => {
                    client.sinks().await?;
                }
                SinksCommand::Secret { name } => {
                    let mut value = String::new();
                    std::io::stdin().read_line(&mut value)?;
                    client
                        .sink_secret(&name, value.trim_end_matches(['\r', '\n']))
                        .await?;
                }
                SinksCommand::Resume { name } => client.resume_sink(&name).await?,
            }
        }
    }
    Ok(())
}

//! `ward plugin …`: the security team's tools for plugin files.
//!
//! - `new NAME [--lang rust|python]`: a connector project that builds and
//!   passes `ward plugin test` as generated (`crate::scaffold`).
//! - `keygen --out NAME`: a minisign key pair (`NAME.key`, `NAME.pub`).
//! - `sign --key NAME.key FILE`: writes `FILE.minisig`.
//! - `verify --pubkey KEY FILE`: checks `FILE.minisig`; exit status 1 if
//!   the file is unsigned, altered or signed by another key.
//! - `inspect FILE [--json]`: identity, signature, imports and permissions,
//!   requested and effective side by side (`FILE` may be `bundled:okta`).
//! - `pack --manifest ward.toml IN.wasm -o OUT.wasm`: embeds a validated
//!   manifest as a component-level section (components from any language).
//! - `test FILE --fixtures DIR [--json] [--junit FILE]`: the conformance
//!   harness (`ward_harness`); exit status 1 when a check fails.
//! - `record FILE --config k=v --token-env VAR --out DIR`: writes fixtures
//!   from a real endpoint, secrets replaced by references.
//! - `diff OLD NEW [--json]`: permission changes, widenings first.
//! - `approve KEY DIGEST --config ward.toml`: releases a held upgrade.
//!
//! The `--json` outputs are a stable interface (documented in the README):
//! fields are only ever added.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use serde::Serialize;
use ward_manifest::{Ceilings, Change, ChangeKind, Effective, Manifest, PluginPolicy};
use ward_trust::{SignatureStatus, TrustStore};

/// Version of the `inspect --json` document layout.
pub const INSPECT_SCHEMA: &str = "ward.plugin.inspect/v1";
/// Version of the `diff --json` document layout.
pub const DIFF_SCHEMA: &str = "ward.plugin.diff/v1";

/// `ward plugin` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create a connector project: manifest with comments, connector
    /// skeleton with TODOs, a fixtures folder with a recorded exchange and
    /// a README. It builds and passes `ward plugin test` as generated.
    New {
        /// Plugin key and folder name (lower case letters, digits, `-`).
        name: String,
        /// Language of the connector.
        #[arg(long, value_enum, default_value = "rust")]
        lang: crate::scaffold::Lang,
        /// Folder to create (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The Rust SDK (`plugins/sdk` of a Ward checkout) the Rust project
        /// depends on by path (default: the one this binary was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Create a minisign key pair for signing plugins: NAME.key (secret,
    /// mode 0600) and NAME.pub.
    Keygen {
        /// Path prefix of the two files.
        #[arg(long, default_value = "vendor")]
        out: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Sign a plugin file; writes FILE.minisig next to it.
    Sign {
        /// The secret key file from `ward plugin keygen` (or minisign -G
        /// without a password).
        #[arg(long)]
        key: PathBuf,
        /// The component file.
        file: PathBuf,
    },
    /// Verify FILE.minisig against a public key.
    Verify {
        /// Public key: the base64 line or a .pub file.
        #[arg(long)]
        pubkey: String,
        /// The component file.
        file: PathBuf,
    },
    /// Show what a plugin is and may do: requested and effective permissions.
    Inspect {
        /// The component file, or `bundled:KEY` for a connector built into
        /// this binary.
        file: String,
        /// Print the stable JSON document instead of a table.
        #[arg(long)]
        json: bool,
        /// Daemon configuration: its trusted keys decide the signature
        /// status and its `[policy.KEY]` the effective permissions.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Extra trusted public keys (base64 line or .pub file).
        #[arg(long)]
        pubkey: Vec<String>,
    },
    /// Permission changes between two versions of a plugin, widenings first.
    Diff {
        /// The old version (file or `bundled:KEY`).
        old: String,
        /// The new version.
        new: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Embed a manifest into a component built by any toolchain
    /// (componentize-py, jco, wasm-tools): validates ward.toml as the
    /// daemon does and writes it as a component-level `ward-manifest`
    /// section, replacing an earlier one. Same inputs, same bytes.
    Pack {
        /// The plugin manifest.
        #[arg(long, default_value = "ward.toml")]
        manifest: PathBuf,
        /// The component to pack.
        input: PathBuf,
        /// Where to write the packed component (may be INPUT).
        #[arg(short, long)]
        out: PathBuf,
    },
    /// The conformance harness: replay the recorded exchanges of a fixture
    /// folder (its harness.toml lists the scenarios) through the real
    /// broker and check the connector contract. Exit status 1 when a check
    /// fails.
    Test {
        /// The component file, or `bundled:KEY`.
        file: String,
        /// The fixture folder (harness.toml plus one folder per scenario).
        #[arg(long)]
        fixtures: PathBuf,
        /// Print the JSON report.
        #[arg(long)]
        json: bool,
        /// Also write a JUnit XML report there.
        #[arg(long)]
        junit: Option<PathBuf>,
    },
    /// Run a plugin against a real endpoint through the broker and write
    /// what it exchanged as a fixture folder, secret values replaced by
    /// their references (replay it with `ward plugin test`).
    Record {
        /// The component file, or `bundled:KEY`.
        file: String,
        /// Instance configuration, `name=value` (repeat).
        #[arg(long = "config", value_name = "NAME=VALUE")]
        config: Vec<String>,
        /// Environment variable holding the API token or access token.
        #[arg(long)]
        token_env: String,
        /// Secret name the token is bound as (default: the manifest's first
        /// auth's secret, e.g. `api_token`, or `access_token` for OAuth).
        #[arg(long)]
        secret: Option<String>,
        /// Backfill start, RFC 3339 (default: 7 days ago).
        #[arg(long)]
        since: Option<String>,
        /// The fixture folder to write.
        #[arg(long)]
        out: PathBuf,
        /// Scenario folder name inside it.
        #[arg(long, default_value = "recorded")]
        scenario: String,
        /// Send HOST to ADDR instead of resolving it (`HOST=IP:PORT`; for
        /// endpoints on a test network).
        #[arg(long, value_name = "HOST=ADDR")]
        resolve: Vec<String>,
        /// Extra CA certificate (PEM file) to trust for the endpoint.
        #[arg(long)]
        ca: Option<PathBuf>,
    },
    /// Approve a held plugin upgrade (one that asks for more permissions
    /// than the approved version). Works on the daemon's store; restart the
    /// daemon (or approve through the API) to load it.
    Approve {
        /// Plugin key.
        key: String,
        /// SHA-256 of the held file (`ward plugin inspect` shows it).
        digest: String,
        /// The daemon's configuration.
        #[arg(long, default_value = "ward.toml")]
        config: PathBuf,
    },
}

/// Everything `inspect --json` prints. Field list documented in the README.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// Always [`INSPECT_SCHEMA`].
    pub schema: &'static str,
    /// The path given (or `bundled:KEY`).
    pub file: String,
    /// SHA-256 of the file, hex.
    pub digest: String,
    /// File size.
    pub size_bytes: u64,
    /// Signature verdict.
    pub signature: SignatureStatus,
    /// Plugin key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Vendor.
    pub vendor: String,
    /// The WIT world the component implements (`None`: it exports no
    /// Ward contract).
    pub world: Option<String>,
    /// Every interface the component imports.
    pub imports: Vec<String>,
    /// The version of the `ward:connector/connector` interface the
    /// component exports (`0.1.0`); `null` when it exports none.
    pub contract_version: Option<String>,
    /// Imports Ward links but provides empty (filesystem without
    /// directories, sockets refused, no environment variables, empty stdin).
    pub empty_imports: Vec<String>,
    /// Requested and effective permissions.
    pub permissions: Effective,
}

/// What `diff --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    /// Always [`DIFF_SCHEMA`].
    pub schema: &'static str,
    /// Old key and version.
    pub old: String,
    /// New key and version.
    pub new: String,
    /// Whether anything widens (an upgrade would be held).
    pub widens: bool,
    /// Changes, widenings first.
    pub changes: Vec<Change>,
}

fn read_plugin(file: &str) -> anyhow::Result<Vec<u8>> {
    if let Some(key) = file.strip_prefix("bundled:") {
        return ward_daemon::bundled::get(key)
            .map(<[u8]>::to_vec)
            .with_context(|| format!("no bundled plugin `{key}`"));
    }
    std::fs::read(file).with_context(|| format!("reading plugin file {file}"))
}

fn read_key_arg(text: &str) -> anyhow::Result<String> {
    let path = Path::new(text);
    if path.exists() {
        return std::fs::read_to_string(path)
            .with_context(|| format!("reading public key {}", path.display()));
    }
    Ok(text.to_string())
}

fn signature_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".minisig");
    PathBuf::from(s)
}

fn manifest_of(bytes: &[u8]) -> anyhow::Result<Manifest> {
    let section = ward_runtime::read_manifest_section(bytes)?;
    Ok(Manifest::from_section(&section)?)
}

/// Builds the `inspect` document with the default daemon ceilings.
/// `trusted` are public keys; `policies` the operator's policies by key.
pub fn inspect(
    file: &str,
    bytes: &[u8],
    trusted: &[String],
    policies: &BTreeMap<String, PluginPolicy>,
) -> anyhow::Result<Inspection> {
    inspect_with(file, bytes, trusted, policies, Ceilings::default())
}

/// Builds the `inspect` document under the daemon's `ceilings` (`[limits]`
/// of its configuration).
pub fn inspect_with(
    file: &str,
    bytes: &[u8],
    trusted: &[String],
    policies: &BTreeMap<String, PluginPolicy>,
    ceilings: Ceilings,
) -> anyhow::Result<Inspection> {
    // Parse only: nothing is compiled, whatever the component's size.
    let info = ward_runtime::introspect::introspect(bytes)?;
    let manifest = manifest_of(bytes)?;
    if let Some(interface) = info.unsupported_imports.first() {
        return Err(ward_runtime::RuntimeError::UnsupportedImport {
            plugin: manifest.key.clone(),
            interface: interface.clone(),
        }
        .into());
    }
    let policy = PluginPolicy {
        ceilings,
        ..policies.get(&manifest.key).cloned().unwrap_or_default()
    };
    let exchange = info.exchange_export();
    let world = info.world();
    let signature = if file.starts_with("bundled:") {
        SignatureStatus::Bundled
    } else {
        let sig = std::fs::read_to_string(signature_path(Path::new(file))).ok();
        TrustStore::new(trusted)?.verify(bytes, sig.as_deref())
    };
    Ok(Inspection {
        schema: INSPECT_SCHEMA,
        file: file.to_string(),
        digest: info.digest,
        size_bytes: bytes.len() as u64,
        signature,
        key: manifest.key.clone(),
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        vendor: manifest.vendor.clone(),
        world,
        imports: info.imports,
        contract_version: info.contract_version,
        empty_imports: info.empty_imports,
        permissions: ward_manifest::effective_for(&manifest, &policy, exchange),
    })
}

/// Builds the `diff` document.
pub fn diff(old: &[u8], new: &[u8]) -> anyhow::Result<DiffReport> {
    let (old, new) = (manifest_of(old)?, manifest_of(new)?);
    let changes = ward_manifest::diff(&old, &new);
    Ok(DiffReport {
        schema: DIFF_SCHEMA,
        old: format!("{} {}", old.key, old.version),
        new: format!("{} {}", new.key, new.version),
        widens: changes.iter().any(|c| c.kind == ChangeKind::Widening),
        changes,
    })
}

/// The human-readable `inspect` report: risks and warnings first, then
/// identity, grants, config fields, secrets and limits.
pub fn render_inspection(i: &Inspection) -> String {
    let mut out = String::new();
    macro_rules! say {
        ($($arg:tt)*) => {{
            out.push_str(&format!($($arg)*));
            out.push('\n');
        }};
    }
    let p = &i.permissions;
    say!("{} {} ({}) by {}", i.key, i.version, i.name, i.vendor);
    say!("\nRisks (read these first):");
    if p.risks.is_empty() {
        say!("  none");
    }
    for r in &p.risks {
        say!(
            "  [{}] {}: {}",
            serde_json::to_value(r.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            r.subject,
            r.detail
        );
    }
    for w in &p.warnings {
        say!("  warning: {w}");
    }
    say!("");
    say!("  file       {} ({} bytes)", i.file, i.size_bytes);
    say!("  sha256     {}", i.digest);
    say!("  signature  {}", i.signature);
    say!(
        "  world      {}",
        i.world
            .as_deref()
            .unwrap_or("(none: no ward:connector export)")
    );
    say!(
        "  contract   {}",
        i.contract_version
            .as_deref()
            .map(|v| format!("ward:connector/connector@{v}"))
            .unwrap_or_else(|| "none exported (not a Ward connector?)".into())
    );
    say!("  imports    {}", i.imports.join(", "));
    if !i.empty_imports.is_empty() {
        say!(
            "  empty      {} (linked, but Ward provides nothing behind them)",
            i.empty_imports.join(", ")
        );
    }
    say!("  auth       {}", p.auth);
    say!("\nHTTP grants (requested -> effective):");
    for g in &p.http {
        say!(
            "  [{:?}] {} {}://{}:{}{}",
            g.status,
            g.methods.requested.join(","),
            g.scheme,
            g.host,
            g.port,
            g.path_prefix
        );
        if g.url_with_defaults != g.url {
            say!("      with defaults: {}", g.url_with_defaults);
        }
        for f in &g.config_fields {
            say!(
                "      {{{}}} must match {}{}",
                f.name,
                f.pattern,
                f.default
                    .as_ref()
                    .map(|d| format!(" (default {d:?})"))
                    .unwrap_or_default()
            );
        }
        if g.host_families.len() > 1 || g.host_families.iter().any(|h| *h != g.host) {
            say!("      hosts: {}", g.host_families.join(", "));
        }
        if g.operator_named_host {
            say!(
                "      OPERATOR-NAMED HOST: {} is whatever the operator types; secrets bound here are sent there",
                g.host
            );
        }
        if !g.secrets.requested.is_empty() {
            say!(
                "      secrets: {} -> {}{}",
                g.secrets.requested.join(","),
                if g.secrets.effective.is_empty() {
                    "(none)".to_string()
                } else {
                    g.secrets.effective.join(",")
                },
                if g.secrets_in_body {
                    " (also in bodies)"
                } else {
                    ""
                }
            );
        }
        for d in &g.denied_hosts {
            say!("      policy denies host {d}");
        }
        for d in &g.denied_paths {
            say!("      policy denies path {d}");
        }
    }
    say!("\nConfig fields:");
    for c in &p.config {
        say!(
            "  {}{} must match {}{}{}",
            c.name,
            if c.required { "" } else { " (optional)" },
            c.pattern,
            c.default
                .as_ref()
                .map(|d| format!(", default {d:?}"))
                .unwrap_or_default(),
            if c.shapes_host {
                ", chooses a grant's host"
            } else {
                ""
            }
        );
    }
    say!("\nSecrets:");
    for s in &p.secrets {
        say!(
            "  {}{}: sent only to {}",
            s.name,
            if s.refused {
                " (REFUSED by policy)"
            } else {
                ""
            },
            if s.sent_to.effective.is_empty() {
                "nowhere".to_string()
            } else {
                s.sent_to.effective.join(", ")
            }
        );
    }
    say!("\nLimits (requested -> effective):");
    let (r, e) = (
        serde_json::to_value(p.limits.requested).unwrap_or_default(),
        serde_json::to_value(p.limits.effective).unwrap_or_default(),
    );
    if let (Some(r), Some(e)) = (r.as_object(), e.as_object()) {
        for (name, value) in r {
            say!(
                "  {name:<18} {value} -> {}",
                e.get(name).cloned().unwrap_or_default()
            );
        }
    }
    say!(
        "  {:<18} {} -> {}",
        "requests_per_minute",
        p.requests_per_minute.requested,
        p.requests_per_minute.effective
    );
    let (r, e) = (&p.schedule.requested, &p.schedule.effective);
    say!(
        "  {:<18} {} -> {}",
        "backfill_days",
        r.backfill_days,
        e.backfill_days
    );
    say!(
        "  {:<18} {} -> {}",
        "poll_interval_secs",
        r.poll_interval_secs,
        e.poll_interval_secs
    );
    out
}

/// Runs a `ward plugin` subcommand. Returns the process exit code.
pub async fn run(command: PluginCommand) -> anyhow::Result<i32> {
    match command {
        PluginCommand::New {
            name,
            lang,
            dir,
            sdk,
        } => {
            let project = crate::scaffold::NewProject {
                dir: dir.unwrap_or_else(|| PathBuf::from(&name)),
                name,
                lang,
                rust_sdk: sdk.unwrap_or_else(crate::scaffold::default_rust_sdk),
            };
            let files = crate::scaffold::generate(&project)?;
            println!(
                "created {} ({} files); build, pack, sign and test it as its README.md says",
                project.dir.display(),
                files.len()
            );
            Ok(0)
        }
        PluginCommand::Keygen { out, force } => {
            let secret = out.with_extension("key");
            let public = out.with_extension("pub");
            if !force && (secret.exists() || public.exists()) {
                bail!(
                    "{} or {} already exists; pass --force to overwrite",
                    secret.display(),
                    public.display()
                );
            }
            let key = ward_trust::generate()?;
            write_private(&secret, key.secret_file.as_bytes())?;
            std::fs::write(&public, key.public_file.as_bytes())
                .with_context(|| format!("writing {}", public.display()))?;
            println!("key id {}", key.id);
            println!("secret key: {} (keep it private)", secret.display());
            println!("public key: {}", public.display());
            println!(
                "trust it with: plugins.trusted_keys = [\"{}\"]",
                key.public_base64
            );
            Ok(0)
        }
        PluginCommand::Sign { key, file } => {
            let secret = std::fs::read_to_string(&key)
                .with_context(|| format!("reading secret key {}", key.display()))?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            // Refuse to sign something that is not a Ward plugin.
            let manifest = manifest_of(&bytes)
                .with_context(|| format!("{} is not a Ward plugin", file.display()))?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let signature = ward_trust::sign(&secret, &bytes, &name)?;
            let sig_path = signature_path(&file);
            std::fs::write(&sig_path, signature)
                .with_context(|| format!("writing {}", sig_path.display()))?;
            println!(
                "signed {} {} -> {}",
                manifest.key,
                manifest.version,
                sig_path.display()
            );
            Ok(0)
        }
        PluginCommand::Verify { pubkey, file } => {
            let key = read_key_arg(&pubkey)?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let sig = std::fs::read_to_string(signature_path(&file)).ok();
            let status = ward_trust::verify_with(&key, &bytes, sig.as_deref())?;
            println!("{}: {status}", file.display());
            Ok(if status.is_trusted() { 0 } else { 1 })
        }
        PluginCommand::Inspect {
            file,
            json,
            config,
            pubkey,
        } => {
            let bytes = read_plugin(&file)?;
            let mut trusted = Vec::new();
            let mut policies = BTreeMap::new();
            let mut ceilings = Ceilings::default();
            if let Some(path) = config {
                let config = ward_daemon::Config::load(&path)?;
                trusted.extend(config.plugins.trusted_keys.iter().cloned());
                policies = config.policy;
                ceilings = config.limits;
            }
            for k in &pubkey {
                trusted.push(read_key_arg(k)?);
            }
            let inspection = inspect_with(&file, &bytes, &trusted, &policies, ceilings)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&inspection)?);
            } else {
                print!("{}", render_inspection(&inspection));
            }
            Ok(0)
        }
        PluginCommand::Diff { old, new, json } => {
            let report = diff(&read_plugin(&old)?, &read_plugin(&new)?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{} -> {}", report.old, report.new);
                if report.changes.is_empty() {
                    println!("no permission changes");
                }
                for c in &report.changes {
                    println!("  {c}");
                }
                if report.widens {
                    println!(
                        "this upgrade WIDENS permissions: a daemon holds it until `ward plugin approve`"
                    );
                }
            }
            Ok(0)
        }
        PluginCommand::Pack {
            manifest,
            input,
            out,
        } => {
            let text = std::fs::read_to_string(&manifest)
                .with_context(|| format!("reading manifest {}", manifest.display()))?;
            let bytes =
                std::fs::read(&input).with_context(|| format!("reading {}", input.display()))?;
            let packed = ward_runtime::pack::pack(&bytes, &text).with_context(|| {
                format!("packing {} with {}", input.display(), manifest.display())
            })?;
            std::fs::write(&out, &packed).with_context(|| format!("writing {}", out.display()))?;
            let info = ward_runtime::introspect::introspect(&packed)?;
            println!(
                "packed {} -> {} (sha256 {})",
                input.display(),
                out.display(),
                info.digest
            );
            println!(
                "sign it with: ward plugin sign --key vendor.key {}",
                out.display()
            );
            Ok(0)
        }
        PluginCommand::Test {
            file,
            fixtures,
            json,
            junit,
        } => {
            let bytes = read_plugin(&file)?;
            let report = ward_harness::run(&bytes, &fixtures).await?;
            if let Some(path) = junit {
                std::fs::write(&path, ward_harness::junit::write(&report))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
            Ok(if report.passed() { 0 } else { 1 })
        }
        PluginCommand::Record {
            file,
            config,
            token_env,
            secret,
            since,
            out,
            scenario,
            resolve,
            ca,
        } => {
            let bytes = read_plugin(&file)?;
            let recording = recording(&bytes, config, &token_env, secret, since, out, scenario)?;
            let mut upstream = ward_harness::record::Upstream::default();
            for r in &resolve {
                let (host, addr) = r
                    .split_once('=')
                    .with_context(|| format!("--resolve {r}: expected HOST=IP:PORT"))?;
                let addr = addr
                    .parse()
                    .with_context(|| format!("--resolve {r}: {addr} is not IP:PORT"))?;
                upstream.resolve.insert(host.to_string(), addr);
            }
            if let Some(path) = ca {
                upstream.extra_roots_pem.push(
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("reading CA certificate {}", path.display()))?,
                );
            }
            let recorded = ward_harness::record::record(&bytes, &recording, &upstream).await?;
            println!(
                "recorded {} exchanges into {} ({} secret occurrences replaced by references)",
                recorded.exchanges,
                recorded.folder.display(),
                recorded.redactions
            );
            println!(
                "replay it with: ward plugin test {file} --fixtures {}",
                recording.out.display()
            );
            Ok(0)
        }
        PluginCommand::Approve {
            key,
            digest,
            config,
        } => {
            let config = ward_daemon::Config::load(&config)?;
            approve(&config, &key, &digest).await?;
            println!("approved {key} {digest}; it loads at the daemon's next start");
            Ok(0)
        }
    }
}

/// The recorder's settings from `ward plugin record`'s arguments: the
/// token read from the environment variable `token_env`, bound as `secret`
/// or the manifest's first auth's secret.
pub fn recording(
    bytes: &[u8],
    config: Vec<String>,
    token_env: &str,
    secret: Option<String>,
    since: Option<String>,
    out: PathBuf,
    scenario: String,
) -> anyhow::Result<ward_harness::record::Recording> {
    let manifest = manifest_of(bytes)?;
    let mut values = BTreeMap::new();
    for entry in config {
        let (k, v) = entry
            .split_once('=')
            .with_context(|| format!("--config {entry}: expected NAME=VALUE"))?;
        values.insert(k.to_string(), v.to_string());
    }
    let token = std::env::var(token_env)
        .with_context(|| format!("--token-env {token_env}: the variable is not set"))?;
    let secret = match secret {
        Some(s) => s,
        None => manifest
            .auth
            .first()
            .map(|a| a.marker_secret().to_string())
            .with_context(|| {
                format!(
                    "plugin `{}` declares no [[auth]]; name the secret with --secret",
                    manifest.key
                )
            })?,
    };
    let since = match since {
        Some(s) => s,
        None => (time::OffsetDateTime::now_utc() - time::Duration::days(7))
            .format(&time::format_description::well_known::Rfc3339)?,
    };
    Ok(ward_harness::record::Recording {
        config: values,
        secrets: BTreeMap::from([(secret, token)]),
        since,
        out,
        scenario,
    })
}

/// Records the operator's approval of a held plugin version in the
/// daemon's store (`[store]` of the configuration, as the daemon opens it).
pub async fn approve(config: &ward_daemon::Config, key: &str, digest: &str) -> anyhow::Result<()> {
    let store = ward_daemon::open_store(config).await?;
    let runtime = ward_runtime::Runtime::new(ward_runtime::RuntimeConfig::default())?;
    // Approval does not need signature checks to be off: an untrusted file
    // is never held (it is refused), so it cannot be approved either.
    let registry =
        ward_daemon::Registry::load(&runtime, &store, &config.plugins, &config.policy, false)
            .await?;
    let result = registry.approve(&store, key, digest).await;
    store.close().await;
    result?;
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

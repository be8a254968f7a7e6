//! Real `ward serve` processes for the crash tests (`host/ward/tests/`):
//! configuration pointing at an Okta stand-in, spawning with the log kept
//! in a file, and reading back what the store holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use ward_runtime::types::Grant;
use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::tls::TestCa;
use ward_store::{EventQuery, Store};

/// An Okta stand-in and a temporary directory holding its CA (`ca.pem`),
/// for daemons' configurations, databases and logs.
pub struct OktaFixture {
    /// The stand-in.
    pub okta: OktaStandIn,
    /// Removed when dropped.
    pub dir: tempfile::TempDir,
    /// The stand-in's CA certificate.
    pub ca_file: PathBuf,
}

impl OktaFixture {
    /// Starts the stand-in with `config`.
    pub async fn start(config: OktaConfig) -> anyhow::Result<OktaFixture> {
        let ca = TestCa::generate()?;
        let okta = OktaStandIn::start(config, &ca).await?;
        let dir = tempfile::tempdir()?;
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.ca_pem())?;
        Ok(OktaFixture { okta, dir, ca_file })
    }

    /// [`okta_serve_config`] for this stand-in, data in the fixture's
    /// directory.
    pub fn serve_config(&self, extra: &str) -> String {
        okta_serve_config(self.dir.path(), &self.ca_file, &self.okta, extra)
    }
}

/// A `ward serve` configuration reaching `okta` (its CA in `ca_file`,
/// its loopback address resolved and allowed), with `extra` TOML appended
/// (e.g. `[store]` and `[scheduler]` tables).
pub fn okta_serve_config(
    data_dir: &Path,
    ca_file: &Path,
    okta: &OktaStandIn,
    extra: &str,
) -> String {
    format!(
        r#"data_dir = "{data}"

[api]
listen = "127.0.0.1:0"

[egress]
ca_files = ["{ca}"]
allow_private = ["{ip}/32"]
resolve = {{ "{host}" = "{addr}" }}

{extra}
"#,
        data = data_dir.display(),
        ca = ca_file.display(),
        ip = okta.addr().ip(),
        host = okta.host(),
        addr = okta.addr(),
    )
}

/// Connects `count` Okta instances (`{prefix} 0`, `{prefix} 1`, …) to the
/// stand-in's org through an in-process daemon on `config_text` (the
/// operator's part), each at `requests_per_minute` when given; returns
/// their ids. The `ward serve` processes do the rest.
pub async fn connect_okta_instances(
    config_text: &str,
    prefix: &str,
    count: usize,
    requests_per_minute: Option<u32>,
) -> anyhow::Result<Vec<String>> {
    let config = ward_daemon::config::Config::parse(config_text).map_err(anyhow::Error::msg)?;
    let daemon = ward_daemon::Daemon::open(config).await?;
    let plugin = daemon.registry.get("okta").context("okta loaded")?.plugin;
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let (instance, _, _) = ward_daemon::connect::connect(
            &daemon.store,
            &plugin,
            &format!("{prefix} {i}"),
            BTreeMap::from([("domain".to_string(), "ward-demo".to_string())]),
            Grant::ApiToken(OktaConfig::default().api_token),
        )
        .await?;
        if requests_per_minute.is_some() {
            daemon
                .store
                .update_instance(&instance.id, None, None, Some(requests_per_minute))
                .await?;
        }
        ids.push(instance.id);
    }
    daemon.shutdown().await;
    Ok(ids)
}

/// Runs the `ward` binary `bin` with `args` to completion; fails with its
/// output when it exits unsuccessfully.
pub fn run_ward(bin: &Path, args: &[&str]) -> anyhow::Result<Output> {
    let output = Command::new(bin)
        .args(args)
        .output()
        .with_context(|| format!("running {} {}", bin.display(), args.join(" ")))?;
    anyhow::ensure!(
        output.status.success(),
        "ward {} failed ({}):\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output)
}

/// Starts `ward serve --config CONFIG` from the binary `bin`, its log
/// appended to `log` (or discarded).
pub fn spawn_serve(bin: &Path, config: &Path, log: Option<&Path>) -> anyhow::Result<Child> {
    let stderr = match log {
        Some(path) => Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening the log {}", path.display()))?,
        ),
        None => Stdio::null(),
    };
    Command::new(bin)
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("starting {} serve", bin.display()))
}

/// Fails, with the end of its log, when the `ward serve` child has exited:
/// a daemon that died at start-up explains a test that waits on it.
pub fn ensure_running(child: &mut Child, log: &Path) -> anyhow::Result<()> {
    let Some(status) = child.try_wait().context("checking a ward serve child")? else {
        return Ok(());
    };
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(30)..];
    anyhow::bail!(
        "ward serve ({}) exited with {status}; the end of its log:\n{}",
        log.display(),
        tail.join("\n")
    )
}

/// Sends `signal` (`KILL`, `STOP`, `CONT`) to a child process.
pub fn signal(child: &Child, signal: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .context("running kill")?;
    anyhow::ensure!(status.success(), "kill -{signal} {} failed", child.id());
    Ok(())
}

/// Polls the instance's event count until it reaches `at_least` or
/// `limit` passes; returns the last count.
pub async fn wait_for_events(
    store: &Store,
    id: &str,
    at_least: u64,
    limit: Duration,
) -> anyhow::Result<u64> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let n = store.event_count(id).await?;
        if n >= at_least || tokio::time::Instant::now() > deadline {
            return Ok(n);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every stored event id of the instance, in (time, id) order, duplicates
/// kept (there must be none).
pub async fn stored_event_ids(store: &Store, id: &str) -> anyhow::Result<Vec<String>> {
    let mut stored = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .events(
                id,
                &EventQuery {
                    limit: 1000,
                    after: after.clone(),
                    ..Default::default()
                },
            )
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.time_ms, last.event_id.clone()));
        stored.extend(page.into_iter().map(|e| e.event_id));
    }
    Ok(stored)
}

//! Real `ward serve` processes for the crash tests (`host/ward/tests/`):
//! configuration pointing at an Okta stand-in, spawning with the log kept
//! in a file, and reading back what the store holds.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use ward_standins::okta::OktaStandIn;
use ward_store::{EventQuery, Store};

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

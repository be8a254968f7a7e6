//! A release `ward serve` process, configured the way an operator would
//! (resolve override and CA file for the stand-in), driven through its
//! REST API.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

const USER: &str = "bench-user-secret";
const ORG: &str = "bench-organization-secret";

/// A running daemon.
pub struct Daemon {
    child: Child,
    url: String,
    client: reqwest::Client,
}

/// Where the daemon's provider requests go.
#[derive(Clone, Copy)]
pub struct Upstream<'a> {
    /// Provider host name.
    pub host: &'a str,
    /// The stand-in's address.
    pub addr: std::net::SocketAddr,
    /// PEM file of the stand-in's CA.
    pub ca_file: &'a Path,
}

/// Writes `ward.toml` into `data_dir` and returns its path.
pub fn write_config(data_dir: &Path, upstream: Option<&Upstream<'_>>) -> anyhow::Result<PathBuf> {
    write_config_for(data_dir, upstream.copied().as_slice(), "")
}

/// [`write_config`] with `extra` TOML tables appended (`[store]`, `[scheduler]`).
pub fn write_config_with(
    data_dir: &Path,
    upstream: Option<&Upstream<'_>>,
    extra: &str,
) -> anyhow::Result<PathBuf> {
    write_config_for(data_dir, upstream.copied().as_slice(), extra)
}

/// [`write_config_with`] for any number of provider hosts (one CA file
/// each, deduplicated).
pub fn write_config_for(
    data_dir: &Path,
    upstreams: &[Upstream<'_>],
    extra: &str,
) -> anyhow::Result<PathBuf> {
    let listen = free_port()?;
    let hash = |s: &str| hex::encode(Sha256::digest(s.as_bytes()));
    let mut toml = format!(
        "data_dir = {data_dir:?}\n[api]\nlisten = \"{listen}\"\nuser_secret_sha256 = \"{}\"\norganization_secret_sha256 = \"{}\"\n",
        hash(USER),
        hash(ORG),
    );
    if !upstreams.is_empty() {
        let resolve: Vec<String> = upstreams
            .iter()
            .map(|up| format!("{:?} = \"{}\"", up.host, up.addr))
            .collect();
        let cas: Vec<&Path> = upstreams
            .iter()
            .map(|up| up.ca_file)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let private: std::collections::BTreeSet<String> = upstreams
            .iter()
            .map(|up| format!("\"{}/32\"", up.addr.ip()))
            .collect();
        toml.push_str(&format!(
            "[egress]\nresolve = {{ {} }}\nca_files = {:?}\nallow_private = [{}]\n",
            resolve.join(", "),
            cas,
            private.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    toml.push_str(extra);
    let path = data_dir.join("ward.toml");
    std::fs::write(&path, toml).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn free_port() -> anyhow::Result<std::net::SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

impl Daemon {
    /// Starts `ward serve --config CONFIG` and waits until `/livez`
    /// answers (the daemon has opened its store and loaded its plugins by
    /// then). Returns the daemon and how long that took.
    pub async fn start(ward: &Path, config: &Path) -> anyhow::Result<(Daemon, Duration)> {
        let text = std::fs::read_to_string(config)?;
        let listen = text
            .lines()
            .find_map(|l| l.strip_prefix("listen = "))
            .map(|l| l.trim_matches('"').to_string())
            .context("the bench config has no api.listen")?;
        let log = std::fs::File::create(config.with_extension("log"))?;
        let started = Instant::now();
        let child = Command::new(ward)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} serve", ward.display()))?;
        let mut daemon = Daemon {
            child,
            url: format!("http://{listen}"),
            client: reqwest::Client::new(),
        };
        loop {
            let livez = daemon
                .client
                .get(format!("{}/livez", daemon.url))
                .send()
                .await;
            if livez.is_ok_and(|r| r.status().is_success()) {
                return Ok((daemon, started.elapsed()));
            }
            if let Some(status) = daemon.child.try_wait()? {
                anyhow::bail!(
                    "ward serve exited ({status}) before answering /livez; see {}",
                    config.with_extension("log").display()
                );
            }
            if started.elapsed() > Duration::from_secs(120) {
                anyhow::bail!("ward serve did not answer /livez within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.url))
            .header("Authorization", format!("User {USER}, Organization {ORG}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let value: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            anyhow::bail!("{method} {path} answered {status}: {value}");
        }
        Ok(value)
    }

    /// Creates an Okta instance with an API token; returns its id.
    pub async fn create_okta(&self, domain: &str, token: &str) -> anyhow::Result<String> {
        let body = serde_json::json!({
            "element": {"key": "okta"},
            "providerData": {"apiToken": token},
            "configuration": {"domain": domain},
            "name": "bench",
        });
        let created = self
            .call(reqwest::Method::POST, "/instances", Some(body))
            .await?;
        created["id"]
            .as_str()
            .map(str::to_string)
            .context("POST /instances answered no id")
    }

    /// Sets an instance's request budget (the operator's `requestsPerMinute`).
    pub async fn set_rate(&self, id: &str, per_minute: u32) -> anyhow::Result<()> {
        let body = serde_json::json!({"requestsPerMinute": per_minute});
        self.call(
            reqwest::Method::PATCH,
            &format!("/instances/{id}"),
            Some(body),
        )
        .await?;
        Ok(())
    }

    /// The daemon holding the instance's lease (`worker.daemon`) and the
    /// lease's epoch, if a live lease is held.
    pub async fn worker(&self, id: &str) -> anyhow::Result<Option<(String, i64)>> {
        let view = self
            .call(reqwest::Method::GET, &format!("/instances/{id}"), None)
            .await?;
        Ok(view["worker"]["daemon"].as_str().map(|d| {
            (
                d.to_string(),
                view["worker"]["epoch"].as_i64().unwrap_or_default(),
            )
        }))
    }

    /// Every instance's id, events stored and status state
    /// (`GET /instances`).
    pub async fn instances(&self) -> anyhow::Result<Vec<(String, u64, String)>> {
        let list = self.call(reqwest::Method::GET, "/instances", None).await?;
        let list = list.as_array().context("GET /instances answered no list")?;
        Ok(list
            .iter()
            .map(|view| {
                (
                    view["id"].as_str().unwrap_or_default().to_string(),
                    view["status"]["eventsStored"].as_u64().unwrap_or(0),
                    view["status"]["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect())
    }

    /// Events the instance has stored, and its status state.
    pub async fn events_stored(&self, id: &str) -> anyhow::Result<(u64, String)> {
        let view = self
            .call(reqwest::Method::GET, &format!("/instances/{id}"), None)
            .await?;
        let stored = view["status"]["eventsStored"].as_u64().unwrap_or(0);
        let state = view["status"]["state"].as_str().unwrap_or("").to_string();
        Ok((stored, state))
    }
}

impl Drop for Daemon {
    /// Stops the daemon (SIGKILL: whatever was measured is over by then),
    /// also when a benchmark fails half-way.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

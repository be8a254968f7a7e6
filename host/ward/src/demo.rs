//! `ward demo`: the real daemon (store, scheduler, REST API) with the bundled
//! connectors, pointed at local provider stand-ins (real HTTPS on loopback,
//! reached under the providers' real host names through resolve overrides
//! and a CA generated for the run), on the embedded SQLite store.
//!
//! The demo connects every provider the way an operator does, through the
//! REST API: an API token for Okta, the OAuth code flow (consent URL, the
//! provider's consent page, Ward's callback, `POST /instances`) for Zendesk
//! and Egnyte, with the demo playing the operator's browser.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use ward_daemon::Daemon;
use ward_daemon::config::Config;
use ward_daemon::scheduler::Phase;
use ward_standins::egnyte::{EgnyteConfig, EgnyteStandIn};
use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::tls::TestCa;
use ward_standins::zendesk::{ZendeskConfig, ZendeskStandIn};

/// Options of `ward demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Backfill, print the summary and exit.
    pub once: bool,
    /// Events each stand-in starts with.
    pub events: usize,
    /// Users each stand-in starts with.
    pub users: usize,
    /// Where the database, master key and compile cache go.
    pub data_dir: PathBuf,
    /// Seconds between polls after the backfill.
    pub poll_secs: u64,
    /// Where the API listens (an ephemeral port is used if it is taken).
    pub listen: std::net::SocketAddr,
}

/// What the demo stored for one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSummary {
    /// Element key (`okta`, `zendesk`, `egnyte`).
    pub key: String,
    /// Events stored.
    pub events: u64,
    /// Users stored.
    pub users: u64,
}

/// What the demo stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSummary {
    /// Per provider, in the order they were connected.
    pub providers: Vec<ProviderSummary>,
}

/// A running provider stand-in.
enum StandIn {
    Okta(OktaStandIn),
    Zendesk(ZendeskStandIn),
    Egnyte(EgnyteStandIn),
}

impl StandIn {
    fn key(&self) -> &'static str {
        match self {
            StandIn::Okta(_) => "okta",
            StandIn::Zendesk(_) => "zendesk",
            StandIn::Egnyte(_) => "egnyte",
        }
    }

    fn label(&self) -> &'static str {
        match self {
            StandIn::Okta(_) => "Okta",
            StandIn::Zendesk(_) => "Zendesk",
            StandIn::Egnyte(_) => "Egnyte",
        }
    }

    fn host(&self) -> String {
        match self {
            StandIn::Okta(s) => s.host(),
            StandIn::Zendesk(s) => s.host(),
            StandIn::Egnyte(s) => s.host(),
        }
    }

    fn addr(&self) -> SocketAddr {
        match self {
            StandIn::Okta(s) => s.addr(),
            StandIn::Zendesk(s) => s.addr(),
            StandIn::Egnyte(s) => s.addr(),
        }
    }

    fn event_count(&self) -> usize {
        match self {
            StandIn::Okta(s) => s.event_count(),
            StandIn::Zendesk(s) => s.event_count(),
            StandIn::Egnyte(s) => s.event_count(),
        }
    }

    fn append_events(&self, n: usize) {
        match self {
            StandIn::Okta(s) => s.append_events(n),
            StandIn::Zendesk(s) => s.append_events(n),
            StandIn::Egnyte(s) => s.append_events(n),
        }
    }

    async fn shutdown(self) {
        match self {
            StandIn::Okta(s) => s.shutdown().await,
            StandIn::Zendesk(s) => s.shutdown().await,
            StandIn::Egnyte(s) => s.shutdown().await,
        }
    }

    /// How an operator connects this provider: the element's configuration
    /// and either an API token or an OAuth client.
    fn connection(&self) -> (Vec<(&'static str, String)>, Credential) {
        match self {
            StandIn::Okta(_) => (
                vec![("domain", "ward-demo".to_owned())],
                Credential::ApiToken(OktaConfig::default().api_token),
            ),
            StandIn::Zendesk(s) => {
                let (id, secret) = s.oauth_client();
                (
                    vec![("subdomain", "ward-demo".to_owned())],
                    Credential::OAuth { id, secret },
                )
            }
            StandIn::Egnyte(s) => {
                let (id, secret) = s.oauth_client();
                (
                    vec![("domain", "ward-demo".to_owned())],
                    Credential::OAuth { id, secret },
                )
            }
        }
    }
}

enum Credential {
    ApiToken(String),
    OAuth { id: String, secret: String },
}

/// Runs the demo.
pub async fn run(opts: DemoOptions) -> anyhow::Result<DemoSummary> {
    std::fs::create_dir_all(&opts.data_dir)
        .with_context(|| format!("creating {}", opts.data_dir.display()))?;
    let ca = TestCa::generate()?;
    let stand_ins = vec![
        StandIn::Okta(
            OktaStandIn::start(
                OktaConfig {
                    events: opts.events,
                    users: opts.users,
                    backfill_span_days: 45,
                    ..OktaConfig::default()
                },
                &ca,
            )
            .await?,
        ),
        StandIn::Zendesk(
            ZendeskStandIn::start(
                ZendeskConfig {
                    events: opts.events,
                    users: opts.users,
                    ..ZendeskConfig::default()
                },
                &ca,
            )
            .await?,
        ),
        StandIn::Egnyte(
            EgnyteStandIn::start(
                EgnyteConfig {
                    events: opts.events,
                    users: opts.users,
                    ..EgnyteConfig::default()
                },
                &ca,
            )
            .await?,
        ),
    ];
    for s in &stand_ins {
        println!(
            "{} stand-in: https://{} on {} ({} events, {} users)",
            s.label(),
            s.host(),
            s.addr(),
            s.event_count(),
            opts.users
        );
    }

    // A demo starts from an empty store so its numbers mean something.
    let db = opts.data_dir.join("ward-demo.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let ca_file = opts.data_dir.join("demo-ca.pem");
    std::fs::write(&ca_file, ca.ca_pem())
        .with_context(|| format!("writing {}", ca_file.display()))?;
    let mut config = Config {
        data_dir: opts.data_dir.clone(),
        ..Config::default()
    };
    config.store.url = Some(format!("sqlite://{}", db.display()));
    config.api.listen = opts.listen;
    config.egress.resolve = stand_ins.iter().map(|s| (s.host(), s.addr())).collect();
    config.egress.ca_files = vec![ca_file];
    // The stand-ins live on loopback; the operator (this demo) allows
    // exactly their address, nothing else in the restricted ranges.
    let mut allowed: Vec<String> = stand_ins
        .iter()
        .map(|s| format!("{}/32", s.addr().ip()))
        .collect();
    allowed.dedup();
    config.egress.allow_private = allowed;
    config.scheduler.poll_interval_secs = opts.poll_secs;

    let daemon = Daemon::open(config).await?;
    let listener = crate::serve::bind(&daemon.config, true).await?;
    let api_url = format!("http://{}", listener.local_addr()?);
    println!("Ward API: {api_url}");
    // The demo's config carries no secret hashes and its store starts
    // empty, so the secrets are those of the data directory's file:
    // written now, or kept from an earlier demo on the same directory.
    ward_api::ensure_api_secrets(&daemon).await?;
    let secrets_file = opts.data_dir.join(ward_api::SECRETS_FILE);
    let api = Api {
        url: api_url,
        auth: ward_api::ApiSecrets::load(&secrets_file)?.header(),
        http: reqwest::Client::new(),
        browser: browser(&ca, &stand_ins)?,
    };
    println!("API secrets: {}", secrets_file.display());

    let (app, console) = crate::serve::app(&daemon);
    println!("Ward console: {}/", api.url);
    println!(
        "Console sign-in (one-time link): {}",
        console.one_time_link(&api.url)
    );

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::serve::serve_until(
        daemon.clone(),
        app,
        listener,
        async move {
            let _ = stop_rx.await;
        },
    ));

    let mut ids = Vec::new();
    for s in &stand_ins {
        ids.push(api.connect(s).await?);
    }

    let outcome = async {
        backfill_progress(&daemon, &stand_ins, &ids).await?;
        let summary = summary(&daemon, &stand_ins, &ids).await?;
        println!(
            "Data: {} (SQLite; tables events, users, egress, instances, credentials, cursors)",
            db.display()
        );
        for p in &summary.providers {
            println!("{}: events: {}, users: {}", p.key, p.events, p.users);
            if p.key == "okta" {
                // The stand-in's directory, like a real org's, has some.
                println!(
                    "  (okta: /api/v1/users lists every user except DEPROVISIONED ones, so fewer than the directory's total)"
                );
            }
        }
        let events: u64 = summary.providers.iter().map(|p| p.events).sum();
        let users: u64 = summary.providers.iter().map(|p| p.users).sum();
        println!("events: {events}, users: {users}");
        if !opts.once {
            poll(&daemon, &stand_ins, &ids, &summary, opts.poll_secs).await?;
        }
        anyhow::Ok(summary)
    }
    .await;

    let _ = stop_tx.send(());
    server.await.context("daemon task")??;
    for s in stand_ins {
        s.shutdown().await;
    }
    outcome
}

/// The operator's view of Ward's API, and their browser.
struct Api {
    url: String,
    auth: String,
    http: reqwest::Client,
    browser: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        let response = request
            .header("authorization", &self.auth)
            .send()
            .await
            .with_context(|| format!("{what}: calling Ward's API"))?;
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// Connects `s` through the API and returns the instance id.
    async fn connect(&self, s: &StandIn) -> anyhow::Result<String> {
        let key = s.key();
        let (config, credential) = s.connection();
        let configuration: serde_json::Map<String, Value> = config
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(v.as_str())))
            .collect();
        let provider_data = match credential {
            Credential::ApiToken(token) => json!({ "apiToken": token }),
            Credential::OAuth { id, secret } => {
                let (code, state) = self.consent(s, &config, &id, &secret).await?;
                json!({ "code": code, "state": state })
            }
        };
        let (status, created) = self
            .call(
                self.http
                    .post(format!("{}/instances", self.url))
                    .json(&json!({
                        "element": {"key": key},
                        "providerData": provider_data,
                        "configuration": configuration,
                        "name": format!("{} (demo)", s.label()),
                        "tags": ["demo"],
                    })),
                &format!("connecting {key}"),
            )
            .await?;
        anyhow::ensure!(
            status.is_success(),
            "POST /instances for {key} answered {status}: {created}"
        );
        let id = created["id"]
            .as_str()
            .with_context(|| format!("POST /instances for {key} returned no id: {created}"))?
            .to_owned();
        println!(
            "Connected {} instance {id} to {} ({})",
            s.label(),
            created["accountName"].as_str().unwrap_or("?"),
            created["status"]["state"].as_str().unwrap_or("?"),
        );
        for check in created["checks"].as_array().into_iter().flatten() {
            println!(
                "  [{}] {}: {}",
                if check["ok"] == true { "ok" } else { "FAIL" },
                check["name"].as_str().unwrap_or("?"),
                check["message"].as_str().unwrap_or("")
            );
        }
        Ok(id)
    }

    /// The OAuth code flow as the operator's browser plays it: Ward's
    /// consent URL, the provider's consent page, Ward's callback.
    async fn consent(
        &self,
        s: &StandIn,
        config: &[(&str, String)],
        client_id: &str,
        client_secret: &str,
    ) -> anyhow::Result<(String, String)> {
        let key = s.key();
        let mut query: Vec<(&str, &str)> =
            vec![("apiKey", client_id), ("apiSecret", client_secret)];
        let callback = format!("{}/oauth/callback", self.url);
        query.push(("callbackUrl", &callback));
        query.extend(config.iter().map(|(k, v)| (*k, v.as_str())));
        let url =
            url::Url::parse_with_params(&format!("{}/elements/{key}/oauth/url", self.url), &query)?;
        let (status, body) = self
            .call(
                self.http.get(url),
                &format!("asking for {key}'s consent URL"),
            )
            .await?;
        anyhow::ensure!(
            status.is_success(),
            "GET /elements/{key}/oauth/url answered {status}: {body}"
        );
        let oauth_url = body["oauthUrl"]
            .as_str()
            .with_context(|| format!("no oauthUrl for {key}: {body}"))?;
        println!("{} consent: {oauth_url}", s.label());
        let consent = self
            .browser
            .get(oauth_url)
            .send()
            .await
            .with_context(|| format!("opening {}'s consent page", s.label()))?;
        let back = consent
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .with_context(|| {
                format!(
                    "{}'s consent page answered {} without a redirect",
                    s.label(),
                    consent.status()
                )
            })?
            .to_owned();
        let back = url::Url::parse(&back).with_context(|| format!("redirect {back:?}"))?;
        let callback = self
            .browser
            .get(back.as_str())
            .send()
            .await
            .context("opening Ward's OAuth callback")?;
        let status = callback.status();
        let body: Value = callback.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(
            status.is_success(),
            "Ward's callback for {key} answered {status}: {body}"
        );
        let code = body["code"].as_str().context("callback without code")?;
        let state = body["state"].as_str().context("callback without state")?;
        Ok((code.to_owned(), state.to_owned()))
    }
}

/// The demo's browser: trusts the stand-ins' CA, reaches them under their
/// real names, and shows redirects instead of following them.
fn browser(ca: &TestCa, stand_ins: &[StandIn]) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.ca_pem().as_bytes())?)
        .redirect(reqwest::redirect::Policy::none());
    for s in stand_ins {
        b = b.resolve(&s.host(), s.addr());
    }
    Ok(b.build()?)
}

/// One progress bar per instance over its backfill window, until every
/// worker has caught up and read its users once.
async fn backfill_progress(
    daemon: &Daemon,
    stand_ins: &[StandIn],
    ids: &[String],
) -> anyhow::Result<()> {
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>8} [{bar:40}] {percent:>3}% {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let bars: Vec<ProgressBar> = stand_ins
        .iter()
        .map(|s| {
            let bar = multi.add(ProgressBar::new(1000));
            bar.set_style(style.clone());
            bar.set_prefix(s.key());
            bar
        })
        .collect();
    let mut since: Vec<Option<i64>> = vec![None; ids.len()];
    let mut done = vec![false; ids.len()];
    while done.iter().any(|d| !d) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for (i, id) in ids.iter().enumerate() {
            if done[i] {
                continue;
            }
            let Some(p) = daemon.scheduler.progress(id) else {
                continue;
            };
            since[i] = since[i].or(p.backfill_since_ms);
            if let (Some(since), Some(newest)) = (since[i], p.newest_event_ms) {
                let now = now_ms();
                let part = (newest - since).max(0) as f64 / (now - since).max(1) as f64;
                bars[i].set_position((part.min(1.0) * 1000.0) as u64);
            }
            bars[i].set_message(format!("{} events, {} pages", p.new_events, p.pages));
            let users_read = daemon.store.users_synced_ms(id).await?.is_some();
            if (p.caught_up_ms.is_some() && users_read) || p.phase == Phase::Stopped {
                bars[i].set_position(1000);
                bars[i].finish();
                done[i] = true;
            }
        }
    }
    let _ = multi.clear();
    for (s, id) in stand_ins.iter().zip(ids) {
        let instance = daemon
            .store
            .instance(id)
            .await?
            .context("instance vanished")?;
        if let Some(p) = daemon.scheduler.progress(id) {
            println!(
                "{} backfill: {} pages, {} new events; status {}{}",
                s.label(),
                p.pages,
                p.new_events,
                instance.status.as_str(),
                instance
                    .status_message
                    .as_deref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            );
        }
        anyhow::ensure!(
            instance.status == ward_store::InstanceStatus::Connected,
            "the {} demo instance is not connected",
            s.label()
        );
    }
    Ok(())
}

async fn summary(
    daemon: &Daemon,
    stand_ins: &[StandIn],
    ids: &[String],
) -> anyhow::Result<DemoSummary> {
    let mut providers = Vec::new();
    for (s, id) in stand_ins.iter().zip(ids) {
        providers.push(ProviderSummary {
            key: s.key().to_owned(),
            events: daemon.store.event_count(id).await?,
            users: daemon.store.user_count(id).await?,
        });
    }
    Ok(DemoSummary { providers })
}

/// Polls until Ctrl-C while every stand-in publishes new events each round.
async fn poll(
    daemon: &Daemon,
    stand_ins: &[StandIn],
    ids: &[String],
    summary: &DemoSummary,
    poll_secs: u64,
) -> anyhow::Result<()> {
    println!(
        "Polling every {poll_secs} s; the stand-ins publish new events each round. Ctrl-C to stop."
    );
    let mut last: BTreeMap<&str, u64> = summary
        .providers
        .iter()
        .map(|p| (p.key.as_str(), p.events))
        .collect();
    let mut round = 0u64;
    loop {
        tokio::select! {
            _ = crate::serve::shutdown_signal() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(poll_secs)) => {}
        }
        round += 1;
        let mut line = Vec::new();
        for (i, (s, id)) in stand_ins.iter().zip(ids).enumerate() {
            s.append_events(3 + ((round as usize + i) * 7) % 30);
            let total = daemon.store.event_count(id).await?;
            let status = daemon
                .store
                .instance(id)
                .await?
                .map(|i| i.status.as_str().to_string())
                .unwrap_or_default();
            let before = last.insert(s.key(), total).unwrap_or(total);
            line.push(format!(
                "{} +{} (total {total}, {status})",
                s.key(),
                total.saturating_sub(before)
            ));
        }
        println!("poll {round}: {}", line.join("; "));
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

//! The Okta org the ingestion figures read: `ward_standins`' Okta stand-in
//! (HTTPS on loopback, answering as `ward-demo.okta.com`) with its events
//! rendered before the clock starts, so it serves pre-rendered pages.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::tls::TestCa;

use crate::figure::cpu_time;

/// A running stand-in and what a client needs to reach it.
pub struct Org {
    /// The stand-in.
    pub okta: OktaStandIn,
    /// PEM file of the CA its certificate is issued by.
    pub ca_file: PathBuf,
    /// Its API token.
    pub token: String,
    /// How fast it served every page once rendered (see [`Org::serve_rate`]).
    pub serve_rate: ServeRate,
}

/// One read of the whole System Log by a plain Rust client.
#[derive(Debug, Clone, Copy)]
pub struct ServeRate {
    /// Events read.
    pub events: usize,
    /// Bytes of the pages.
    pub bytes: usize,
    /// Wall time of the read.
    pub wall: Duration,
    /// CPU time of this process (stand-in and client) during the read.
    pub cpu: Duration,
}

impl Org {
    /// Starts an org holding `events` System Log events (spread over the
    /// last 30 days, inside Okta's 60-day backfill and any `since` a
    /// baseline is given), advertising a rate limit no client reaches.
    pub async fn start(events: usize, dir: &Path) -> anyhow::Result<Org> {
        let ca = TestCa::generate().context("generating the stand-in CA")?;
        let config = OktaConfig {
            events,
            users: 25,
            backfill_span_days: 30,
            rate_limit_per_minute: 10_000_000,
            ..OktaConfig::default()
        };
        let token = config.api_token.clone();
        let okta = OktaStandIn::start(config, &ca)
            .await
            .context("starting the Okta stand-in")?;
        let ca_file = dir.join("standin-ca.pem");
        std::fs::write(&ca_file, ca.ca_pem())
            .with_context(|| format!("writing {}", ca_file.display()))?;
        let mut org = Org {
            okta,
            ca_file,
            token,
            serve_rate: ServeRate {
                events: 0,
                bytes: 0,
                wall: Duration::ZERO,
                cpu: Duration::ZERO,
            },
        };
        // First read renders every event's JSON (kept by the stand-in);
        // the second one is what the stand-in costs when it only serves.
        org.read_all().await?;
        org.serve_rate = org.read_all().await?;
        if org.serve_rate.events < events {
            anyhow::bail!(
                "the Okta stand-in served {} of its {events} events to a plain client",
                org.serve_rate.events
            );
        }
        Ok(org)
    }

    /// The stand-in's host name (`ward-demo.okta.com`).
    pub fn host(&self) -> String {
        self.okta.host()
    }

    /// An HTTPS client that reaches the stand-in under its host name.
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        let pem = std::fs::read(&self.ca_file)?;
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem)?)
            .resolve(&self.host(), self.okta.addr())
            .build()
            .context("building a client for the stand-in")
    }

    /// The first System Log page as Ward's connector asks for it: polling
    /// mode from 31 days ago, 1,000 events a page.
    pub fn logs_url(&self) -> anyhow::Result<reqwest::Url> {
        let since = time::OffsetDateTime::now_utc() - time::Duration::days(31);
        let since = since
            .format(&time::format_description::well_known::Rfc3339)
            .context("formatting since")?;
        Ok(reqwest::Url::parse_with_params(
            &format!("{}/api/v1/logs", self.okta.base_url()),
            &[
                ("since", since.as_str()),
                ("limit", "1000"),
                ("sortOrder", "ASCENDING"),
            ],
        )?)
    }

    /// The first 1,000-event page (headers and body), as the broker
    /// receives it.
    pub async fn first_page(&self) -> anyhow::Result<(http::HeaderMap, Vec<u8>)> {
        let response = self
            .client()?
            .get(self.logs_url()?)
            .header("Authorization", format!("SSWS {}", self.token))
            .send()
            .await
            .context("reading a page from the stand-in")?;
        let headers = response.headers().clone();
        Ok((headers, response.bytes().await?.to_vec()))
    }

    /// Reads the whole System Log in pages of 1,000, as Ward's connector
    /// does, with a plain HTTPS client.
    async fn read_all(&self) -> anyhow::Result<ServeRate> {
        let client = self.client()?;
        let mut url = self.logs_url()?;
        let (wall0, cpu0) = (Instant::now(), cpu_time(None)?);
        let (mut events, mut bytes) = (0, 0);
        loop {
            let response = client
                .get(url.clone())
                .header("Authorization", format!("SSWS {}", self.token))
                .send()
                .await
                .with_context(|| format!("reading {url} from the stand-in"))?;
            let next = next_link(response.headers());
            let status = response.status();
            let body = response.bytes().await?;
            if !status.is_success() {
                anyhow::bail!("the stand-in answered {status} to {url}");
            }
            let page: Vec<serde_json::Value> = serde_json::from_slice(&body)?;
            if page.is_empty() {
                break;
            }
            events += page.len();
            bytes += body.len();
            match next {
                Some(n) => url = reqwest::Url::parse(&n)?,
                None => break,
            }
        }
        Ok(ServeRate {
            events,
            bytes,
            wall: wall0.elapsed(),
            cpu: cpu_time(None)? - cpu0,
        })
    }
}

/// The `rel="next"` target of a `Link` header.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find(|l| l.contains("rel=\"next\""))
        .and_then(|l| {
            let start = l.find('<')? + 1;
            let end = l.find('>')?;
            l.get(start..end).map(str::to_string)
        })
}

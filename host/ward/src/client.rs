//! `ward instances …` and `ward events …`: a client of the daemon's REST
//! API. The URL comes from `--url` / `WARD_URL`; the secrets from
//! `WARD_USER_SECRET` and `WARD_ORG_SECRET`, or else from
//! `<data_dir>/api-secrets.toml` as written by `ward serve`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// A connection to the API.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    url: String,
    auth: String,
}

/// The credentials `create` and `reconnect` send as `providerData`.
#[derive(Debug, Clone, Default)]
pub struct ProviderArgs {
    /// API token (token-auth elements).
    pub api_token: Option<String>,
    /// OAuth code and state from `/oauth/callback`.
    pub code: Option<String>,
    /// OAuth state.
    pub state: Option<String>,
    /// Basic-auth user name.
    pub username: Option<String>,
    /// Basic-auth password.
    pub password: Option<String>,
}

impl ProviderArgs {
    fn to_json(&self) -> anyhow::Result<Value> {
        let mut m = serde_json::Map::new();
        let mut put = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), Value::String(v.clone()));
            }
        };
        put("apiToken", &self.api_token);
        put("code", &self.code);
        put("state", &self.state);
        put("username", &self.username);
        put("password", &self.password);
        if m.is_empty() {
            bail!(
                "give credentials: --api-token, --code and --state, or --username and --password"
            );
        }
        Ok(Value::Object(m))
    }
}

impl Client {
    /// Builds a client for `url`, reading the secrets from the environment
    /// or from `<data_dir>/api-secrets.toml`.
    pub fn new(url: &str, data_dir: &Path) -> anyhow::Result<Client> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let (user, org) = match (env("WARD_USER_SECRET"), env("WARD_ORG_SECRET")) {
            (Some(u), Some(o)) => (u, o),
            _ => {
                let path = data_dir.join("api-secrets.toml");
                let s = ward_api::ApiSecrets::load(&path).with_context(|| {
                    format!(
                        "no API secrets for {url}: set WARD_USER_SECRET and WARD_ORG_SECRET, or \
                         point --data-dir at the daemon's data directory (read {})",
                        path.display()
                    )
                })?;
                (s.user, s.organization)
            }
        };
        Ok(Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()?,
            url: url.trim_end_matches('/').to_owned(),
            auth: format!("User {user}, Organization {org}"),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .header("authorization", &self.auth);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.with_context(|| {
            format!(
                "cannot reach the Ward API at {}; is `ward serve` running?",
                self.url
            )
        })?;
        let status = resp.status();
        let text = resp.text().await?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if !status.is_success() {
            let msg = value["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            bail!("{method} {path}: {status}: {msg}");
        }
        Ok(value)
    }

    /// `ward instances list`; returns the listing as the API gave it.
    pub async fn list(&self) -> anyhow::Result<Value> {
        let list = self.call(reqwest::Method::GET, "/instances", None).await?;
        println!(
            "{:<32}  {:<20}  {:<8}  {:<10}  {:>9}  {:>8}  MESSAGE",
            "ID", "NAME", "ELEMENT", "STATUS", "EVENTS", "LAG(s)"
        );
        let instances = list.as_array().map(Vec::as_slice).unwrap_or_default();
        if instances.is_empty() {
            println!("no instances; connect one with `ward instances create` or `ward connect`");
        }
        for i in instances {
            let st = &i["status"];
            let mut message = st["message"].as_str().unwrap_or("").to_owned();
            if let Some(w) = st["credentialWarning"].as_str() {
                message = format!("{message} {w}").trim().to_owned();
            }
            println!(
                "{:<32}  {:<20}  {:<8}  {:<10}  {:>9}  {:>8}  {}",
                i["id"].as_str().unwrap_or(""),
                i["name"].as_str().unwrap_or(""),
                i["element"]["key"].as_str().unwrap_or(""),
                st["state"].as_str().unwrap_or(""),
                st["eventsStored"].as_u64().unwrap_or(0),
                st["lagSeconds"]
                    .as_i64()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "-".into()),
                message
            );
        }
        Ok(list)
    }

    /// `ward instances create`; returns the API's response.
    pub async fn create(
        &self,
        element: &str,
        name: Option<&str>,
        config: BTreeMap<String, String>,
        tags: Vec<String>,
        provider: &ProviderArgs,
    ) -> anyhow::Result<Value> {
        let mut body = json!({
            "element": {"key": element},
            "providerData": provider.to_json()?,
            "configuration": config,
            "tags": tags,
        });
        if let Some(n) = name {
            body["name"] = Value::String(n.to_owned());
        }
        let v = self
            .call(reqwest::Method::POST, "/instances", Some(body))
            .await?;
        print_test(&v);
        println!(
            "instance token (shown once; use as `Authorization: Element <token>`): {}",
            v["token"].as_str().unwrap_or("")
        );
        Ok(v)
    }

    /// `ward elements list`: installed elements, one line each.
    pub async fn elements(&self) -> anyhow::Result<Value> {
        let list = self.call(reqwest::Method::GET, "/elements", None).await?;
        let elements = list.as_array().map(Vec::as_slice).unwrap_or_default();
        if elements.is_empty() {
            println!("no elements installed");
            return Ok(list);
        }
        println!(
            "{:<12}  {:<10}  {:<16}  {:<10}  NAME",
            "KEY", "VERSION", "STATUS", "SIGNATURE"
        );
        for e in elements {
            println!(
                "{:<12}  {:<10}  {:<16}  {:<10}  {}",
                e["key"].as_str().unwrap_or(""),
                e["version"].as_str().unwrap_or(""),
                e["status"].as_str().unwrap_or(""),
                e["signature"].as_str().unwrap_or(""),
                e["name"].as_str().unwrap_or("")
            );
        }
        Ok(list)
    }

    /// `ward elements show KEY`: what the element needs to connect and
    /// what it may reach, then the whole JSON description.
    pub async fn element(&self, key: &str) -> anyhow::Result<Value> {
        let e = self
            .call(reqwest::Method::GET, &format!("/elements/{key}"), None)
            .await?;
        let m = &e["manifest"];
        println!(
            "{} {} ({}), {}",
            e["key"].as_str().unwrap_or(""),
            e["version"].as_str().unwrap_or(""),
            e["name"].as_str().unwrap_or(""),
            e["status"].as_str().unwrap_or("")
        );
        if let Some(d) = m["description"].as_str() {
            println!("  {d}");
        }
        for a in m["auth"].as_array().map(Vec::as_slice).unwrap_or_default() {
            println!("  auth: {}", a["kind"].as_str().unwrap_or(""));
        }
        for c in m["config"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            println!(
                "  config {}{}: {}",
                c["name"].as_str().unwrap_or(""),
                if c["required"] == false {
                    " (optional)"
                } else {
                    ""
                },
                c["description"].as_str().unwrap_or("")
            );
        }
        println!("{}", serde_json::to_string_pretty(&e)?);
        Ok(e)
    }

    /// Starts an OAuth consent: the provider's consent URL for `element`.
    pub async fn oauth_url(
        &self,
        element: &str,
        client_id: &str,
        client_secret: Option<&str>,
        callback_url: Option<&str>,
        config: &BTreeMap<String, String>,
    ) -> anyhow::Result<String> {
        let mut url = url::Url::parse(&format!("{}/elements/{element}/oauth/url", self.url))
            .with_context(|| format!("the API URL {} is not a URL", self.url))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("apiKey", client_id);
            if let Some(s) = client_secret {
                q.append_pair("apiSecret", s);
            }
            if let Some(c) = callback_url {
                q.append_pair("callbackUrl", c);
            }
            for (k, v) in config {
                q.append_pair(k, v);
            }
        }
        let path = format!("{}?{}", url.path(), url.query().unwrap_or_default());
        let v = self.call(reqwest::Method::GET, &path, None).await?;
        v["oauthUrl"]
            .as_str()
            .map(str::to_owned)
            .context("the API's answer has no oauthUrl")
    }

    /// Waits until the daemon's `/oauth/callback` has received the consent
    /// of `consent_url` (polling `GET /oauth/states/{state}` every
    /// `every`), and returns its code and state for `POST /instances`.
    /// Fails when the consent was declined or the state expired.
    pub async fn await_consent(
        &self,
        consent_url: &str,
        every: std::time::Duration,
    ) -> anyhow::Result<(String, String)> {
        let state = url::Url::parse(consent_url)
            .with_context(|| format!("the consent URL {consent_url} is not a URL"))?
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .context("the consent URL carries no state; the connector did not put it in")?;
        let path = format!(
            "/oauth/states/{}",
            url::form_urlencoded::byte_serialize(state.as_bytes()).collect::<String>()
        );
        loop {
            let v = self.call(reqwest::Method::GET, &path, None).await?;
            match v["status"].as_str().unwrap_or_default() {
                "returned" => {
                    let code = v["code"]
                        .as_str()
                        .context("the daemon says the consent returned but shows no code")?;
                    return Ok((code.to_owned(), state));
                }
                "waiting" => tokio::time::sleep(every).await,
                "declined" => bail!(
                    "the consent was declined at the provider (or its state was used without \
                     Ward's callback): nothing was created; run `ward connect` again"
                ),
                "used" => bail!(
                    "this consent's code was already exchanged by another request; check \
                     `ward instances list`, or run `ward connect` again"
                ),
                "expired" => bail!(
                    "the consent expired before the provider sent the browser back to Ward \
                     (api.oauth_state_ttl_secs); run `ward connect` again"
                ),
                other => bail!("unexpected consent status {other:?} from the daemon"),
            }
        }
    }

    /// `ward instances test`
    pub async fn test(&self, id: &str) -> anyhow::Result<bool> {
        let v = self
            .call(
                reqwest::Method::POST,
                &format!("/instances/{id}/test"),
                None,
            )
            .await?;
        print_test(&v);
        Ok(v["ok"] == true)
    }

    /// `ward instances reconnect`
    pub async fn reconnect(&self, id: &str, provider: &ProviderArgs) -> anyhow::Result<()> {
        let v = self
            .call(
                reqwest::Method::PUT,
                &format!("/instances/{id}/credentials"),
                Some(json!({"providerData": provider.to_json()?})),
            )
            .await?;
        print_test(&v);
        Ok(())
    }

    /// `ward instances delete`
    pub async fn delete(&self, id: &str) -> anyhow::Result<()> {
        self.call(reqwest::Method::DELETE, &format!("/instances/{id}"), None)
            .await?;
        println!("deleted instance {id}");
        Ok(())
    }

    /// `ward events --instance ID [--follow]`: prints the last `limit`
    /// events oldest first; with `follow`, keeps printing new ones.
    pub async fn events(&self, id: &str, limit: u32, follow: bool) -> anyhow::Result<()> {
        let latest = self
            .call(
                reqwest::Method::GET,
                &format!("/instances/{id}/events?limit={limit}"),
                None,
            )
            .await?;
        let mut events: Vec<Value> = latest["events"].as_array().cloned().unwrap_or_default();
        events.reverse();
        if events.is_empty() {
            println!("no events stored for instance {id} yet");
        }
        print_event_header();
        for e in &events {
            print_event(e);
        }
        if !follow {
            return Ok(());
        }
        // Oldest-first keyset pages from the newest event shown pick up
        // whatever is stored after it.
        let mut cursor = events.last().map(|e| {
            ward_api::cursor::encode_keyed(
                e["timeMs"].as_i64().unwrap_or(0),
                e["eventId"].as_str().unwrap_or(""),
            )
        });
        loop {
            let path = match &cursor {
                Some(c) => format!("/instances/{id}/events?order=oldest&limit=1000&cursor={c}"),
                None => format!("/instances/{id}/events?order=oldest&limit=1000"),
            };
            let page = self.call(reqwest::Method::GET, &path, None).await?;
            let got = page["events"].as_array().cloned().unwrap_or_default();
            for e in &got {
                print_event(e);
            }
            if let Some(c) = page["nextCursor"].as_str() {
                cursor = Some(c.to_owned());
            }
            if got.is_empty() {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

impl Client {
    /// `ward events export`: streams `GET /events/export` to stdout;
    /// returns how many events (lines) it wrote.
    pub async fn export(
        &self,
        instance: Option<&str>,
        since: Option<&str>,
        format: &str,
    ) -> anyhow::Result<u64> {
        use std::io::Write;
        let mut query: Vec<(&str, String)> = vec![("format", format.to_owned())];
        if let Some(i) = instance {
            query.push(("instance", i.to_owned()));
        }
        if let Some(s) = since {
            query.push(("since", since_ms(s)?.to_string()));
        }
        let url = url::Url::parse_with_params(&format!("{}/events/export", self.url), &query)
            .with_context(|| format!("the API URL {} is not a URL", self.url))?;
        let mut resp = self
            .http
            .get(url)
            .header("authorization", &self.auth)
            // An export of millions of events takes longer than any call.
            .timeout(Duration::from_secs(24 * 3600))
            .send()
            .await
            .with_context(|| {
                format!(
                    "cannot reach the Ward API at {}; is `ward serve` running?",
                    self.url
                )
            })?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            let msg = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or(text);
            bail!("GET /events/export: {status}: {msg}");
        }
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let mut lines = 0u64;
        while let Some(chunk) = resp.chunk().await.context(
            "the export stopped before its end (the daemon failed mid-stream); run it again",
        )? {
            lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
            out.write_all(&chunk)?;
        }
        out.flush()?;
        Ok(lines)
    }

    /// `ward sinks list`.
    pub async fn sinks(&self) -> anyhow::Result<Value> {
        let list = self.call(reqwest::Method::GET, "/sinks", None).await?;
        let sinks = list["sinks"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if sinks.is_empty() {
            println!(
                "no sinks; add [[sinks]] tables to ward.toml (README: Sending events to a SIEM)"
            );
            return Ok(list);
        }
        println!(
            "{:<20}  {:<5}  {:<5}  {:<12}  {:>10}  {:>10}  {:>8}  LAST ERROR",
            "NAME", "TYPE", "FMT", "STATE", "DELIVERED", "LAG", "LAG(s)"
        );
        for s in sinks {
            println!(
                "{:<20}  {:<5}  {:<5}  {:<12}  {:>10}  {:>10}  {:>8}  {}",
                s["name"].as_str().unwrap_or(""),
                s["type"].as_str().unwrap_or(""),
                s["format"].as_str().unwrap_or(""),
                s["state"].as_str().unwrap_or(""),
                s["delivered"].as_u64().unwrap_or(0),
                s["lagEvents"].as_u64().unwrap_or(0),
                s["lagSeconds"].as_i64().unwrap_or(0),
                s["lastError"].as_str().unwrap_or("")
            );
        }
        Ok(list)
    }

    /// `ward sinks secret NAME` (value from stdin).
    pub async fn sink_secret(&self, name: &str, value: &str) -> anyhow::Result<()> {
        if value.is_empty() {
            bail!("no secret on stdin: `printf %s \"$TOKEN\" | ward sinks secret {name}`");
        }
        self.call(
            reqwest::Method::PUT,
            &format!("/sink-secrets/{name}"),
            Some(json!({ "value": value })),
        )
        .await?;
        println!("stored sink secret {name} (encrypted; delivery picks it up on its next batch)");
        Ok(())
    }

    /// `ward sinks resume NAME`.
    pub async fn resume_sink(&self, name: &str) -> anyhow::Result<()> {
        let s = self
            .call(
                reqwest::Method::POST,
                &format!("/sinks/{name}/resume"),
                None,
            )
            .await?;
        println!("sink {name}: {}", s["state"].as_str().unwrap_or(""));
        Ok(())
    }
}

/// `--since`: RFC 3339 and epoch ms pass through; `30m`, `24h`, `7d`, `90s`
/// become now minus that age, in ms.
pub fn since_ms(v: &str) -> anyhow::Result<String> {
    let units = [
        ('s', 1_000i64),
        ('m', 60_000),
        ('h', 3_600_000),
        ('d', 86_400_000),
    ];
    for (suffix, ms) in units {
        if let Some(n) = v.strip_suffix(suffix).and_then(|n| n.parse::<i64>().ok()) {
            let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
            let now = i64::try_from(now).unwrap_or(i64::MAX);
            return Ok((now - n.saturating_mul(ms)).to_string());
        }
    }
    Ok(v.to_owned())
}

fn print_test(v: &Value) {
    // `POST /instances` returns the instance at the top level; test and
    // reconnect nest it under `instance`.
    let i = if v["instance"].is_object() {
        &v["instance"]
    } else {
        v
    };
    println!(
        "instance {} ({}): {}{}",
        i["id"].as_str().unwrap_or(""),
        i["name"].as_str().unwrap_or(""),
        i["status"]["state"].as_str().unwrap_or(""),
        i["status"]["message"]
            .as_str()
            .map(|m| format!(": {m}"))
            .unwrap_or_default()
    );
    if let Some(e) = v["error"].as_str().or(v["testError"].as_str()) {
        println!("  test failed: {e}");
    }
    for c in v["checks"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        println!(
            "  [{}] {}: {}",
            if c["ok"] == true { "ok" } else { "FAIL" },
            c["name"].as_str().unwrap_or(""),
            c["message"].as_str().unwrap_or("")
        );
    }
}

/// The `code` and `state` from what the consent's callback showed: its
/// JSON answer (`{"element", "code", "state"}`) or the callback URL from
/// the browser's address bar.
pub fn parse_callback(pasted: &str) -> anyhow::Result<(String, String)> {
    let pasted = pasted.trim();
    let (code, state) = if pasted.starts_with('{') {
        let v: Value = serde_json::from_str(pasted)
            .context("the pasted text starts like JSON but is not JSON")?;
        (
            v["code"].as_str().map(str::to_owned),
            v["state"].as_str().map(str::to_owned),
        )
    } else {
        let url = url::Url::parse(pasted).with_context(
            || "paste the callback's JSON answer or the callback URL from the address bar",
        )?;
        let get = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        if let Some(error) = get("error") {
            bail!(
                "the provider refused the consent ({error}{}): nothing was created; run                  `ward connect` again",
                get("error_description")
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            );
        }
        (get("code"), get("state"))
    };
    match (code, state) {
        (Some(c), Some(s)) if !c.is_empty() && !s.is_empty() => Ok((c, s)),
        _ => bail!("no code and state in what was pasted; paste the callback's whole answer"),
    }
}

/// Whether `POST /instances` left the instance working (the exit status
/// of `ward instances create`, like `ward instances test`'s).
pub fn created_ok(created: &Value) -> bool {
    created["valid"] == true && created["status"]["state"] != "error"
}

const ACTION_WIDTH: usize = 40;
const ACTOR_WIDTH: usize = 30;

/// `s` cut or padded to exactly `width` characters, so columns line up
/// whatever the provider's action names and e-mail addresses.
fn column(s: &str, width: usize) -> String {
    if s.chars().count() > width {
        let mut cut: String = s.chars().take(width - 1).collect();
        cut.push('…');
        cut
    } else {
        format!("{s:<width$}")
    }
}

fn print_event_header() {
    println!(
        "{:<24}  {}  {}  OUTCOME",
        "TIME (UTC)",
        column("ACTION", ACTION_WIDTH),
        column("ACTOR", ACTOR_WIDTH)
    );
}

fn print_event(e: &Value) {
    let when = e["timeMs"].as_i64().unwrap_or(0);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(when) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| when.to_string());
    let actor = e["actor"]["email"]
        .as_str()
        .or(e["actor"]["name"].as_str())
        .or(e["actor"]["id"].as_str())
        .unwrap_or("-");
    println!(
        "{time:<24}  {}  {}  {}",
        column(e["action"].as_str().unwrap_or(""), ACTION_WIDTH),
        column(actor, ACTOR_WIDTH),
        e["outcome"].as_str().unwrap_or("")
    );
}

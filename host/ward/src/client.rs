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
                        "no API secrets: set WARD_USER_SECRET and WARD_ORG_SECRET, or run where \
                         {} is readable",
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
        for i in list.as_array().map(Vec::as_slice).unwrap_or_default() {
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
        for e in &events {
            print_event(e);
        }
        if !follow {
            return Ok(());
        }
        // Oldest-first keyset pages from the newest event shown pick up
        // whatever is stored after it.
        let mut cursor = events.last().map(|e| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
                "{}:{}",
                e["time_ms"].as_i64().unwrap_or(0),
                e["event_id"].as_str().unwrap_or("")
            ))
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

fn print_event(e: &Value) {
    let when = e["time_ms"].as_i64().unwrap_or(0);
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(when) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| when.to_string());
    let actor = e["actor_email"]
        .as_str()
        .or(e["actor_name"].as_str())
        .or(e["actor_id"].as_str())
        .unwrap_or("-");
    println!(
        "{time}  {:<40}  {:<30}  {}",
        e["action"].as_str().unwrap_or(""),
        actor,
        e["outcome"].as_str().unwrap_or("")
    );
}

//! The bundled connectors on contract 0.2: each is connected against its
//! stand-in with every auth it offers (Okta: API token and OAuth; Zendesk:
//! an admin's API token, composed into `Basic` by the host, and OAuth with
//! a JSON token body; Egnyte: OAuth), and the raw token, code and client
//! secret appear nowhere in the guest's output, the SQLite files (+WAL:
//! egress rows, events, cursors, instances) or the egress rows. The client
//! secrets hold `"`, `\` and a newline, and reach the token endpoints
//! intact (the stand-ins compare them exactly). Real components, HTTPS
//! stand-ins on loopback, real SQLite.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::{Context, Result, ensure};
use base64::Engine as _;
use ward_daemon::connect::{self, Connected, NewConnection};
use ward_runtime::types::{Grant, OauthCode};
use ward_runtime::{Plugin, SecretSet};
use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::server::RecordedRequest;
use ward_standins::tls::TestCa;
use ward_standins::{EgnyteConfig, EgnyteStandIn, ZendeskConfig, ZendeskStandIn};
use ward_store::{InstanceStatus, Store};
use ward_tests::credentials::{assert_absent, consent, guest_output, stored_bytes};
use ward_tests::{EGNYTE_WASM, Loaded, OKTA_WASM, ZENDESK_WASM, load_against};

const REDIRECT: &str = "https://ward.example/oauth/callback";
/// A client secret that would break or extend a form or JSON body if the
/// host spliced it in raw.
const HOSTILE_SECRET: &str = "s3cr\"et\\with\nnewline&grant_type=x";

fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A 0.2 component of world `plugin`: no `exchange`, nothing to flag.
fn ensure_world_plugin(plugin: &Plugin) -> Result<()> {
    ensure!(
        plugin.contract_version() == "0.2.0",
        "{}",
        plugin.contract_version()
    );
    ensure!(
        !plugin.exports_exchange(),
        "the bundled connector exports exchange"
    );
    Ok(())
}

/// Connects and checks the instance is connected with every check passing.
async fn connect_ok(
    l: &Loaded,
    config: BTreeMap<String, String>,
    grant: Grant,
    host_secrets: BTreeMap<String, String>,
) -> Result<Connected> {
    let connected = connect::create(
        &l.store,
        &l.plugin,
        NewConnection {
            name: "bundled".into(),
            config,
            tags: vec![],
            grant,
            host_secrets,
        },
    )
    .await?;
    ensure!(
        connected.instance.status == InstanceStatus::Connected,
        "{:?}",
        connected.instance
    );
    let report = connected
        .report
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(report.checks.iter().all(|c| c.ok), "{report:?}");
    Ok(connected)
}

/// Asserts `values` are nowhere: guest output, SQLite (+WAL), egress rows.
async fn nowhere(l: &Loaded, connected: &Connected, values: &[&str]) -> Result<()> {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64
        - 86_400_000;
    let text = guest_output(&l.store, connected, since).await?;
    let egress = format!("{:?}", l.store.egress(&connected.instance.id, 0).await?);
    for v in values {
        ensure!(
            !egress.contains(v),
            "a credential is in the egress rows: {egress}"
        );
    }
    assert_absent(&stored_bytes(l.dir.path()), &text, values)
}

/// Builds the consent URL through the connector's `auth-url` and follows it
/// at the stand-in; returns the code.
async fn code(
    l: &Loaded,
    ca: &TestCa,
    host: (String, SocketAddr),
    config: &BTreeMap<String, String>,
) -> Result<String> {
    let unbound = l
        .plugin
        .bind("connecting", config, SecretSet::default(), None)?;
    let url = unbound
        .auth_url(REDIRECT, "st-bundled")
        .await
        .result
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let back = consent(ca, &host.0, host.1, &url).await;
    back.get("code").cloned().context("no code in the redirect")
}

fn oauth_grant(code: &str) -> Grant {
    Grant::OauthCode(OauthCode {
        code: code.to_string(),
        redirect_uri: REDIRECT.into(),
        code_verifier: None,
    })
}

fn client_secret(secret: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("client_secret".to_string(), secret.to_string())])
}

/// The stored OAuth tokens of an instance (access, and refresh if any).
async fn tokens(store: &Store, id: &str) -> Result<Vec<String>> {
    let creds = store.credentials(id).await?.context("credentials")?;
    let mut out = vec![
        creds
            .secrets
            .get("access_token")
            .context("access token")?
            .clone(),
    ];
    out.extend(creds.secrets.get("refresh_token").cloned());
    Ok(out)
}

/// The token requests the stand-in answered, with their statuses.
fn token_statuses(requests: &[RecordedRequest], path: &str) -> Vec<u16> {
    requests
        .iter()
        .filter(|r| r.method == "POST" && r.path_and_query == path)
        .map(|r| r.status)
        .collect()
}

/// Consent, then the host's code exchange with [`HOSTILE_SECRET`] as the
/// client secret; returns the connection and every value that must appear
/// nowhere (tokens, client secret, code).
async fn connect_oauth(
    l: &Loaded,
    ca: &TestCa,
    host: (String, SocketAddr),
    config: BTreeMap<String, String>,
) -> Result<(Connected, Vec<String>)> {
    let code = code(l, ca, host, &config).await?;
    let c = connect_ok(l, config, oauth_grant(&code), client_secret(HOSTILE_SECRET)).await?;
    let mut values = tokens(&l.store, &c.instance.id).await?;
    values.extend([HOSTILE_SECRET.to_string(), code]);
    Ok((c, values))
}

fn refs(values: &[String]) -> Vec<&str> {
    values.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_api_token_and_oauth_never_reach_the_guest_or_the_store_in_plain() -> Result<()> {
    let ca = TestCa::generate()?;
    let okta = OktaStandIn::start(OktaConfig::default(), &ca).await?;
    let host = (okta.host(), okta.addr());
    let l = load_against(&ca, std::slice::from_ref(&host), OKTA_WASM).await;
    ensure_world_plugin(&l.plugin)?;

    let token = OktaConfig::default().api_token;
    let c = connect_ok(
        &l,
        config(&[("domain", "ward-demo")]),
        Grant::ApiToken(token.clone()),
        BTreeMap::new(),
    )
    .await?;
    nowhere(&l, &c, &[&token]).await?;
    ensure!(
        okta.requests()
            .iter()
            .any(|r| r.auth_scheme.as_deref() == Some("SSWS") && r.status == 200)
    );

    let (client_id, _) = okta.oauth_client();
    okta.set_oauth_client(&client_id, HOSTILE_SECRET);
    let oauth_config = config(&[("domain", "ward-demo"), ("client_id", &client_id)]);
    let (c, values) = connect_oauth(&l, &ca, host, oauth_config).await?;
    ensure!(token_statuses(&okta.requests(), "/oauth2/v1/token") == [200]);
    nowhere(&l, &c, &refs(&values)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zendesk_api_token_is_composed_by_the_host_and_oauth_uses_a_safe_json_body() -> Result<()> {
    let ca = TestCa::generate()?;
    let zd = ZendeskStandIn::start(
        ZendeskConfig {
            events: 20,
            ..ZendeskConfig::default()
        },
        &ca,
    )
    .await?;
    let host = (zd.host(), zd.addr());
    let l = load_against(&ca, std::slice::from_ref(&host), ZENDESK_WASM).await;
    ensure_world_plugin(&l.plugin)?;

    // API token: the host fills `{email}/token` and stores the Basic value.
    let (email, token) = zd.api_token();
    let c = connect_ok(
        &l,
        config(&[("subdomain", "ward-demo"), ("email", &email)]),
        Grant::ApiToken(token.clone()),
        BTreeMap::new(),
    )
    .await?;
    let creds = l
        .store
        .credentials(&c.instance.id)
        .await?
        .context("credentials")?;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{email}/token:{token}"));
    ensure!(
        creds.secrets.get("basic_auth") == Some(&basic),
        "{:?}",
        creds.secrets.keys()
    );
    ensure!(creds.secrets.len() == 1);
    nowhere(&l, &c, &[&token, &basic]).await?;
    ensure!(
        zd.requests()
            .iter()
            .any(|r| r.auth_scheme.as_deref() == Some("Basic") && r.status == 200)
    );

    // OAuth: Zendesk's token endpoint takes JSON; the secret arrives intact.
    let (client_id, _) = zd.oauth_client();
    zd.set_oauth_client(&client_id, HOSTILE_SECRET);
    let oauth_config = config(&[("subdomain", "ward-demo"), ("client_id", &client_id)]);
    let (c, mut values) = connect_oauth(&l, &ca, host, oauth_config).await?;
    ensure!(token_statuses(&zd.requests(), "/oauth/tokens") == [200]);
    // The secret went into the JSON body escaped; not even that form is kept.
    let escaped = serde_json::to_string(HOSTILE_SECRET)?;
    values.push(escaped.trim_matches('"').to_string());
    nowhere(&l, &c, &refs(&values)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egnyte_oauth_code_and_tokens_stay_with_the_host() -> Result<()> {
    let ca = TestCa::generate()?;
    let eg = EgnyteStandIn::start(
        EgnyteConfig {
            events: 20,
            ..EgnyteConfig::default()
        },
        &ca,
    )
    .await?;
    let host = (eg.host(), eg.addr());
    let l = load_against(&ca, std::slice::from_ref(&host), EGNYTE_WASM).await;
    ensure_world_plugin(&l.plugin)?;

    let (client_id, _) = eg.oauth_client();
    eg.set_oauth_client(&client_id, HOSTILE_SECRET);
    let oauth_config = config(&[("domain", "ward-demo"), ("client_id", &client_id)]);
    let (c, values) = connect_oauth(&l, &ca, host, oauth_config).await?;
    ensure!(token_statuses(&eg.requests(), "/puboauth/token") == [200]);
    nowhere(&l, &c, &refs(&values)).await
}

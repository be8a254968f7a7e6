//! Contract 0.2 and the host-side credential exchange: a hostile 0.2
//! component without `exchange` (tests/plugins/probe-v02) reports
//! everything it sees; API tokens are stored by the host and OAuth codes are
//! exchanged by the host at the manifest's `token_url` (client
//! authentication and body as the manifest declares), so no credential
//! value reaches the guest or anything stored from it. Real components,
//! the Okta stand-in over HTTPS on loopback, real SQLite.

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use ward_daemon::connect::{self, NewConnection};
use ward_daemon::consent::{self, ClientSettings, CodeGrant};
use ward_runtime::types::{Grant, OauthCode};
use ward_runtime::{Plugin, SecretSet};
use ward_standins::okta::OktaConfig;
use ward_store::{InstanceStatus, OauthState};
use ward_tests::{Harness, PROBE_V02_WASM, credentials, plugin_files};

const CALLBACK: &str = "https://client.example/ward-callback";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Everything the guest produced for an instance and what Ward stored:
/// the SQLite files plus the call's own report text.
fn assert_absent(h: &Harness, guest_text: &str, values: &[&str]) -> Result<()> {
    credentials::assert_absent(&h.stored_bytes(), guest_text, values)
}

fn probe(h: &Harness, edit: Option<&dyn Fn(&str) -> String>) -> Result<std::sync::Arc<Plugin>> {
    let bytes = match edit {
        Some(edit) => plugin_files::rewrite_manifest(PROBE_V02_WASM, edit),
        None => PROBE_V02_WASM.to_vec(),
    };
    Ok(h.runtime.load(&bytes)?)
}

fn config(client_id: Option<&str>) -> BTreeMap<String, String> {
    let mut c = BTreeMap::from([("domain".to_string(), "ward-demo".to_string())]);
    if let Some(id) = client_id {
        c.insert("client_id".into(), id.into());
    }
    c
}

async fn guest_output(h: &Harness, connected: &connect::Connected) -> Result<String> {
    credentials::guest_output(&h.store, connected, 0).await
}

#[tokio::test]
async fn api_token_is_stored_by_the_host_and_never_seen_by_a_v02_guest() -> Result<()> {
    let h = Harness::start(OktaConfig::default()).await;
    let plugin = probe(&h, None)?;
    ensure!(plugin.contract_version() == "0.2.0");
    ensure!(!plugin.exports_exchange());
    let token = OktaConfig::default().api_token;
    let connected = connect::create(
        &h.store,
        &plugin,
        NewConnection {
            name: "probe".into(),
            config: config(None),
            tags: vec![],
            grant: Grant::ApiToken(format!("  {token} ")),
            host_secrets: BTreeMap::new(),
        },
    )
    .await?;
    let id = connected.instance.id.clone();
    ensure!(
        connected.instance.status == InstanceStatus::Connected,
        "{:?}",
        connected.instance
    );
    // Stored as entered (trimmed), under the manifest's secret.
    let creds = h.store.credentials(&id).await?.context("credentials")?;
    ensure!(creds.secrets.get("api_token") == Some(&token));
    // The principal comes from the test report (the guest read it).
    ensure!(creds.principal.is_some(), "principal from test-report");
    let text = guest_output(&h, &connected).await?;
    // The guest saw the echoed header only as a reference, and its
    // instance record carries the typed auth kind.
    ensure!(text.contains("SSWS {{secret:api_token}}"), "{text}");
    ensure!(text.contains("ApiToken"), "{text}");
    assert_absent(&h, &text, &[&token])?;
    // No exchange request left the host; the provider saw the token on
    // API calls only.
    let egress = h.store.egress(&id, 0).await?;
    ensure!(!egress.iter().any(|e| e.call == "exchange"), "{egress:?}");
    let requests = h.okta.requests();
    ensure!(
        requests
            .iter()
            .any(|r| r.path_and_query == "/api/v1/users/me"
                && r.auth_scheme.as_deref() == Some("SSWS")
                && r.status == 200),
        "{requests:?}"
    );
    ensure!(!requests.iter().any(|r| r.path_and_query.contains("token")));
    Ok(())
}

/// Consents at the stand-in and returns the code.
async fn code(h: &Harness, plugin: &std::sync::Arc<Plugin>, client_id: &str) -> Result<String> {
    let unbound = plugin.bind(
        "connecting",
        &config(Some(client_id)),
        SecretSet::default(),
        None,
    )?;
    let url = unbound
        .auth_url(CALLBACK, "st-probe")
        .await
        .result
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let back = h.okta_consent(&url).await;
    back.get("code").cloned().context("no code in the redirect")
}

/// Host-side code exchange with the client authentication the manifest
/// declares; returns the instance's stored access token.
async fn oauth_connect(h: &Harness, token_auth: Option<&str>) -> Result<(String, String)> {
    let edit = |m: &str| {
        m.replace(
            "token_url = \"https://{domain}.okta.com/oauth2/v1/token\"",
            &format!(
                "token_url = \"https://{{domain}}.okta.com/oauth2/v1/token\"\ntoken_auth = \"{}\"",
                token_auth.unwrap_or("client_secret_post")
            ),
        )
    };
    let plugin = probe(h, Some(&edit))?;
    let (client_id, client_secret) = h.okta.oauth_client();
    let code = code(h, &plugin, &client_id).await?;
    let connected = connect::create(
        &h.store,
        &plugin,
        NewConnection {
            name: "probe-oauth".into(),
            config: config(Some(&client_id)),
            tags: vec![],
            grant: Grant::OauthCode(OauthCode {
                code: code.clone(),
                redirect_uri: CALLBACK.into(),
                code_verifier: None,
            }),
            host_secrets: BTreeMap::from([("client_secret".to_string(), client_secret.clone())]),
        },
    )
    .await?;
    let id = connected.instance.id.clone();
    ensure!(
        connected.instance.status == InstanceStatus::Connected,
        "{:?}",
        connected.instance
    );
    let creds = h.store.credentials(&id).await?.context("credentials")?;
    let access = creds
        .secrets
        .get("access_token")
        .context("access token")?
        .clone();
    let refresh = creds
        .secrets
        .get("refresh_token")
        .context("refresh token")?
        .clone();
    ensure!(creds.secrets.get("client_secret") == Some(&client_secret));
    ensure!(creds.expires_at_ms.is_some());
    ensure!(
        creds.scopes.iter().any(|s| s == "okta.logs.read"),
        "{:?}",
        creds.scopes
    );
    let text = guest_output(h, &connected).await?;
    ensure!(text.contains("Bearer {{secret:access_token}}"), "{text}");
    ensure!(text.contains("Oauth2"), "{text}");
    assert_absent(h, &text, &[&access, &refresh, &client_secret, &code])?;
    // The exchange is in the egress log, under the instance, without values.
    let egress = h.store.egress(&id, 0).await?;
    let exchange: Vec<_> = egress.iter().filter(|e| e.call == "exchange").collect();
    ensure!(exchange.len() == 1, "{egress:?}");
    ensure!(
        exchange[0].url.ends_with("/oauth2/v1/token"),
        "{:?}",
        exchange[0]
    );
    ensure!(exchange[0].status == Some(200), "{:?}", exchange[0]);
    ensure!(h.okta.oauth_tokens_issued() == 1);
    Ok((id, access))
}

/// Records a state as Ward issues it with a consent URL for the probe, with
/// the stand-in's OAuth client and a callback the client owns.
async fn issue_state(h: &Harness, state: &'static str) -> Result<&'static str> {
    let (client_id, client_secret) = h.okta.oauth_client();
    h.store
        .create_oauth_state(&OauthState {
            state_sha256: consent::sha256_hex(state),
            element_key: "probe".into(),
            config: config(Some(&client_id)),
            client_id,
            client_secret: Some(client_secret),
            callback_url: CALLBACK.into(),
            expires_ms: now_ms() + 600_000,
            code_sha256: None,
        })
        .await?;
    Ok(state)
}

fn token_requests(h: &Harness) -> Vec<ward_standins::server::RecordedRequest> {
    h.okta
        .requests()
        .into_iter()
        .filter(|r| r.path_and_query == "/oauth2/v1/token")
        .collect()
}

#[tokio::test]
async fn oauth_code_is_exchanged_by_the_host_with_client_secret_post() -> Result<()> {
    let h = Harness::start(OktaConfig::default()).await;
    oauth_connect(&h, None).await?;
    let sent = token_requests(&h);
    ensure!(sent.len() == 1, "{sent:?}");
    // client_secret_post: the client authenticates in the body.
    ensure!(!sent[0].has_authorization, "{sent:?}");
    ensure!(sent[0].status == 200);
    Ok(())
}

#[tokio::test]
async fn oauth_code_is_exchanged_by_the_host_with_client_secret_basic() -> Result<()> {
    let h = Harness::start(OktaConfig::default()).await;
    oauth_connect(&h, Some("client_secret_basic")).await?;
    let sent = token_requests(&h);
    ensure!(sent.len() == 1, "{sent:?}");
    ensure!(sent[0].auth_scheme.as_deref() == Some("Basic"), "{sent:?}");
    ensure!(sent[0].status == 200);
    Ok(())
}

#[tokio::test]
async fn a_failing_token_endpoint_keeps_the_oauth_state_usable() -> Result<()> {
    let h = Harness::start(OktaConfig::default()).await;
    let plugin = probe(&h, None)?;
    let (client_id, _) = h.okta.oauth_client();
    let code = code(&h, &plugin, &client_id).await?;
    let state = issue_state(&h, "st-ward-issued-41").await?;
    let grant = || CodeGrant {
        code: code.clone(),
        state: Some(state.to_string()),
        client: ClientSettings::default(),
    };
    h.okta.fail_token_next(1, 503);
    let first = consent::create(
        &h.store,
        &plugin,
        grant(),
        "probe".into(),
        BTreeMap::new(),
        vec![],
    )
    .await;
    let err = first
        .err()
        .context("a 503 token endpoint must fail the connection")?;
    let message = err.to_string();
    ensure!(message.contains("503"), "{message}");
    ensure!(message.contains("post it again"), "{message}");
    ensure!(h.store.instances().await?.is_empty(), "nothing created");
    // Released: the same state and code connect once the endpoint answers.
    let second = consent::create(
        &h.store,
        &plugin,
        grant(),
        "probe".into(),
        BTreeMap::new(),
        vec![],
    )
    .await?;
    ensure!(second.instance.status == InstanceStatus::Connected);
    let sent = token_requests(&h);
    ensure!(
        sent.iter().map(|r| r.status).collect::<Vec<_>>() == vec![503, 200],
        "{sent:?}"
    );
    ensure!(h.okta.oauth_tokens_issued() == 1);
    // Consumed now: a third try is refused before any request.
    let third = consent::create(
        &h.store,
        &plugin,
        grant(),
        "probe".into(),
        BTreeMap::new(),
        vec![],
    )
    .await;
    ensure!(third.is_err());
    ensure!(token_requests(&h).len() == 2);
    Ok(())
}

#[tokio::test]
async fn a_rejected_code_consumes_the_oauth_state() -> Result<()> {
    let h = Harness::start(OktaConfig::default()).await;
    let plugin = probe(&h, None)?;
    let state = issue_state(&h, "st-ward-issued-42").await?;
    let grant = CodeGrant {
        code: "never-issued".into(),
        state: Some(state.to_string()),
        client: ClientSettings::default(),
    };
    let err = consent::create(
        &h.store,
        &plugin,
        grant.clone(),
        "p".into(),
        BTreeMap::new(),
        vec![],
    )
    .await
    .err()
    .context("an unknown code must be refused")?;
    ensure!(err.to_string().contains("invalid_grant"), "{err}");
    let again = consent::create(
        &h.store,
        &plugin,
        grant,
        "p".into(),
        BTreeMap::new(),
        vec![],
    )
    .await
    .err()
    .context("the state is used up")?;
    ensure!(
        matches!(again, consent::ConsentError::UnknownState),
        "{again}"
    );
    ensure!(token_requests(&h).len() == 1);
    Ok(())
}

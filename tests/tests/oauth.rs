//! The Okta connector's OAuth mode at runtime level: auth URL → the
//! stand-in's consent (302 with code and state) → the host's exchange at
//! the manifest's token URL → Bearer calls → host-side refresh. Real component, real
//! HTTPS authorization server on loopback, real SQLite file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ward_daemon::connect::{self, ConnectError, NewConnection};
use ward_daemon::refresh::{RefreshError, Refresher};
use ward_runtime::types::{Credentials, Grant, OauthCode, PluginError, Secret};
use ward_runtime::{CallError, Plugin, SecretSet};
use ward_standins::okta::OktaConfig;
use ward_store::Instance;
use ward_tests::Harness;

const REDIRECT: &str = "https://ward.example/oauth/callback";
const STATE: &str = "st-4f1c2a9b";

fn sixty_days_ago() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    now - 60 * 86_400_000
}

fn config(client_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("domain".to_string(), "ward-demo".to_string()),
        ("client_id".to_string(), client_id.to_string()),
    ])
}

/// A browser that stops at the first redirect, like the operator's would
/// hand the callback to Ward.
fn browser(h: &Harness) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(h.ca.ca_pem().as_bytes()).unwrap()])
        .resolve(&h.okta.host(), h.okta.addr())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Runs `auth-url`, follows it at the stand-in and returns the callback's
/// query parameters.
async fn consent(h: &Harness, plugin: &Arc<Plugin>, client_id: &str) -> BTreeMap<String, String> {
    let unbound = plugin
        .bind("connecting", &config(client_id), SecretSet::default(), None)
        .unwrap();
    let url = unbound.auth_url(REDIRECT, STATE).await.result.unwrap();
    assert!(
        url.starts_with("https://ward-demo.okta.com/oauth2/v1/authorize?"),
        "{url}"
    );
    let response = browser(h).get(&url).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(REDIRECT), "{location}");
    url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Connects with the code: the host exchanges it at the manifest's
/// `token_url` (the 0.2 connector never sees it), stores the credentials
/// and runs the test. Returns the instance and its stored OAuth secrets
/// (without the client secret), or what the exchange was refused with.
async fn exchange(
    h: &Harness,
    plugin: &Arc<Plugin>,
    client_id: &str,
    client_secret: &str,
    code: &str,
) -> Result<(Instance, Credentials), CallError> {
    let created = connect::create(
        &h.store,
        plugin,
        NewConnection {
            name: "okta-oauth".into(),
            config: config(client_id),
            tags: Vec::new(),
            grant: Grant::OauthCode(OauthCode {
                code: code.to_string(),
                redirect_uri: REDIRECT.to_string(),
                code_verifier: None,
            }),
            host_secrets: BTreeMap::from([(
                "client_secret".to_string(),
                client_secret.to_string(),
            )]),
        },
    )
    .await;
    let connected = match created {
        Ok(connected) => connected,
        Err(ConnectError::Call { source, .. }) => return Err(source),
        Err(e) => panic!("connecting failed before the exchange: {e}"),
    };
    let id = connected.instance.id.clone();
    // The token request went out with the secret substituted by the host
    // and logged without it.
    for e in h.store.egress(&id, 0).await.unwrap() {
        assert!(!e.url.contains(client_secret));
    }
    let stored = h.store.credentials(&id).await.unwrap().unwrap();
    assert_eq!(
        stored.secrets.get("client_secret").map(String::as_str),
        Some(client_secret)
    );
    let creds = Credentials {
        secrets: stored
            .secrets
            .iter()
            .filter(|(name, _)| name.as_str() != "client_secret")
            .map(|(name, value)| Secret {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        expires_at: stored.expires_at_ms,
        scopes: stored.scopes.clone(),
        principal: stored.principal.clone(),
    };
    Ok((connected.instance, creds))
}

async fn connected(h: &Harness, plugin: &Arc<Plugin>) -> (Instance, Credentials) {
    let (client_id, client_secret) = h.okta.oauth_client();
    let callback = consent(h, plugin, &client_id).await;
    assert_eq!(callback["state"], STATE);
    exchange(h, plugin, &client_id, &client_secret, &callback["code"])
        .await
        .unwrap()
}

async fn bind_stored(
    h: &Harness,
    plugin: &Arc<Plugin>,
    instance: &Instance,
) -> ward_runtime::Bound {
    let creds = h.store.credentials(&instance.id).await.unwrap().unwrap();
    plugin
        .bind(
            &instance.id,
            &instance.config,
            SecretSet::new(creds.secrets),
            None,
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_code_flow_then_bearer_calls() {
    let h = Harness::start(OktaConfig {
        events: 300,
        ..OktaConfig::default()
    })
    .await;
    let plugin = h.okta_plugin();
    let (instance, creds) = connected(&h, &plugin).await;
    let names: Vec<&str> = creds.secrets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["access_token", "refresh_token"]);
    assert!(creds.scopes.iter().any(|s| s == "okta.logs.read"));
    assert!(creds.expires_at.is_some());
    assert_eq!(h.okta.oauth_tokens_issued(), 1);

    let stored = h.store.credentials(&instance.id).await.unwrap().unwrap();
    assert!(stored.secrets.contains_key("client_secret"));

    let bound = bind_stored(&h, &plugin, &instance).await;
    let report = bound.test().await.result.unwrap();
    assert!(report.checks.iter().all(|c| c.ok), "{report:?}");
    assert!(report.checks.iter().any(|c| c.name == "scope-present"));
    assert!(report.principal.is_some());

    let page = bound
        .fetch_audit(sixty_days_ago(), None)
        .await
        .result
        .unwrap();
    assert_eq!(page.events.len(), 300);
    // Every API call carried the Bearer token, none the SSWS form.
    let api: Vec<_> = h
        .okta
        .requests()
        .into_iter()
        .filter(|r| r.path_and_query.starts_with("/api/v1/"))
        .collect();
    assert!(!api.is_empty());
    for r in &api {
        assert_eq!(
            r.auth_scheme.as_deref(),
            Some("Bearer"),
            "{}",
            r.path_and_query
        );
        assert_eq!(r.status, 200, "{}", r.path_and_query);
    }

    // The code is single-use.
    let again = exchange(
        &h,
        &plugin,
        &h.okta.oauth_client().0,
        &h.okta.oauth_client().1,
        "used-or-made-up",
    )
    .await;
    assert!(
        matches!(again, Err(CallError::Plugin(PluginError::Unauthorized(_)))),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_consent_and_bad_client() {
    let h = Harness::start(OktaConfig {
        events: 10,
        ..OktaConfig::default()
    })
    .await;
    let plugin = h.okta_plugin();
    let (client_id, _) = h.okta.oauth_client();

    h.okta.set_oauth_decline(true);
    let callback = consent(&h, &plugin, &client_id).await;
    assert_eq!(callback["error"], "access_denied");
    assert_eq!(callback["state"], STATE);
    assert!(!callback.contains_key("code"));
    assert_eq!(h.okta.oauth_codes_issued(), 0);

    h.okta.set_oauth_decline(false);
    let callback = consent(&h, &plugin, &client_id).await;
    let wrong = exchange(&h, &plugin, &client_id, "not-the-secret", &callback["code"]).await;
    match wrong {
        Err(CallError::Plugin(PluginError::InvalidConfig(m))) => {
            assert!(m.contains("client secret"), "{m}");
            assert!(!m.contains("not-the-secret"));
        }
        other => panic!("expected invalid-config, got {other:?}"),
    }
    assert_eq!(h.okta.oauth_tokens_issued(), 0);

    // Without a client id the connector says what to set.
    let no_id = BTreeMap::from([("domain".to_string(), "ward-demo".to_string())]);
    let unbound = plugin
        .bind("x", &no_id, SecretSet::default(), None)
        .unwrap();
    match unbound.auth_url(REDIRECT, STATE).await.result {
        Err(CallError::Plugin(PluginError::InvalidConfig(m))) => assert!(m.contains("client_id")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_scope_fails_scope_present() {
    let h = Harness::start(OktaConfig {
        events: 10,
        ..OktaConfig::default()
    })
    .await;
    h.okta.set_oauth_granted_scopes(Some(vec![
        "okta.users.read".into(),
        "offline_access".into(),
    ]));
    let plugin = h.okta_plugin();
    let (instance, _) = connected(&h, &plugin).await;
    let bound = bind_stored(&h, &plugin, &instance).await;
    let report = bound.test().await.result.unwrap();
    let scope = report
        .checks
        .iter()
        .find(|c| c.name == "scope-present")
        .unwrap();
    assert!(!scope.ok);
    assert!(
        scope.message.contains("okta.logs.read"),
        "{}",
        scope.message
    );
    assert!(matches!(
        bound.fetch_audit(sixty_days_ago(), None).await.result,
        Err(CallError::Plugin(PluginError::Forbidden(_)))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_answer_without_a_refresh_token_is_refused_when_the_manifest_needs_refresh() {
    let h = Harness::start(OktaConfig {
        events: 10,
        ..OktaConfig::default()
    })
    .await;
    // The consent grants everything but `offline_access`: the token
    // answer then has no refresh token, and the instance would die an
    // hour later.
    h.okta.set_oauth_granted_scopes(Some(vec![
        "okta.logs.read".into(),
        "okta.users.read".into(),
    ]));
    let plugin = h.okta_plugin();
    let (client_id, client_secret) = h.okta.oauth_client();
    let callback = consent(&h, &plugin, &client_id).await;
    let refused = exchange(&h, &plugin, &client_id, &client_secret, &callback["code"]).await;
    match refused {
        Err(CallError::Plugin(PluginError::InvalidConfig(m))) => {
            assert!(
                m.contains("no refresh token") && m.contains("offline_access"),
                "{m}"
            );
        }
        other => panic!("expected invalid-config, got {other:?}"),
    }
    assert!(h.store.instances().await.unwrap().is_empty());
    assert_eq!(h.okta.oauth_tokens_issued(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_refreshes_once_under_concurrency() {
    let h = Harness::start(OktaConfig {
        events: 50,
        ..OktaConfig::default()
    })
    .await;
    // Inside the five-minute margin from the start: due at once.
    h.okta.set_access_token_lifetime(Duration::from_secs(120));
    let plugin = h.okta_plugin();
    let (instance, creds) = connected(&h, &plugin).await;
    let old_refresh = creds
        .secrets
        .iter()
        .find(|s| s.name == "refresh_token")
        .unwrap()
        .value
        .clone();
    let client_secret = h.okta.oauth_client().1;
    h.okta.set_access_token_lifetime(Duration::from_secs(3600));

    let refresher = Arc::new(Refresher::default());
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (r, store, plugin, instance) = (
            refresher.clone(),
            h.store.clone(),
            plugin.clone(),
            instance.clone(),
        );
        tasks.push(tokio::spawn(async move {
            r.ensure_fresh(&store, &plugin, &instance).await
        }));
    }
    let mut refreshed = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            refreshed += 1;
        }
    }
    assert_eq!(refreshed, 1);
    assert_eq!(h.okta.oauth_refreshes(), 1);
    // Fresh now: nothing to do.
    assert!(
        !refresher
            .ensure_fresh(&h.store, &plugin, &instance)
            .await
            .unwrap()
    );

    let stored = h.store.credentials(&instance.id).await.unwrap().unwrap();
    assert_ne!(stored.secrets["refresh_token"], old_refresh, "rotated");
    assert_eq!(stored.secrets["client_secret"], client_secret);
    let bound = bind_stored(&h, &plugin, &instance).await;
    assert_eq!(
        bound
            .fetch_audit(sixty_days_ago(), None)
            .await
            .result
            .unwrap()
            .events
            .len(),
        50
    );

    let egress = h.store.egress(&instance.id, 50).await.unwrap();
    let refresh: Vec<_> = egress
        .iter()
        .filter(|e| e.call == "oauth-refresh")
        .collect();
    assert_eq!(refresh.len(), 1);
    assert!(refresh[0].allowed);
    assert_eq!(refresh[0].status, Some(200));
    assert_eq!(refresh[0].url, "https://ward-demo.okta.com/oauth2/v1/token");
    for e in &egress {
        for secret in stored.secrets.values() {
            assert!(!e.url.contains(secret.as_str()));
            assert!(
                !e.reason
                    .clone()
                    .unwrap_or_default()
                    .contains(secret.as_str())
            );
        }
    }

    // A revoked grant: the refresh is refused and the message says reconnect.
    h.okta.revoke_oauth_tokens();
    let mut creds = stored.clone();
    creds.expires_at_ms = Some(0);
    h.store.put_credentials(&instance.id, &creds).await.unwrap();
    let err = refresher
        .ensure_fresh(&h.store, &plugin, &instance)
        .await
        .unwrap_err();
    assert!(matches!(err, RefreshError::Rejected { .. }));
    assert!(
        err.to_string().contains("credentials rejected: reconnect"),
        "{err}"
    );
}

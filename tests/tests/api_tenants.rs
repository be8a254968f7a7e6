//! Tenant addresses as operators type them, through Ward's REST API.
//!
//! Each connector's tenant field takes a bare name, a full host name or a
//! pasted URL, stores the normalised value and echoes it in the instance's
//! configuration; anything that cannot be a tenant of that provider is
//! refused with 422 and an accepted example, and nothing is stored or sent.
//! Okta orgs on `oktapreview.com` and on a custom URL domain connect and
//! backfill against stand-ins answering under those names; the custom
//! domain is flagged in the instance view as an operator-named host.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_standins::egnyte::{EgnyteConfig, EgnyteStandIn};
use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::tls::TestCa;
use ward_standins::zendesk::{ZendeskConfig, ZendeskStandIn};
use ward_tests::api::ApiHarness;

const BACKFILL: Duration = Duration::from_secs(60);

async fn okta(cfg: OktaConfig) -> (ApiHarness, OktaStandIn) {
    let ca = TestCa::generate().unwrap();
    let org = OktaStandIn::start(cfg, &ca).await.unwrap();
    let mut hosts = vec![(org.host(), org.addr())];
    hosts.extend(org.custom_domain().map(|c| (c, org.addr())));
    let h = ApiHarness::start(ca, hosts, |_| {}).await;
    (h, org)
}

fn small_okta(org: &str) -> OktaConfig {
    OktaConfig {
        org: org.to_owned(),
        events: 40,
        users: 5,
        ..OktaConfig::default()
    }
}

async fn delete(h: &ApiHarness, id: &str) {
    let (status, body) = h
        .send(Method::DELETE, &format!("/instances/{id}"), None)
        .await;
    assert!(status.is_success(), "{body}");
}

/// Connects once per typed form, checks the value stored and echoed for
/// `field`, and deletes the instance again. Returns the created answers.
async fn assert_each_form_accepted<F, Fut>(
    h: &ApiHarness,
    field: &str,
    want: &str,
    forms: &[&'static str],
    connect: F,
) -> Vec<Value>
where
    F: Fn(&'static str) -> Fut,
    Fut: Future<Output = (StatusCode, Value)>,
{
    let mut answers = Vec::new();
    for typed in forms {
        let (status, created) = connect(typed).await;
        assert_eq!(status, StatusCode::CREATED, "{typed:?}: {created}");
        assert_eq!(
            created["configuration"][field], want,
            "{typed:?}: {created}"
        );
        assert_eq!(created["operatorNamedHosts"], json!([]), "{created}");
        let id = created["id"].as_str().unwrap();
        let (_, shown) = h.get(&format!("/instances/{id}")).await;
        assert_eq!(shown["configuration"], created["configuration"]);
        delete(h, id).await;
        answers.push(created);
    }
    answers
}

/// A 422 whose message carries `example`; nothing was created.
async fn assert_refused(h: &ApiHarness, answer: (StatusCode, Value), example: &str, typed: &str) {
    let (status, body) = answer;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{typed:?}: {body}"
    );
    let message = body.to_string();
    assert!(message.contains(example), "{typed:?}: {message}");
    assert!(h.instance_ids().await.is_empty(), "{typed:?} stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_org_address_in_every_form_is_normalised_and_echoed() {
    let (h, org) = okta(small_okta("acme")).await;
    let token = OktaConfig::default().api_token;
    let forms = [
        "acme",
        "acme.okta.com",
        "https://acme.okta.com/",
        "https://ACME.okta.com/admin/dashboard?tab=1",
        "  acme.okta.com.  ",
        "http://acme.okta.com",
    ];
    let (h, token) = (&h, &token);
    let created = assert_each_form_accepted(h, "domain", "acme", &forms, |typed| async move {
        h.connect_token("okta", token, &[("domain", typed)], typed)
            .await
    })
    .await;
    for c in created {
        assert_eq!(c["configuration"]["base_domain"], "okta.com", "{c}");
        assert!(c["configuration"].get("custom_domain").is_none(), "{c}");
    }
    assert!(
        org.requests()
            .iter()
            .all(|r| r.host.as_deref() == Some("acme.okta.com")),
        "a request left for another host"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_refuses_what_cannot_be_an_org_with_an_example_and_stores_nothing() {
    let (h, org) = okta(small_okta("acme")).await;
    let token = OktaConfig::default().api_token;
    let example = "enter `acme` or `acme.okta.com`";
    for typed in [
        "acme.evil.com",
        "https://acme.okta.com.evil.com/",
        "acme.okta.com:8443",
        "admin@acme.okta.com",
        "https://user:pw@acme.okta.com/",
        "10.0.0.1",
        "ftp://acme.okta.com/",
        "a.b.okta.com",
        "login.acme.com",
        "",
    ] {
        let answer = h
            .connect_token("okta", &token, &[("domain", typed)], typed)
            .await;
        assert_refused(&h, answer, example, typed).await;
    }
    // The refusal names every Okta host family and the custom-domain field.
    let (_, body) = h
        .connect_token("okta", &token, &[("domain", "acme.evil.com")], "x")
        .await;
    let message = body.to_string();
    for family in [
        "okta-emea.com",
        "oktapreview.com",
        "okta-gov.com",
        "okta.mil",
        "okta-miltest.com",
        "trex-govcloud.com",
    ] {
        assert!(message.contains(family), "{message}");
    }
    assert!(message.contains("custom_domain"), "{message}");

    for typed in [
        "login.acme.com:444",
        "127.0.0.1",
        "https://u@login.acme.com/",
        "[::1]",
    ] {
        let answer = h
            .connect_token(
                "okta",
                &token,
                &[("domain", "acme"), ("custom_domain", typed)],
                typed,
            )
            .await;
        assert_refused(&h, answer, "such as `login.acme.com`", typed).await;
    }
    let answer = h
        .connect_token(
            "okta",
            &token,
            &[("domain", "acme"), ("base_domain", "evil.com")],
            "cell",
        )
        .await;
    assert_refused(&h, answer, "okta.com, okta-emea.com", "base_domain").await;
    let answer = h
        .connect_token(
            "okta",
            &token,
            &[
                ("domain", "acme.oktapreview.com"),
                ("base_domain", "okta.com"),
            ],
            "conflict",
        )
        .await;
    assert_refused(&h, answer, "give one of them", "conflict").await;
    assert!(org.requests().is_empty(), "{:?}", org.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_preview_org_connects_and_backfills_through_the_api() {
    let (h, org) = okta(OktaConfig {
        base_domain: "oktapreview.com".to_owned(),
        ..small_okta("acme-sandbox")
    })
    .await;
    assert_eq!(org.host(), "acme-sandbox.oktapreview.com");
    let token = OktaConfig::default().api_token;
    let (status, created) = h
        .connect_token(
            "okta",
            &token,
            &[(
                "domain",
                "https://acme-sandbox.oktapreview.com/admin/dashboard",
            )],
            "Okta preview",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["valid"], true, "{created}");
    assert_eq!(created["configuration"]["domain"], "acme-sandbox");
    assert_eq!(created["configuration"]["base_domain"], "oktapreview.com");
    assert_eq!(created["operatorNamedHosts"], json!([]));
    let id = created["id"].as_str().unwrap();
    h.wait_instance(id, BACKFILL, |i| i["status"]["eventsStored"] == 40)
        .await;
    assert_eq!(h.event_ids(id).await.len(), 40);

    let received = org.requests();
    assert!(
        received
            .iter()
            .any(|r| r.path_and_query.starts_with("/api/v1/logs"))
    );
    for r in &received {
        assert_eq!(
            r.host.as_deref(),
            Some("acme-sandbox.oktapreview.com"),
            "{r:?}"
        );
        assert_eq!(r.auth_scheme.as_deref(), Some("SSWS"), "{r:?}");
    }
    let egress = h.egress_hosts(id).await;
    assert!(!egress.is_empty());
    for (host, allowed) in egress {
        assert_eq!(host, "acme-sandbox.oktapreview.com");
        assert!(allowed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_custom_domain_org_backfills_and_is_flagged_as_operator_named() {
    let (h, org) = okta(OktaConfig {
        custom_domain: Some("login.acme-corp.example".to_owned()),
        ..small_okta("acme")
    })
    .await;
    let token = OktaConfig::default().api_token;
    let (status, created) = h
        .connect_token(
            "okta",
            &token,
            &[
                ("domain", "acme.okta.com"),
                ("custom_domain", "https://Login.Acme-Corp.example/"),
            ],
            "Okta custom domain",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["valid"], true, "{created}");
    let config = &created["configuration"];
    assert_eq!(config["domain"], "acme");
    assert_eq!(config["custom_domain"], "login.acme-corp.example");
    let flagged = json!([{
        "host": "login.acme-corp.example",
        "note": "token sent to an operator-named host",
    }]);
    assert_eq!(created["operatorNamedHosts"], flagged, "{created}");
    let id = created["id"].as_str().unwrap();
    let (_, shown) = h.get(&format!("/instances/{id}")).await;
    assert_eq!(shown["operatorNamedHosts"], flagged);
    h.wait_instance(id, BACKFILL, |i| i["status"]["eventsStored"] == 40)
        .await;
    assert_eq!(h.event_ids(id).await.len(), 40);

    // Every call went to the custom domain, none to the org's okta.com host.
    let received = org.requests();
    assert!(
        received
            .iter()
            .any(|r| r.path_and_query.starts_with("/api/v1/logs"))
    );
    for r in &received {
        assert_eq!(r.host.as_deref(), Some("login.acme-corp.example"), "{r:?}");
    }
    for (host, allowed) in h.egress_hosts(id).await {
        assert_eq!(host, "login.acme-corp.example");
        assert!(allowed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zendesk_subdomain_in_every_form_is_normalised_and_refusals_show_an_example() {
    let ca = TestCa::generate().unwrap();
    let zd = ZendeskStandIn::start(
        ZendeskConfig {
            subdomain: "acme".to_owned(),
            events: 20,
            users: 5,
            ..ZendeskConfig::default()
        },
        &ca,
    )
    .await
    .unwrap();
    let h = ApiHarness::start(ca, vec![(zd.host(), zd.addr())], |_| {}).await;
    let (email, token) = zd.api_token();
    let (h, email, token) = (&h, &email, &token);
    let connect = |typed: &'static str| async move {
        h.connect_token(
            "zendesk",
            token,
            &[("subdomain", typed), ("email", email)],
            typed,
        )
        .await
    };
    let forms = [
        "acme",
        "acme.zendesk.com",
        "https://acme.zendesk.com/agent/dashboard",
        "ACME.ZENDESK.COM/",
    ];
    // Refusals first: once an accepted form has created an instance, its
    // worker's backfill requests would blur what the refusals sent.
    for typed in [
        "acme.zendesk.com.evil.io",
        "acme.freshdesk.com",
        "https://acme.zendesk.com:8443/",
        "support.acme.zendesk.com",
    ] {
        let answer = connect(typed).await;
        assert_refused(h, answer, "enter `acme` or `acme.zendesk.com`", typed).await;
    }
    assert_eq!(zd.requests().len(), 0, "a refused address reached Zendesk");
    assert_each_form_accepted(h, "subdomain", "acme", &forms, connect).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egnyte_domain_in_every_form_is_normalised_through_the_oauth_flow() {
    let ca = TestCa::generate().unwrap();
    let eg = EgnyteStandIn::start(
        EgnyteConfig {
            domain: "acme".to_owned(),
            events: 20,
            users: 5,
            ..EgnyteConfig::default()
        },
        &ca,
    )
    .await
    .unwrap();
    let h = ApiHarness::start(ca, vec![(eg.host(), eg.addr())], |_| {}).await;
    let (client_id, secret) = eg.oauth_client();
    let forms = [
        "acme",
        "acme.egnyte.com",
        "https://acme.egnyte.com/app/index.do#storage",
    ];
    let (h, client_id, secret) = (&h, &client_id, &secret);
    assert_each_form_accepted(h, "domain", "acme", &forms, |typed| async move {
        h.connect_oauth("egnyte", client_id, secret, &[("domain", typed)], typed)
            .await
    })
    .await;
    for typed in ["acme.egnyte.eu", "https://acme.egnyte.com.evil.io/"] {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("apiKey", client_id)
            .append_pair("apiSecret", secret)
            .append_pair("callbackUrl", &h.callback_url())
            .append_pair("domain", typed)
            .finish();
        let answer = h.get(&format!("/elements/egnyte/oauth/url?{query}")).await;
        assert_refused(h, answer, "enter `acme` or `acme.egnyte.com`", typed).await;
    }
}

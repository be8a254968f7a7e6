//! The web console over HTTP, on a real daemon with an Okta stand-in:
//! who may open it (a session from the operator's secrets or a one-time
//! link; never an `Element` token, never a form without its CSRF token),
//! and that its pages show what the daemon stored.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::tls::TestCa;
use ward_tests::api::ApiHarness;
use ward_tests::console::ConsoleTab;

const BACKFILL: Duration = Duration::from_secs(60);

/// An Okta org with `events` audit events, connected through the API with
/// an API token; returns the harness, the stand-in, the instance id and
/// its `Element` token.
async fn connected_okta(events: usize) -> (ApiHarness, OktaStandIn, String, String) {
    let ca = TestCa::generate().unwrap();
    let org = OktaStandIn::start(
        OktaConfig {
            org: "acme".to_owned(),
            events,
            users: 5,
            ..OktaConfig::default()
        },
        &ca,
    )
    .await
    .unwrap();
    let h = ApiHarness::start(ca, vec![(org.host(), org.addr())], |_| {}).await;
    let token = OktaConfig::default().api_token;
    let (status, created) = h
        .connect_token("okta", &token, &[("domain", "acme")], "Acme Okta")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let element = created["token"].as_str().unwrap().to_owned();
    let want = u64::try_from(events).unwrap();
    h.wait_instance(&id, BACKFILL, |i| i["status"]["eventsStored"] == want)
        .await;
    (h, org, id, element)
}

fn secrets(h: &ApiHarness) -> ward_api::ApiSecrets {
    ward_api::ApiSecrets::load(&h.dir.path().join("api-secrets.toml")).unwrap()
}

async fn disabled(h: &ApiHarness, id: &str) -> bool {
    let (_, i) = h.get(&format!("/instances/{id}")).await;
    i["disabled"].as_bool().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_needs_a_session_from_the_operator_and_a_csrf_token_on_every_form() {
    let (h, _org, id, element) = connected_okta(10).await;
    let mut tab = ConsoleTab::open(&h);
    let detail = format!("/console/instances/{id}");

    // No session: pages send the browser to sign-in, forms are refused.
    for path in ["/", detail.as_str(), "/console/connectors"] {
        let page = tab.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}: {page:?}");
        assert_eq!(page.location.as_deref(), Some("/console/sign-in"));
    }
    let refused = tab.post(&format!("{detail}/disable"), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    assert!(!disabled(&h, &id).await, "a form without a session acted");
    // The page Ward's /oauth/callback sends a console consent to shows a
    // refusal's text only for a consent the console is waiting for: a
    // crafted link cannot put words on the console's origin.
    let crafted = tab
        .get("/console/oauth/returned?state=guess&error=Call%20555-0100%20to%20verify")
        .await;
    assert_eq!(crafted.status, StatusCode::BAD_REQUEST, "{crafted:?}");
    assert!(!crafted.body.contains("555-0100"), "{}", crafted.body);
    assert!(crafted.body.contains("not one this console is waiting for"));

    // The instance's Element token opens the API's view of it, not the console.
    let (status, _) = h
        .send_as(
            &format!("Element {element}"),
            reqwest::Method::GET,
            &format!("/instances/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let page = tab.get_with(&detail, &format!("Element {element}")).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{page:?}");
    assert!(!page.body.contains("Acme Okta"));

    // Wrong secrets: no session.
    let s = secrets(&h);
    let wrong = tab.sign_in(&s.user, "not-the-organization-secret").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{wrong:?}");
    assert!(!tab.signed_in());
    // A sign-in form without the token its page set is refused too.
    let forged = tab
        .post(
            "/console/sign-in",
            &[
                ("user", &s.user),
                ("organization", &s.organization),
                ("csrf", "forged"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{forged:?}");
    assert!(!tab.signed_in());

    let signed = tab.sign_in(&s.user, &s.organization).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{signed:?}");
    assert!(tab.signed_in());
    let home = tab.get("/").await;
    assert_eq!(home.status, StatusCode::OK, "{home:?}");
    assert!(home.body.contains("Acme Okta"), "{}", home.body);

    // Signed in, a form without the CSRF token (or with another) does nothing.
    for fields in [vec![], vec![("csrf", "0000")]] {
        let page = tab.post(&format!("{detail}/disable"), &fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{page:?}");
        assert!(
            !disabled(&h, &id).await,
            "a CSRF-less form disabled the instance"
        );
    }
    // With it, Disable and Enable work and the daemon's state follows.
    let done = tab.submit(&detail, &format!("{detail}/disable"), &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{done:?}");
    assert!(disabled(&h, &id).await);
    let page = tab.get(&detail).await;
    assert!(page.body.contains("Enable"), "{}", page.body);
    tab.submit(&detail, &format!("{detail}/enable"), &[]).await;
    assert!(!disabled(&h, &id).await);

    // Sign out ends the session on the server, not just in this tab.
    let csrf = tab.get("/").await.csrf().unwrap();
    let stolen = tab.clone_cookies();
    let out = tab.post("/console/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{out:?}");
    assert!(!tab.signed_in());
    let mut replay = ConsoleTab::open(&h);
    replay.set_cookies(stolen);
    let page = replay.get("/").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{page:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pages_show_what_the_daemon_stored() {
    let (h, _org, id, _) = connected_okta(80).await;
    let mut tab = ConsoleTab::open(&h);

    // The one-time link opens a session once.
    let link = h.console.one_time_link(&h.url);
    let first = tab.get(&link).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{first:?}");
    assert!(tab.signed_in());
    let mut other = ConsoleTab::open(&h);
    let again = other.get(&link).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{again:?}");
    assert!(!other.signed_in());

    let (_, instance) = h.get(&format!("/instances/{id}")).await;
    let list = tab.get("/console/instances").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.body.contains("Acme Okta") && list.body.contains("okta"),
        "{}",
        list.body
    );
    let detail = format!("/console/instances/{id}");
    let page = tab.get(&detail).await;
    assert!(
        page.body
            .contains(&format!("<dd>{}</dd>", instance["status"]["eventsStored"])),
        "{}",
        page.body
    );

    // Test now shows every check the API's Test now reports.
    let tested = tab.submit(&detail, &format!("{detail}/test"), &[]).await;
    assert_eq!(tested.status, StatusCode::OK, "{tested:?}");
    let (_, api_test) = h.test_now(&id).await;
    for check in api_test["checks"].as_array().unwrap() {
        let name = check["name"].as_str().unwrap();
        assert!(
            tested
                .body
                .contains(&format!("<strong>{name}</strong>: passed")),
            "{name}: {}",
            tested.body
        );
    }

    // Events: the first page holds 50, the next page the rest, no overlap.
    let (_, all) = h.get(&format!("/instances/{id}/events?limit=1000")).await;
    let all = all["events"].as_array().unwrap().clone();
    assert_eq!(all.len(), 80);
    let events = tab.get(&format!("{detail}/events")).await;
    assert_eq!(events.status, StatusCode::OK);
    assert_eq!(
        events
            .body
            .matches("aria-label=\"Raw JSON of event ")
            .count(),
        50
    );
    let next = events
        .body
        .split("rel=\"next\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    let older = tab.get(&next).await;
    assert_eq!(
        older
            .body
            .matches("aria-label=\"Raw JSON of event ")
            .count(),
        30
    );
    assert!(!older.body.contains("rel=\"next\""));

    // Filter by action: only that action's events, the same count as the API.
    let action = all[0]["action"].as_str().unwrap();
    let want = all.iter().filter(|e| e["action"] == action).count();
    let filtered = tab.get(&format!("{detail}/events?action={action}")).await;
    assert_eq!(
        filtered
            .body
            .matches("aria-label=\"Raw JSON of event ")
            .count(),
        want.min(50)
    );

    // The export of that filter: one JSON event per line, camelCase fields.
    let export = tab
        .get(&format!("{detail}/events.ndjson?action={action}"))
        .await;
    assert_eq!(export.status, StatusCode::OK);
    let lines: Vec<Value> = export
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), want);
    assert!(
        lines
            .iter()
            .all(|e| e["action"] == action && e["eventId"].is_string())
    );

    // The raw JSON of one event.
    let e = &all[0];
    let raw = tab
        .get(&format!(
            "{detail}/event?time_ms={}&event_id={}",
            e["timeMs"],
            e["eventId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(raw.status, StatusCode::OK);
    assert!(raw.body.contains(e["eventId"].as_str().unwrap()));

    // Egress: the calls to the org, all allowed; no denial to show.
    let egress = tab.get(&format!("{detail}/egress")).await;
    assert!(
        egress.body.contains("https://acme.okta.com/"),
        "{}",
        egress.body
    );
    let denials = tab.get(&format!("{detail}/egress?denied=1")).await;
    assert!(
        denials.body.contains("Nothing recorded."),
        "{}",
        denials.body
    );

    // Connectors: the installed plugins with their effective permissions.
    let connectors = tab.get("/console/connectors").await;
    assert!(connectors.body.contains("Effective permissions"));
    assert!(
        connectors.body.contains("<code>okta</code>"),
        "{}",
        connectors.body
    );

    // Declared vs used: the API token flow never touches the OAuth grant.
    let (status, usage) = h.get("/elements/okta/usage?days=1").await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    let grants = usage["grants"].as_array().unwrap();
    let used: u64 = grants.iter().map(|g| g["requests"].as_u64().unwrap()).sum();
    assert!(used > 0, "{usage}");
    assert_eq!(
        used + usage["denied"].as_u64().unwrap(),
        usage["requests"].as_u64().unwrap()
    );
    assert!(
        grants.iter().any(|g| g["requests"] == 0),
        "no unused grant: {usage}"
    );
    let snippet = usage["policySnippet"].as_str().unwrap();
    assert!(snippet.contains("[policy.okta]"), "{snippet}");
    for path in usage["unusedPaths"].as_array().unwrap() {
        assert!(snippet.contains(path.as_str().unwrap()), "{snippet}");
    }
    let (status, _) = h.get("/elements/okta/usage?days=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let page = tab.get("/console/connectors/okta/usage").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("never used") && page.body.contains("[policy.okta]"),
        "{}",
        page.body
    );

    // Delete asks first, then deletes.
    let confirm = tab.get(&format!("{detail}/delete")).await;
    assert!(confirm.body.contains("cannot be undone"));
    let deleted = tab
        .submit(
            &format!("{detail}/delete"),
            &format!("{detail}/delete"),
            &[],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{deleted:?}");
    assert!(h.instance_ids().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_upgrade_is_approved_from_the_console_with_its_csrf_token_only() {
    let plugins = tempfile::tempdir().unwrap();
    ward_tests::plugin_files::write(
        plugins.path(),
        "okta-9.9.9.wasm",
        &ward_tests::plugin_files::widened_okta(),
    );
    let dir = plugins.path().to_path_buf();
    let ca = TestCa::generate().unwrap();
    // Dev mode loads the unsigned upgrade; it never skips approval.
    let h = ApiHarness::start(ca, vec![], move |c| {
        c.dev = true;
        c.plugins.dirs = vec![dir];
    })
    .await;
    let pending = h.daemon.registry.pending();
    assert_eq!(pending.len(), 1);
    let digest = pending[0].digest.clone();
    let mut tab = ConsoleTab::open(&h);
    tab.get(&h.console.one_time_link(&h.url)).await;
    let page = tab.get("/console/connectors").await;
    assert!(
        page.body.contains("9.9.9") && page.body.contains("exfil.example"),
        "{}",
        page.body
    );
    assert!(page.body.contains(&digest), "{}", page.body);

    // Without the CSRF token nothing is approved.
    let refused = tab
        .post("/console/connectors/okta/approve", &[("digest", &digest)])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    assert_eq!(h.daemon.registry.pending().len(), 1);
    assert_ne!(
        h.daemon
            .registry
            .get("okta")
            .unwrap()
            .plugin
            .manifest()
            .version,
        "9.9.9"
    );

    let done = tab
        .submit(
            "/console/connectors",
            "/console/connectors/okta/approve",
            &[("digest", &digest)],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{done:?}");
    assert!(h.daemon.registry.pending().is_empty());
    let (_, okta) = h.get("/elements/okta").await;
    assert_eq!(okta["version"], "9.9.9", "{okta}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_and_rate_from_the_console_use_the_api_s_daemon_calls() {
    let (h, _org, id, _) = connected_okta(10).await;
    let mut tab = ConsoleTab::open(&h);
    tab.get(&h.console.one_time_link(&h.url)).await;
    let detail = format!("/console/instances/{id}");
    let form = format!("{detail}/reconnect?method=token");

    // The reconnect form asks for the token only, and posts with CSRF.
    let page = tab.get(&form).await;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    assert!(page.body.contains("name=\"api_token\""), "{}", page.body);
    assert!(
        !page.body.contains("name=\"config.domain\""),
        "{}",
        page.body
    );
    let refused = tab.post(&form, &[("api_token", "x")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");

    // A new token: stored, tested, cursors and events kept.
    let token = OktaConfig::default().api_token;
    let done = tab.submit(&form, &form, &[("api_token", &token)]).await;
    assert_eq!(done.status, StatusCode::OK, "{done:?}");
    assert!(
        done.body.contains("New credentials stored"),
        "{}",
        done.body
    );
    assert!(done.body.contains(": passed"), "{}", done.body);
    let (_, i) = h.get(&format!("/instances/{id}")).await;
    assert_eq!(i["status"]["eventsStored"], 10, "{i}");

    // Rate: the same setting PATCH changes; a non-number is refused.
    let rate = format!("{detail}/rate");
    let set = tab
        .submit(&detail, &rate, &[("requests_per_minute", "90")])
        .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{set:?}");
    let (_, i) = h.get(&format!("/instances/{id}")).await;
    assert_eq!(i["requestsPerMinute"], 90, "{i}");
    let bad = tab
        .submit(&detail, &rate, &[("requests_per_minute", "lots")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{bad:?}");
    let (_, i) = h.get(&format!("/instances/{id}")).await;
    assert_eq!(i["requestsPerMinute"], 90, "{i}");

    // The wizard re-renders a refused configuration with the message and
    // creates nothing.
    let wizard = "/console/connect/okta?method=token";
    let page = tab
        .submit(
            wizard,
            wizard,
            &[
                ("name", "Bad"),
                ("config.domain", "not a domain!"),
                ("api_token", &token),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{page:?}");
    assert!(page.body.contains("id=\"problem\""), "{}", page.body);
    assert!(
        page.body.contains("value=\"not a domain!\""),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains(&token),
        "the token came back in the form"
    );
    assert_eq!(h.instance_ids().await.len(), 1);
}

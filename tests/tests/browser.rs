//! The web console in a real headless Chromium (chromedriver from the
//! Debian package, see `ward_tests::browser`), on a real daemon against the
//! Okta and Zendesk stand-ins: an operator signs in, connects Okta with an
//! API token and Zendesk through the OAuth consent (declined once first),
//! reads the Test now checks, explores and filters events, approves a held
//! upgrade after reading its diff, reads declared-vs-used, sets the rate and
//! signs out; a form posted without the CSRF token and a request without a
//! session are refused. Every page is written as a screenshot under
//! `target/test-artifacts/console/`.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use reqwest::StatusCode;
use serde_json::Value;
use ward_standins::okta::{OktaConfig, OktaStandIn};
use ward_standins::tls::TestCa;
use ward_standins::zendesk::{ZendeskConfig, ZendeskStandIn};
use ward_tests::api::ApiHarness;
use ward_tests::browser::Browser;
use ward_tests::plugin_files;

const BACKFILL: Duration = Duration::from_secs(60);
const OKTA_EVENTS: usize = 60;
const ZENDESK_EVENTS: usize = 40;

/// The text of every cell of column `n` (1-based) of the page's table body.
async fn column(b: &Browser, n: usize) -> anyhow::Result<Vec<String>> {
    let cells = b
        .client
        .find_all(fantoccini::Locator::Css(&format!(
            "tbody tr td:nth-child({n})"
        )))
        .await?;
    let mut out = Vec::new();
    for c in cells {
        out.push(c.text().await?);
    }
    Ok(out)
}

/// Posts a form from the page with `fetch` (the browser's cookies, no
/// CSRF token) and returns the HTTP status.
async fn post_without_csrf(b: &Browser, path: &str) -> anyhow::Result<u64> {
    let v = b
        .eval(&format!(
            "return fetch({path:?}, {{method: 'POST', body: new URLSearchParams(), \
             redirect: 'manual'}}).then(r => r.status);"
        ))
        .await?;
    v.as_u64().context("fetch returned no status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_connects_explores_approves_and_signs_out_in_chromium() -> anyhow::Result<()> {
    let ca = TestCa::generate()?;
    let okta = OktaStandIn::start(
        OktaConfig {
            org: "acme".to_owned(),
            events: OKTA_EVENTS,
            users: 5,
            ..OktaConfig::default()
        },
        &ca,
    )
    .await?;
    let zendesk = ZendeskStandIn::start(
        ZendeskConfig {
            subdomain: "acme".to_owned(),
            events: ZENDESK_EVENTS,
            users: 4,
            ..ZendeskConfig::default()
        },
        &ca,
    )
    .await?;
    // A signed upgrade of Okta asking for one more host: held for approval.
    let plugins = tempfile::tempdir()?;
    let vendor = ward_trust::generate()?;
    let upgrade = plugin_files::write(
        plugins.path(),
        "okta-9.9.9.wasm",
        &plugin_files::widened_okta(),
    );
    plugin_files::sign(&vendor.secret_file, &upgrade);
    let dirs = vec![plugins.path().to_path_buf()];
    let trusted = vec![vendor.public_base64.clone()];
    let hosts = vec![(okta.host(), okta.addr()), (zendesk.host(), zendesk.addr())];
    let h = ApiHarness::start(ca, hosts.clone(), move |c| {
        c.plugins.dirs = dirs;
        c.plugins.trusted_keys = trusted;
    })
    .await;
    ensure!(h.daemon.registry.pending().len() == 1, "no held upgrade");
    let b = Browser::start(&hosts).await?;
    let console = |path: &str| format!("{}{path}", h.url);

    // No session: the console sends the browser to sign-in.
    b.goto(&console("/console/instances")).await?;
    b.find("#user").await?;
    ensure!(
        b.url_now().await.ends_with("/console/sign-in"),
        "{}",
        b.url_now().await
    );
    b.shot("01-sign-in").await?;
    let secrets = ward_api::ApiSecrets::load(&h.dir.path().join("api-secrets.toml"))?;
    b.fill("#user", &secrets.user).await?;
    b.fill("#organization", &secrets.organization).await?;
    b.click("form[action='/console/sign-in'] button").await?;
    b.find("a[href='/console/connect']").await?;
    b.shot("02-instances-empty").await?;

    // Connect Okta with an API token.
    b.click("header a[href='/console/connect']").await?;
    b.find("ul.providers").await?;
    b.shot("03-connect-choose").await?;
    b.click("a[href='/console/connect/okta?method=token']")
        .await?;
    b.fill("#name", "Acme Okta").await?;
    b.fill("#cfg-domain", "acme").await?;
    // A wrong token: the form comes back with the provider's verdict.
    b.fill("#api_token", "not-the-token").await?;
    b.click("form.wizard button[type=submit]").await?;
    let problem = b.find("#problem").await?.text().await?;
    ensure!(!problem.is_empty(), "no problem shown");
    ensure!(
        h.instance_ids().await.is_empty(),
        "a refused token left an instance"
    );
    b.shot("04-connect-okta-refused").await?;
    b.fill("#api_token", &OktaConfig::default().api_token)
        .await?;
    b.click("form.wizard button[type=submit]").await?;
    b.find("ul.checks").await?;
    b.shot("05-connect-okta-test-now").await?;
    let ids = h.instance_ids().await;
    ensure!(ids.len() == 1, "{ids:?}");
    let okta_id = ids[0].clone();
    // Test now shows every check the API's Test now reports, passed.
    let shown = b.text().await?;
    let (_, api_test) = h.test_now(&okta_id).await;
    for check in api_test["checks"].as_array().context("checks")? {
        let name = check["name"].as_str().context("name")?;
        ensure!(
            shown.contains(&format!("{name}: passed")),
            "{name}: {shown}"
        );
    }

    // Zendesk through the OAuth consent: declined first, nothing created.
    let (client_id, client_secret) = zendesk.oauth_client();
    zendesk.set_oauth_redirect_uris(vec![console("/oauth/callback")]);
    let connect_zendesk = || async {
        b.goto(&console("/console/connect/zendesk?method=oauth"))
            .await?;
        b.fill("#name", "Acme Support").await?;
        b.fill("#cfg-subdomain", "acme").await?;
        b.fill("#client_id", &client_id).await?;
        b.fill("#client_secret", &client_secret).await?;
        b.click("form.wizard button[type=submit]").await
    };
    zendesk.set_oauth_decline(true);
    connect_zendesk().await?;
    let declined = b.find("p[role=alert]").await?.text().await?;
    ensure!(
        declined.contains("declined") && declined.contains("nothing was created"),
        "{declined}"
    );
    ensure!(b.text().await?.contains("No instance was created"));
    ensure!(h.instance_ids().await.len() == 1);
    ensure!(
        zendesk.oauth_tokens_issued() == 0,
        "a declined consent was exchanged"
    );
    b.shot("06-connect-zendesk-declined").await?;

    zendesk.set_oauth_decline(false);
    connect_zendesk().await?;
    b.find("ul.checks").await?;
    ensure!(
        b.url_now().await.contains("/console/connect/finish"),
        "{}",
        b.url_now().await
    );
    b.shot("07-connect-zendesk-test-now").await?;
    ensure!(zendesk.oauth_tokens_issued() == 1);
    let zendesk_id = h
        .instance_ids()
        .await
        .into_iter()
        .find(|i| *i != okta_id)
        .context("no Zendesk instance")?;
    let shown = b.text().await?;
    ensure!(!shown.contains(": failed"), "{shown}");

    // Both backfill; the instance list shows them.
    let okta_done = |i: &Value| i["status"]["eventsStored"] == OKTA_EVENTS as u64;
    h.wait_instance(&okta_id, BACKFILL, okta_done).await;
    let zd_done = |i: &Value| i["status"]["eventsStored"] == ZENDESK_EVENTS as u64;
    h.wait_instance(&zendesk_id, BACKFILL, zd_done).await;
    b.click("header a[href='/console/instances']").await?;
    let list = b.text().await?;
    ensure!(
        list.contains("Acme Okta") && list.contains("Acme Support"),
        "{list}"
    );
    b.shot("08-instances").await?;

    // Events appear in the explorer and filter by action.
    b.goto(&console(&format!("/console/instances/{okta_id}/events")))
        .await?;
    b.find("form[aria-label='Filter events']").await?;
    let actions = column(&b, 2).await?;
    ensure!(actions.len() == 50, "first page: {}", actions.len());
    b.shot("09-events").await?;
    let (_, all) = h
        .get(&format!("/instances/{okta_id}/events?limit=1000"))
        .await;
    let all = all["events"].as_array().context("events")?.clone();
    let action = all[0]["action"].as_str().context("action")?.to_owned();
    let want = all
        .iter()
        .filter(|e| e["action"] == action.as_str())
        .count();
    b.fill("#action", &action).await?;
    b.click("form[aria-label='Filter events'] button").await?;
    b.find(&format!("input#action[value='{action}']")).await?;
    let filtered = column(&b, 2).await?;
    ensure!(
        filtered.len() == want.min(50),
        "{} of {want}",
        filtered.len()
    );
    ensure!(filtered.iter().all(|a| *a == action), "{filtered:?}");
    b.shot("10-events-filtered").await?;
    b.click("tbody a[aria-label^='Raw JSON']").await?;
    ensure!(b.find("pre").await?.text().await?.contains(&action));
    b.shot("11-event-json").await?;

    // The instance page: rate settings through the daemon call PATCH uses.
    b.goto(&console(&format!("/console/instances/{okta_id}")))
        .await?;
    b.fill("#rpm", "120").await?;
    b.click("form[action$='/rate'] button").await?;
    b.find("#rpm[value='120']").await?;
    let (_, i) = h.get(&format!("/instances/{okta_id}")).await;
    ensure!(i["requestsPerMinute"] == 120, "{i}");
    b.shot("12-instance").await?;
    b.goto(&console(&format!("/console/instances/{okta_id}/egress")))
        .await?;
    ensure!(b.text().await?.contains("https://acme.okta.com/"));
    b.shot("13-egress").await?;

    // Signed in, a form without the CSRF token changes nothing.
    let status = post_without_csrf(&b, &format!("/console/instances/{okta_id}/disable")).await?;
    ensure!(status == 403, "CSRF-less post answered {status}");
    let (_, i) = h.get(&format!("/instances/{okta_id}")).await;
    ensure!(
        i["disabled"] == false,
        "a CSRF-less form disabled the instance: {i}"
    );

    // The held upgrade: its diff, then Approve.
    b.click("header a[href='/console/connectors']").await?;
    ensure!(b.text().await?.contains("exfil.example"));
    b.shot("14-connectors-held").await?;
    b.click("a[href^='/console/connectors/okta/diff?to=']")
        .await?;
    let diff = b.text().await?;
    ensure!(
        diff.contains("widened") && diff.contains("exfil.example"),
        "{diff}"
    );
    b.shot("15-diff").await?;
    // The other way round, the same grant is a narrowing.
    let held = h.daemon.registry.pending()[0].digest.clone();
    let running = h.daemon.registry.get("okta").context("no okta")?;
    let back = format!(
        "/console/connectors/okta/diff?from={held}&to={}",
        running.plugin.digest()
    );
    b.goto(&console(&back)).await?;
    let diff = b.text().await?;
    ensure!(
        diff.contains("narrowed") && !diff.contains("widened"),
        "{diff}"
    );
    b.click("header a[href='/console/connectors']").await?;
    b.click("button[aria-label='Approve okta 9.9.9']").await?;
    // The connectors page before the post has the usage link too: wait for
    // the held upgrade's button to go, i.e. for the post's answer.
    b.gone("button[aria-label='Approve okta 9.9.9']").await?;
    b.find("a[href='/console/connectors/okta/usage']").await?;
    ensure!(h.daemon.registry.pending().is_empty(), "still held");
    let (_, element) = h.get("/elements/okta").await;
    ensure!(element["version"] == "9.9.9", "{element}");

    // Declared vs used: an unused grant and the narrowing snippet.
    b.click("a[href='/console/connectors/okta/usage']").await?;
    let usage = b.text().await?;
    ensure!(usage.contains("never used"), "{usage}");
    let snippet = b
        .find("pre[aria-label='Policy snippet']")
        .await?
        .text()
        .await?;
    ensure!(snippet.contains("[policy.okta]"), "{snippet}");
    b.shot("16-declared-vs-used").await?;

    // Sign out: the console is closed again, pages and forms alike.
    b.click("header form[action='/console/sign-out'] button")
        .await?;
    b.find("#user").await?;
    b.goto(&console(&format!("/console/instances/{okta_id}")))
        .await?;
    b.find("#user").await?;
    ensure!(b.url_now().await.ends_with("/console/sign-in"));
    let status = post_without_csrf(&b, &format!("/console/instances/{okta_id}/disable")).await?;
    ensure!(status == 403, "a post without a session answered {status}");
    let (status, i) = h.get(&format!("/instances/{okta_id}")).await;
    ensure!(status == StatusCode::OK && i["disabled"] == false, "{i}");
    b.shot("17-signed-out").await?;
    b.close().await
}

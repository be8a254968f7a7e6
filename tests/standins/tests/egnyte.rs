//! The Egnyte stand-in, exercised over real HTTPS the way a connector sees
//! it: the real hostname, resolved to the loopback port, trusting the test
//! CA.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use ward_standins::egnyte::{CallerRole, UsersListStyle};
use ward_standins::{EgnyteConfig, EgnyteStandIn, TestCa};

const REDIRECT: &str = "https://ward.example/oauth/callback";

struct Domain {
    eg: EgnyteStandIn,
    http: reqwest::Client,
    _ca: TestCa,
}

struct Reply {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

async fn start(cfg: EgnyteConfig) -> Domain {
    let ca = TestCa::generate().unwrap();
    let eg = EgnyteStandIn::start(cfg, &ca).await.unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.ca_pem().as_bytes()).unwrap()])
        .resolve(&eg.host(), eg.addr())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    Domain { eg, http, _ca: ca }
}

async fn reply(resp: reqwest::Response) -> Reply {
    Reply {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        text: resp.text().await.unwrap(),
    }
}

fn iso(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn days_ago(days: i64) -> String {
    iso(now_ms() - days * 86_400_000)
}

fn param(location: &str, name: &str) -> Option<String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl Domain {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.eg.base_url())
    }

    /// Consent as the browser would: returns the redirect's Location.
    async fn consent(&self, scope: &str, state: &str) -> (u16, String) {
        let (id, _) = self.eg.oauth_client();
        let query = form(&[
            ("client_id", id.as_str()),
            ("redirect_uri", REDIRECT),
            ("scope", scope),
            ("state", state),
            ("response_type", "code"),
        ]);
        let r = self
            .http
            .get(format!("{}?{query}", self.url("/puboauth/token")))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, location)
    }

    async fn exchange(&self, code: &str, secret: &str) -> Reply {
        let (id, _) = self.eg.oauth_client();
        reply(
            self.http
                .post(self.url("/puboauth/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&[
                    ("client_id", id.as_str()),
                    ("client_secret", secret),
                    ("redirect_uri", REDIRECT),
                    ("code", code),
                    ("grant_type", "authorization_code"),
                ]))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A token with the given scopes, through the whole flow.
    async fn token(&self, scope: &str) -> String {
        let (status, location) = self.consent(scope, "s1").await;
        assert_eq!(status, 302);
        let code = param(&location, "code").unwrap();
        let (_, secret) = self.eg.oauth_client();
        let r = self.exchange(&code, &secret).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["access_token"].as_str().unwrap().to_owned()
    }

    async fn get(&self, token: &str, path: &str) -> Reply {
        reply(
            self.http
                .get(self.url(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn stream(&self, token: &str, body: &Value) -> Reply {
        reply(
            self.http
                .post(self.url("/pubapi/v2/audit/stream"))
                .bearer_auth(token)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}

const ALL: &str = "Egnyte.audit Egnyte.user";

#[tokio::test]
async fn oauth_codes_are_single_use_and_errors_look_like_egnyte() {
    let d = start(EgnyteConfig::default()).await;
    let (status, location) = d.consent(ALL, "st-1").await;
    assert_eq!(status, 302);
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(param(&location, "state").as_deref(), Some("st-1"));
    let code = param(&location, "code").unwrap();

    // Wrong secret: refused, and the code is used up all the same.
    let bad = d.exchange(&code, "not-the-secret").await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.json()["error"], "invalid_client");

    let (_, location) = d.consent(ALL, "st-2").await;
    let code = param(&location, "code").unwrap();
    let (_, secret) = d.eg.oauth_client();
    let ok = d.exchange(&code, &secret).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let token = ok.json();
    assert_eq!(token["token_type"], "bearer");
    assert_eq!(token["expires_in"], -1);
    assert!(token.get("refresh_token").is_none());
    assert_eq!(token["access_token"].as_str().unwrap().len(), 24);
    let again = d.exchange(&code, &secret).await;
    assert_eq!(again.status, 400);
    assert_eq!(again.json()["error"], "invalid_grant");

    // Codes expire after 120 s.
    let (_, location) = d.consent(ALL, "st-3").await;
    let code = param(&location, "code").unwrap();
    d.eg.advance_oauth_clock(Duration::from_secs(121));
    let late = d.exchange(&code, &secret).await;
    assert_eq!(late.status, 400);
    assert!(late.text.contains("expired"), "{}", late.text);

    // An unknown key is the gateway's "Developer Inactive".
    let r = reply(
        d.http
            .post(d.url("/puboauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("client_id", "nope"),
                ("grant_type", "authorization_code"),
            ]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.header("x-mashery-error-code"),
        Some("ERR_403_DEVELOPER_INACTIVE")
    );

    // Declined consent comes back as an error with the state.
    d.eg.set_oauth_decline(true);
    let (status, location) = d.consent(ALL, "st-4").await;
    assert_eq!(status, 302);
    assert_eq!(param(&location, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&location, "state").as_deref(), Some("st-4"));
    assert!(param(&location, "code").is_none());

    // Token endpoint throttling: 409 with Retry-After.
    d.eg.set_oauth_decline(false);
    d.eg.throttle_token_endpoint_next(1, 30);
    let r = d.exchange("whatever", &secret).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.header("retry-after"), Some("30"));
}

#[tokio::test]
async fn expiring_tokens_come_with_a_refresh_token() {
    let d = start(EgnyteConfig::default()).await;
    d.eg.set_token_lifetime(Some(Duration::from_secs(30 * 86_400)));
    let (_, location) = d.consent(ALL, "s").await;
    let (_, secret) = d.eg.oauth_client();
    let token = d
        .exchange(&param(&location, "code").unwrap(), &secret)
        .await
        .json();
    assert_eq!(token["expires_in"], 2_592_000);
    let refresh = token["refresh_token"].as_str().unwrap();
    let (id, _) = d.eg.oauth_client();
    let r = reply(
        d.http
            .post(d.url("/puboauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("client_id", id.as_str()),
                ("client_secret", secret.as_str()),
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
            ]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_ne!(r.json()["access_token"], token["access_token"]);
    assert_eq!(d.eg.oauth_refreshes(), 1);
}

#[tokio::test]
async fn stream_pages_by_cursor_and_polls_for_new_events() {
    let d = start(EgnyteConfig {
        events: 1000,
        page_size: 400,
        ..EgnyteConfig::default()
    })
    .await;
    let token = d.token(ALL).await;
    let mut seen = Vec::new();
    // Just inside the 7-day window: every event (6 days back) is after it.
    let start = iso(now_ms() - 7 * 86_400_000 + 60_000);
    let first = d
        .stream(
            &token,
            &json!({"startDate": start, "auditType": ["FILE_AUDIT", "LOGIN_AUDIT", "USER_AUDIT", "GROUP_AUDIT"]}),
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.header("x-ratelimit-limit-minute"), Some("10"));
    assert_eq!(first.header("x-ratelimit-limit-hour"), Some("100"));
    let mut page = first.json();
    let mut sizes = Vec::new();
    loop {
        let events = page["events"].as_array().unwrap();
        sizes.push(events.len());
        seen.extend(events.iter().map(|e| e.to_string()));
        let cursor = page["nextCursor"].as_str().unwrap().to_owned();
        if page["moreEvents"] == false {
            // Caught up: the cursor is where polling resumes.
            let empty = d
                .stream(&token, &json!({ "nextCursor": cursor }))
                .await
                .json();
            assert_eq!(empty["events"], json!([]));
            assert_eq!(empty["moreEvents"], false);
            d.eg.append_events(7);
            let cursor = empty["nextCursor"].as_str().unwrap();
            let fresh = d
                .stream(&token, &json!({ "nextCursor": cursor }))
                .await
                .json();
            assert_eq!(fresh["events"].as_array().unwrap().len(), 7);
            assert_eq!(fresh["moreEvents"], false);
            seen.extend(
                fresh["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e.to_string()),
            );
            break;
        }
        page = d
            .stream(&token, &json!({ "nextCursor": cursor }))
            .await
            .json();
    }
    assert_eq!(sizes, vec![400, 400, 200]);
    let expected: Vec<String> =
        d.eg.event_jsons()
            .iter()
            .map(|j| serde_json::from_str::<Value>(j).unwrap().to_string())
            .collect();
    assert_eq!(seen, expected);
    assert_eq!(d.eg.event_ids().len(), 1007);
    let unique: HashSet<String> = d.eg.event_ids().into_iter().collect();
    assert_eq!(unique.len(), 1007, "event ids collide");

    // The same stream over GET with query parameters, one type.
    let r = d
        .get(
            &token,
            &format!(
                "/pubapi/v2/audit/stream?startDate={}&auditType=USER_AUDIT",
                urlencode(&days_ago(6))
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let users_only = r.json();
    assert!(
        users_only["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["auditSource"] == "USER_AUDIT")
    );
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn stream_refuses_what_egnyte_refuses() {
    let d = start(EgnyteConfig::default()).await;
    let token = d.token(ALL).await;
    let old = d.stream(&token, &json!({ "startDate": days_ago(8) })).await;
    assert_eq!(old.status, 400);
    assert!(
        old.json()["errorMessage"]
            .as_str()
            .unwrap()
            .contains("7 days")
    );
    let none = d.stream(&token, &json!({})).await;
    assert_eq!(none.status, 400);
    let mixed = d
        .stream(
            &token,
            &json!({ "startDate": days_ago(1), "nextCursor": "abc" }),
        )
        .await;
    assert_eq!(mixed.status, 400);
    let forged = d
        .stream(&token, &json!({ "nextCursor": "QmlnVGFibGVLZXk=" }))
        .await;
    assert_eq!(forged.status, 400);
    let bad_type = d
        .stream(
            &token,
            &json!({ "startDate": days_ago(1), "auditType": ["NOPE"] }),
        )
        .await;
    assert_eq!(bad_type.status, 400);
}

#[tokio::test]
async fn users_page_by_start_index_in_both_shapes() {
    let d = start(EgnyteConfig {
        users: 230,
        ..EgnyteConfig::default()
    })
    .await;
    let token = d.token(ALL).await;
    let mut ids = Vec::new();
    let mut start = 1;
    loop {
        let page = d
            .get(
                &token,
                &format!("/pubapi/v2/users?startIndex={start}&count=500"),
            )
            .await
            .json();
        assert_eq!(page["totalResults"], 230);
        assert_eq!(page["startIndex"], start);
        let resources = page["resources"].as_array().unwrap();
        assert!(resources.len() <= 100, "count is capped at 100");
        ids.extend(
            resources
                .iter()
                .map(|u| u["id"].as_u64().unwrap().to_string()),
        );
        start += resources.len();
        if resources.is_empty() || start > 230 {
            break;
        }
    }
    assert_eq!(ids, d.eg.user_ids());

    d.eg.set_users_list_style(UsersListStyle::DotNetFixture);
    let page = d
        .get(&token, "/pubapi/v2/users?startIndex=6&count=2")
        .await
        .json();
    let resources = page["Resources"].as_array().unwrap();
    assert_eq!(page["itemsPerPage"], 2);
    assert!(resources[0]["id"].is_string());
    assert!(resources[0]["active"].is_string());
    assert_eq!(resources[0]["id"], d.eg.user_ids()[5].as_str());

    let me = d.get(&token, "/pubapi/v1/userinfo").await.json();
    assert_eq!(me["id"].as_u64().unwrap().to_string(), d.eg.user_ids()[0]);
    let one = d
        .get(&token, &format!("/pubapi/v2/users/{}", d.eg.user_ids()[0]))
        .await
        .json();
    assert_eq!(one["userType"], "admin");
    let missing = d.get(&token, "/pubapi/v2/users/12345678").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json()["Errors"][0]["description"],
        "User 12345678 not found."
    );
}

#[tokio::test]
async fn role_plan_scope_and_token_switches() {
    let d = start(EgnyteConfig::default()).await;
    let token = d.token(ALL).await;
    let probe = json!({ "startDate": days_ago(1) });

    d.eg.set_caller_role(CallerRole::StandardUser);
    let users = d.get(&token, "/pubapi/v2/users").await;
    assert_eq!(users.status, 403);
    assert!(users.json()["Errors"][0]["description"].is_string());
    let audit = d.stream(&token, &probe).await;
    assert_eq!(audit.status, 403);
    assert!(audit.text.contains("run reports"), "{}", audit.text);

    d.eg.set_caller_role(CallerRole::PowerUser {
        can_run_reports: false,
    });
    assert_eq!(d.get(&token, "/pubapi/v2/users").await.status, 200);
    assert_eq!(d.stream(&token, &probe).await.status, 403);
    d.eg.set_caller_role(CallerRole::PowerUser {
        can_run_reports: true,
    });
    assert_eq!(d.stream(&token, &probe).await.status, 200);
    let me = d
        .get(&token, &format!("/pubapi/v2/users/{}", d.eg.user_ids()[0]))
        .await
        .json();
    assert_eq!(me["userType"], "power");

    d.eg.set_audit_reporting(false);
    let plan = d.stream(&token, &probe).await;
    assert_eq!(plan.status, 403);
    assert!(plan.text.contains("plan"), "{}", plan.text);
    d.eg.set_audit_reporting(true);

    d.eg.set_oauth_granted_scopes(Some(vec!["Egnyte.user".into()]));
    let narrow = d.token(ALL).await;
    let scope = d.stream(&narrow, &probe).await;
    assert_eq!(scope.status, 403);
    assert!(scope.text.contains("Egnyte.audit"), "{}", scope.text);
    assert_eq!(d.get(&narrow, "/pubapi/v2/users").await.status, 200);

    let none = reply(
        d.http
            .get(d.url("/pubapi/v1/userinfo"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(none.status, 403);
    assert_eq!(
        none.header("x-mashery-error-code"),
        Some("ERR_403_DEVELOPER_INACTIVE")
    );
    d.eg.revoke_tokens();
    assert_eq!(d.get(&token, "/pubapi/v1/userinfo").await.status, 401);
}

#[tokio::test]
async fn throttling_on_demand_and_enforced() {
    let d = start(EgnyteConfig::default()).await;
    let token = d.token(ALL).await;
    d.eg.throttle_qps_next(1, 1);
    let qps = d.get(&token, "/pubapi/v1/userinfo").await;
    assert_eq!(qps.status, 403);
    assert_eq!(
        qps.header("x-mashery-error-code"),
        Some("ERR_403_DEVELOPER_OVER_QPS")
    );
    assert_eq!(qps.header("retry-after"), Some("1"));
    assert_eq!(qps.text, "<h1>Developer Over Qps</h1>");
    d.eg.throttle_over_rate_next(1, 3600);
    let rate = d.get(&token, "/pubapi/v1/userinfo").await;
    assert_eq!(
        rate.header("x-mashery-error-code"),
        Some("ERR_403_DEVELOPER_OVER_RATE")
    );
    assert!(
        rate.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );

    let probe = json!({ "startDate": days_ago(1) });
    d.eg.audit_rate_limit_next(1, 20);
    let limited = d.stream(&token, &probe).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("20"));
    assert!(limited.header("x-ratelimit-remaining-hour").is_some());

    d.eg.fail_next(1, 503);
    assert_eq!(d.stream(&token, &probe).await.status, 503);

    // Enforced: at most 10 a minute (the minute may roll over mid-test, so
    // allow the count to restart once).
    d.eg.set_enforce_audit_rate_limit(true);
    let mut refused = None;
    for i in 0..25 {
        let r = d.stream(&token, &probe).await;
        if r.status == 429 {
            refused = Some((i, r.header("retry-after").unwrap().parse::<u64>().unwrap()));
            break;
        }
    }
    let (at, wait) = refused.expect("the 10/min limit was never enforced");
    assert!(at <= 20, "{at}");
    assert!((1..=60).contains(&wait), "{wait}");
}

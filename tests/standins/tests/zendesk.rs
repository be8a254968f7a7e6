//! The Zendesk stand-in, exercised over real HTTPS the way a connector sees
//! it: the real hostname, resolved to the loopback port, trusting the test CA.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use ward_standins::zendesk::{Plan, RateHeaderStyle};
use ward_standins::{TestCa, ZendeskConfig, ZendeskStandIn};

struct Account {
    zd: ZendeskStandIn,
    http: reqwest::Client,
    basic: String,
    _ca: TestCa,
}

struct Page {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Page {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    fn ids(&self, key: &str) -> Vec<u64> {
        self.body[key]
            .as_array()
            .unwrap_or_else(|| panic!("no {key} in {}", self.body))
            .iter()
            .map(|e| e["id"].as_u64().unwrap())
            .collect()
    }

    fn next(&self) -> Option<String> {
        self.body["links"]["next"].as_str().map(str::to_owned)
    }
}

async fn start(cfg: ZendeskConfig) -> Account {
    let ca = TestCa::generate().unwrap();
    let zd = ZendeskStandIn::start(cfg, &ca).await.unwrap();
    let root = reqwest::Certificate::from_pem(ca.ca_pem().as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([root])
        .resolve(&zd.host(), zd.addr())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (email, token) = zd.api_token();
    let basic = basic(&format!("{email}/token"), &token);
    Account {
        zd,
        http,
        basic,
        _ca: ca,
    }
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

impl Account {
    async fn get_with(&self, url: &str, auth: Option<&str>) -> Page {
        let mut req = self.http.get(url);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path_and_query: &str) -> Page {
        let url = format!("{}{path_and_query}", self.zd.base_url());
        self.get_with(&url, Some(&self.basic)).await
    }

    /// Follows `links.next` from `first` until `has_more` is false.
    async fn walk(&self, first: &str, key: &str) -> (Vec<u64>, usize) {
        let mut page = self.get(first).await;
        let mut ids = Vec::new();
        let mut pages = 1;
        loop {
            assert_eq!(page.status, 200, "{}", page.body);
            ids.extend(page.ids(key));
            if !page.body["meta"]["has_more"].as_bool().unwrap() {
                return (ids, pages);
            }
            let next = page.next().expect("has_more without links.next");
            page = self.get_with(&next, Some(&self.basic)).await;
            pages += 1;
        }
    }
}

fn iso(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn now_s() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn created_s(e: &Value) -> i64 {
    let s = e["created_at"].as_str().unwrap();
    // Zendesk timestamps have whole seconds: `2021-05-28T18:39:50Z`.
    assert!(s.len() == 20 && s.ends_with('Z'), "{s}");
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

fn window(from: i64, to: i64) -> String {
    format!(
        "filter%5Bcreated_at%5D%5B%5D={}&filter%5Bcreated_at%5D%5B%5D={}",
        iso(from),
        iso(to)
    )
}

fn config(events: usize) -> ZendeskConfig {
    ZendeskConfig {
        events,
        ..ZendeskConfig::default()
    }
}

fn assert_zendesk_error(page: &Page, status: u16, error: &str) {
    assert_eq!(page.status, status, "{}", page.body);
    assert!(page.header("content-type").starts_with("application/json"));
    assert_eq!(page.body["error"], error, "{}", page.body);
}

#[tokio::test]
async fn ascending_cursor_walk_over_a_window_lists_each_record_once() {
    let acct = start(config(2_345)).await;
    let now = now_s();
    let path = format!(
        "/api/v2/audit_logs?{}&sort=created_at&page%5Bsize%5D=100",
        window(now - 8 * 86_400, now)
    );
    let (ids, pages) = acct.walk(&path, "audit_logs").await;
    assert_eq!(pages, 24);
    let expected: Vec<u64> = acct
        .zd
        .event_ids()
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(ids, expected);

    // The envelope: cursors and both links on every page with rows; the
    // next link repeats the filters and is Zendesk-encoded.
    let first = acct.get(&path).await;
    assert_eq!(first.body["audit_logs"].as_array().unwrap().len(), 100);
    let meta = &first.body["meta"];
    assert_eq!(meta["has_more"], true);
    assert!(meta["after_cursor"].is_string() && meta["before_cursor"].is_string());
    let next = first.next().unwrap();
    assert!(
        next.starts_with(
            "https://ward-demo.zendesk.com/api/v2/audit_logs?filter%5Bcreated_at%5D%5B%5D="
        ),
        "{next}"
    );
    assert!(next.contains("&sort=created_at&page%5Bafter%5D="), "{next}");
    assert!(next.ends_with("&page%5Bsize%5D=100"), "{next}");
    assert!(first.body["links"]["prev"].is_string());

    // Records have the documented fields in the recorded order.
    let e = &first.body["audit_logs"][0];
    let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected_keys = vec![
        "url",
        "id",
        "action_label",
        "actor_id",
        "actor_name",
        "source_id",
        "source_type",
        "source_label",
        "action",
        "change_description",
        "ip_address",
        "created_at",
    ];
    expected_keys.sort_unstable();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected_keys);
    assert_eq!(
        e["url"],
        format!(
            "https://ward-demo.zendesk.com/api/v2/audit_logs/{}.json",
            e["id"]
        )
    );

    // Ascending by (created_at, id), with some seconds shared.
    let mut all = Vec::new();
    let mut page = first;
    loop {
        all.extend(page.body["audit_logs"].as_array().unwrap().clone());
        match (page.body["meta"]["has_more"].as_bool(), page.next()) {
            (Some(true), Some(next)) => page = acct.get_with(&next, Some(&acct.basic)).await,
            _ => break,
        }
    }
    let keys: Vec<(i64, u64)> = all
        .iter()
        .map(|e| (created_s(e), e["id"].as_u64().unwrap()))
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    assert!(
        keys.windows(2).any(|w| w[0].0 == w[1].0),
        "no shared seconds"
    );
    let oldest = keys[0].0;
    assert!(oldest >= now - 7 * 86_400 - 2 && keys.last().unwrap().0 < now);

    // The last page says has_more=false yet still carries cursors.
    let (ids_tail, _) = acct
        .walk(
            &format!(
                "/api/v2/audit_logs?{}&sort=created_at&page%5Bsize%5D=100",
                window(keys[2_300].0, now)
            ),
            "audit_logs",
        )
        .await;
    assert!(ids_tail.len() >= 45);
    acct.zd.shutdown().await;
}

#[tokio::test]
async fn windows_are_inclusive_and_appended_records_share_a_second() {
    let acct = start(config(50)).await;
    let now = now_s();
    let all = acct
        .get(&format!(
            "/api/v2/audit_logs?{}&sort=created_at&page%5Bsize%5D=100",
            window(now - 8 * 86_400, now)
        ))
        .await;
    let records = all.body["audit_logs"].as_array().unwrap().clone();
    assert_eq!(records.len(), 50);
    assert_eq!(all.body["meta"]["has_more"], false);
    assert!(all.body["meta"]["after_cursor"].is_string());
    // Both ends of the window are inclusive.
    let t = created_s(&records[20]);
    let exact = acct
        .get(&format!(
            "/api/v2/audit_logs?{}&page%5Bsize%5D=100",
            window(t, t)
        ))
        .await;
    let at_t = records.iter().filter(|e| created_s(e) == t).count();
    assert_eq!(exact.ids("audit_logs").len(), at_t);

    acct.zd.append_events(7);
    assert_eq!(acct.zd.event_count(), 57);
    let newest_initial = created_s(records.last().unwrap());
    let fresh = acct
        .get(&format!(
            "/api/v2/audit_logs?{}&sort=created_at&page%5Bsize%5D=100",
            window(newest_initial + 1, now_s() + 1)
        ))
        .await;
    let fresh_records = fresh.body["audit_logs"].as_array().unwrap();
    assert_eq!(fresh_records.len(), 7);
    let seconds: BTreeSet<i64> = fresh_records.iter().map(created_s).collect();
    assert_eq!(seconds.len(), 1);
    acct.zd.shutdown().await;
}

#[tokio::test]
async fn default_order_is_newest_first_and_before_cursors_page_back() {
    let acct = start(config(250)).await;
    let first = acct.get("/api/v2/audit_logs?page%5Bsize%5D=100").await;
    let newest = first.ids("audit_logs");
    let all: Vec<u64> = acct
        .zd
        .event_ids()
        .iter()
        .rev()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(newest, all[..100]);
    let second = acct
        .get_with(&first.next().unwrap(), Some(&acct.basic))
        .await;
    assert_eq!(second.ids("audit_logs"), all[100..200]);
    let back = acct
        .get_with(
            second.body["links"]["prev"].as_str().unwrap(),
            Some(&acct.basic),
        )
        .await;
    assert_eq!(back.ids("audit_logs"), newest);
    assert_eq!(back.body["meta"]["has_more"], false);

    // Offset pagination: the classic envelope.
    let offset = acct.get("/api/v2/audit_logs?per_page=100&page=3").await;
    assert_eq!(offset.ids("audit_logs"), all[200..]);
    assert_eq!(offset.body["count"], 250);
    assert_eq!(offset.body["next_page"], Value::Null);
    assert!(
        offset.body["previous_page"]
            .as_str()
            .unwrap()
            .ends_with("page=2")
    );
    acct.zd.shutdown().await;
}

#[tokio::test]
async fn filters_and_invalid_requests() {
    let acct = start(config(600)).await;
    let logins = acct
        .get("/api/v2/audit_logs?filter%5Baction%5D=login&page%5Bsize%5D=100")
        .await;
    let rows = logins.body["audit_logs"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|e| e["action"] == "login"));
    let system = acct
        .get("/api/v2/audit_logs?filter%5Bactor_id%5D=-1&page%5Bsize%5D=100")
        .await;
    let rows = system.body["audit_logs"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|e| e["actor_name"] == "Zendesk" && e["ip_address"].is_null())
    );
    let settings = acct
        .get("/api/v2/audit_logs?filter%5Bsource_type%5D=account_setting&page%5Bsize%5D=5")
        .await;
    assert!(
        settings.body["audit_logs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["source_type"] == "account_setting")
    );

    let once = acct
        .get(&format!(
            "/api/v2/audit_logs?filter%5Bcreated_at%5D%5B%5D={}&page%5Bsize%5D=10",
            iso(now_s() - 100)
        ))
        .await;
    assert_zendesk_error(&once, 400, "InvalidValue");
    assert!(once.body["description"].as_str().unwrap().contains("twice"));
    assert_zendesk_error(
        &acct.get("/api/v2/audit_logs?page%5Bsize%5D=101").await,
        400,
        "InvalidPaginationParameter",
    );
    assert_zendesk_error(
        &acct
            .get("/api/v2/audit_logs?page%5Bafter%5D=bm9wZQ%3D%3D")
            .await,
        400,
        "InvalidPaginationParameter",
    );
    assert_zendesk_error(
        &acct
            .get("/api/v2/audit_logs?sort=action&page%5Bsize%5D=1")
            .await,
        400,
        "InvalidValue",
    );
    assert_zendesk_error(
        &acct.get("/api/v2/audit_logs?filter%5Bsource_id%5D=1").await,
        400,
        "InvalidValue",
    );
    // A cursor issued for one sort order is refused by the other.
    let asc = acct
        .get("/api/v2/audit_logs?sort=created_at&page%5Bsize%5D=1")
        .await;
    let cursor = asc.body["meta"]["after_cursor"].as_str().unwrap();
    let mixed = acct
        .get(&format!(
            "/api/v2/audit_logs?sort=-created_at&page%5Bafter%5D={}",
            urlencode(cursor)
        ))
        .await;
    assert_zendesk_error(&mixed, 400, "InvalidPaginationParameter");
    assert_zendesk_error(&acct.get("/api/v2/nope").await, 404, "InvalidEndpoint");
    let one = acct
        .get(&format!(
            "/api/v2/audit_logs/{}.json",
            acct.zd.event_ids()[17]
        ))
        .await;
    assert_eq!(
        one.body["audit_log"]["id"].to_string(),
        acct.zd.event_ids()[17]
    );
    acct.zd.shutdown().await;
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn offset_pagination_stops_at_ten_thousand() {
    let acct = start(config(10_050)).await;
    let page = acct.get("/api/v2/audit_logs?per_page=100&page=100").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body["count"], 10_050);
    assert!(page.body["next_page"].is_string());
    assert_zendesk_error(
        &acct.get("/api/v2/audit_logs?per_page=100&page=101").await,
        400,
        "InvalidPaginationParameter",
    );
    acct.zd.shutdown().await;
}

#[tokio::test]
async fn users_page_by_cursor_and_offset() {
    let acct = start(ZendeskConfig {
        users: 257,
        ..config(0)
    })
    .await;
    let (ids, pages) = acct.walk("/api/v2/users?page%5Bsize%5D=100", "users").await;
    assert_eq!(pages, 3);
    let expected: Vec<u64> = acct
        .zd
        .user_ids()
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(ids, expected);
    let offset = acct.get("/api/v2/users.json").await;
    assert_eq!(offset.body["count"], 257);
    assert_eq!(offset.ids("users"), expected[..100]);
    assert!(
        offset.body["next_page"]
            .as_str()
            .unwrap()
            .starts_with("https://ward-demo.zendesk.com/api/v2/users.json?page=2")
    );
    // The recorded user shape: same fields as go-zendesk's fixture.
    let u = &offset.body["users"][0];
    for field in [
        "id",
        "url",
        "name",
        "email",
        "created_at",
        "updated_at",
        "time_zone",
        "iana_time_zone",
        "phone",
        "shared_phone_number",
        "photo",
        "locale_id",
        "locale",
        "organization_id",
        "role",
        "verified",
        "external_id",
        "tags",
        "alias",
        "active",
        "shared",
        "shared_agent",
        "last_login_at",
        "two_factor_auth_enabled",
        "signature",
        "details",
        "notes",
        "role_type",
        "custom_role_id",
        "moderator",
        "ticket_restriction",
        "only_private_comments",
        "restricted_agent",
        "suspended",
        "chat_only",
        "default_group_id",
        "report_csv",
        "user_fields",
    ] {
        assert!(u.get(field).is_some(), "missing {field}");
    }
    let admins = acct
        .get("/api/v2/users?role=admin&page%5Bsize%5D=100")
        .await;
    assert!(
        admins.body["users"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["role"] == "admin")
    );
    let me = acct.get("/api/v2/users/me").await;
    assert_eq!(me.body["user"]["email"], "owner@ward-demo.example");
    assert_eq!(me.body["user"]["role"], "admin");
    acct.zd.shutdown().await;
}

#[tokio::test]
async fn credentials_anonymous_revoked_and_header_spellings() {
    let acct = start(ZendeskConfig {
        rate_headers: RateHeaderStyle::Recorded,
        ..config(10)
    })
    .await;
    let me = format!("{}/api/v2/users/me", acct.zd.base_url());
    let logs = format!("{}/api/v2/audit_logs?page%5Bsize%5D=1", acct.zd.base_url());
    let anon = acct.get_with(&me, None).await;
    assert_eq!(anon.status, 200);
    assert_eq!(anon.body["user"]["id"], Value::Null);
    assert_eq!(anon.body["user"]["name"], "Anonymous user");
    assert_eq!(
        acct.get_with(&logs, None).await.body,
        json!({"error": "Couldn't authenticate you"})
    );
    let wrong = basic("owner@ward-demo.example/token", "nope");
    let bad = acct.get_with(&logs, Some(&wrong)).await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.body, json!({"error": "Couldn't authenticate you"}));
    assert_eq!(acct.get_with(&me, Some(&wrong)).await.status, 401);
    acct.zd.set_anonymous_for_bad_basic(true);
    assert_eq!(
        acct.get_with(&me, Some(&wrong)).await.body["user"]["id"],
        Value::Null
    );
    // Password auth (no `/token`) is not a way in.
    let (email, token) = acct.zd.api_token();
    let password = acct.get_with(&logs, Some(&basic(&email, &token))).await;
    assert_eq!(password.status, 401);

    let ok = acct.get("/api/v2/audit_logs?page%5Bsize%5D=1").await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("rate-limit"), "700");
    assert_eq!(ok.header("x-rate-limit"), "700");
    assert!(ok.header("rate-limit-remaining").parse::<u32>().unwrap() < 700);
    assert!(ok.header("rate-limit-reset").parse::<u32>().unwrap() <= 60);
    assert!(ok.headers.get("ratelimit-limit").is_none());

    acct.zd.revoke_token();
    let revoked = acct.get("/api/v2/audit_logs?page%5Bsize%5D=1").await;
    assert_eq!(revoked.status, 401);
    acct.zd.restore_token();
    assert_eq!(
        acct.get("/api/v2/audit_logs?page%5Bsize%5D=1").await.status,
        200
    );
    acct.zd.shutdown().await;
}

#[tokio::test]
async fn role_and_plan_switches() {
    let acct = start(config(10)).await;
    let forbidden = json!({"error": {"title": "Forbidden", "message": "You do not have access to this page. Please contact the account owner of this help desk for further help."}});
    acct.zd.set_plan(Plan::Professional);
    let p = acct.get("/api/v2/audit_logs?page%5Bsize%5D=1").await;
    assert_eq!((p.status, &p.body), (403, &forbidden));
    assert_eq!(acct.get("/api/v2/users?page%5Bsize%5D=1").await.status, 200);
    acct.zd.set_plan(Plan::EnterprisePlus);
    acct.zd.set_owner_role("agent");
    let a = acct.get("/api/v2/audit_logs?page%5Bsize%5D=1").await;
    assert_eq!((a.status, &a.body), (403, &forbidden));
    assert_eq!(
        acct.get("/api/v2/users/me").await.body["user"]["role"],
        "agent"
    );
    assert_eq!(acct.get("/api/v2/users?page%5Bsize%5D=1").await.status, 200);
    acct.zd.set_owner_role("end-user");
    assert_eq!(acct.get("/api/v2/users?page%5Bsize%5D=1").await.status, 403);
    assert_eq!(acct.get("/api/v2/users/me").await.status, 200);
    acct.zd.set_owner_role("admin");
    assert_eq!(
        acct.get("/api/v2/audit_logs?page%5Bsize%5D=1").await.status,
        200
    );
    let brands = acct.get("/api/v2/brands").await;
    assert_eq!(brands.body["brands"][0]["name"], "Ward Demo Support");
    assert_eq!(brands.body["brands"][0]["default"], true);
    acct.zd.shutdown().await;
}

#[tokio::test]
async fn throttling_and_server_errors_on_demand() {
    let acct = start(config(10)).await;
    acct.zd.rate_limit_next(1, 93);
    acct.zd.rate_limit_without_retry_after_next(1, 12);
    acct.zd.fail_next(1, 503);
    let limited = acct.get("/api/v2/users/me").await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), "93");
    assert!(limited.header("content-type").starts_with("text/html"));
    assert_eq!(limited.header("ratelimit-remaining"), "0");
    assert_eq!(limited.header("x-rate-limit-remaining"), "0");
    let reset: i64 = limited.header("ratelimit-reset").parse().unwrap();
    assert!((91..=93).contains(&reset), "{reset}");
    let quiet = acct.get("/api/v2/users/me").await;
    assert_eq!(quiet.status, 429);
    assert!(quiet.headers.get("retry-after").is_none());
    assert!((10..=12).contains(&quiet.header("ratelimit-reset").parse::<i64>().unwrap()));
    assert_eq!(acct.get("/api/v2/users/me").await.status, 503);
    assert_eq!(acct.get("/api/v2/users/me").await.status, 200);
    let statuses: Vec<u16> = acct.zd.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 429, 503, 200]);
    assert!(
        acct.zd
            .requests()
            .iter()
            .all(|r| r.host.as_deref() == Some("ward-demo.zendesk.com")
                && r.auth_scheme.as_deref() == Some("Basic"))
    );
    acct.zd.shutdown().await;
}

/// The OAuth client and a browser that stops at redirects.
async fn authorize(acct: &Account, scope: &str, state: &str) -> reqwest::Response {
    let (client_id, _) = acct.zd.oauth_client();
    let url = format!(
        "{}/oauth/authorizations/new?response_type=code&client_id={client_id}&redirect_uri={}&scope={}&state={state}",
        acct.zd.base_url(),
        urlencode("https://ward.example/oauth/callback"),
        urlencode(scope),
    );
    acct.http.get(url).send().await.unwrap()
}

fn callback(resp: &reqwest::Response) -> Vec<(String, String)> {
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://ward.example/oauth/callback?"),
        "{location}"
    );
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

async fn exchange(acct: &Account, body: &Value) -> (u16, Value) {
    let resp = acct
        .http
        .post(format!("{}/oauth/tokens", acct.zd.base_url()))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn oauth_code_flow_scopes_and_revocation() {
    let acct = start(config(30)).await;
    let (client_id, secret) = acct.zd.oauth_client();
    let q = callback(&authorize(&acct, "auditlogs:read users:read", "s1").await);
    assert_eq!(q[1], ("state".to_owned(), "s1".to_owned()));
    let code = q[0].1.clone();
    let request = json!({
        "grant_type": "authorization_code",
        "code": code,
        "client_id": client_id,
        "client_secret": secret,
        "redirect_uri": "https://ward.example/oauth/callback",
        "scope": "auditlogs:read users:read",
    });
    let (status, token) = exchange(&acct, &request).await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["token_type"], "bearer");
    assert_eq!(token["scope"], "auditlogs:read users:read");
    assert!(token.get("expires_in").is_none() && token.get("refresh_token").is_none());
    // Codes are single-use.
    let (status, again) = exchange(&acct, &request).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    let base = acct.zd.base_url();
    let logs = format!("{base}/api/v2/audit_logs?page%5Bsize%5D=1");
    assert_eq!(acct.get_with(&logs, Some(&bearer)).await.status, 200);
    assert_eq!(
        acct.get_with(&format!("{base}/api/v2/users/me"), Some(&bearer))
            .await
            .status,
        200
    );
    // Brands need the global read scope.
    let brands = acct
        .get_with(&format!("{base}/api/v2/brands"), Some(&bearer))
        .await;
    assert_eq!(brands.status, 403);
    assert_eq!(
        brands.body["description"],
        "Missing the following required scopes: read"
    );

    acct.zd.revoke_oauth_tokens();
    let revoked = acct.get_with(&logs, Some(&bearer)).await;
    assert_eq!(revoked.status, 401);
    assert_eq!(revoked.body["error"], "invalid_token");

    // A consent restricted to users:read: the token works for users only.
    acct.zd
        .set_oauth_granted_scopes(Some(vec!["users:read".to_owned()]));
    let q = callback(&authorize(&acct, "auditlogs:read users:read", "s2").await);
    let (status, narrow) = exchange(
        &acct,
        &json!({
            "grant_type": "authorization_code",
            "code": q[0].1,
            "client_id": client_id,
            "client_secret": secret,
            "redirect_uri": "https://ward.example/oauth/callback",
            "expires_in": 1800,
        }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(narrow["scope"], "users:read");
    assert_eq!(narrow["expires_in"], 1800);
    assert_eq!(narrow["refresh_token_expires_in"], 2_592_000);
    let bearer = format!("Bearer {}", narrow["access_token"].as_str().unwrap());
    let denied = acct.get_with(&logs, Some(&bearer)).await;
    assert_eq!(denied.status, 403);
    assert_eq!(
        denied.body,
        json!({"error": "Forbidden", "description": "Missing the following required scopes: auditlogs:read"})
    );
    assert_eq!(acct.zd.oauth_tokens_issued(), 2);
    assert_eq!(acct.zd.oauth_codes_issued(), 2);
    acct.zd.shutdown().await;
}

#[tokio::test]
async fn oauth_errors_wrong_secret_decline_and_bad_requests() {
    let acct = start(config(0)).await;
    let (client_id, _) = acct.zd.oauth_client();
    let q = callback(&authorize(&acct, "read", "s").await);
    let (status, body) = exchange(
        &acct,
        &json!({
            "grant_type": "authorization_code",
            "code": q[0].1,
            "client_id": client_id,
            "client_secret": "wrong",
            "redirect_uri": "https://ward.example/oauth/callback",
        }),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert!(body["error_description"].is_string());

    // A form-encoded body is not what the docs describe.
    let form = acct
        .http
        .post(format!("{}/oauth/tokens", acct.zd.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=authorization_code")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 400);

    // Codes expire (120 s at Zendesk; shortened here).
    acct.zd.set_oauth_code_lifetime(Duration::ZERO);
    let q = callback(&authorize(&acct, "read", "s2").await);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (_, secret) = acct.zd.oauth_client();
    let (status, body) = exchange(
        &acct,
        &json!({
            "grant_type": "authorization_code",
            "code": q[0].1,
            "client_id": client_id,
            "client_secret": secret,
            "redirect_uri": "https://ward.example/oauth/callback",
        }),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    acct.zd.set_oauth_decline(true);
    let q = callback(&authorize(&acct, "read", "s3").await);
    assert_eq!(q[0], ("error".to_owned(), "access_denied".to_owned()));
    assert!(q.contains(&("state".to_owned(), "s3".to_owned())));

    acct.zd.set_oauth_client("other", "x");
    let unknown = acct
        .http
        .get(format!(
            "{}/oauth/authorizations/new?response_type=code&client_id={client_id}&redirect_uri=https%3A%2F%2Fward.example%2Foauth%2Fcallback&scope=read&state=s4",
            acct.zd.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    assert!(unknown.headers().get("location").is_none());
    acct.zd.shutdown().await;
}

#[tokio::test]
async fn same_seed_same_data() {
    let a = start(config(300)).await;
    let b = start(config(300)).await;
    assert_eq!(a.zd.event_ids(), b.zd.event_ids());
    assert_eq!(a.zd.user_ids(), b.zd.user_ids());
    let pa = a.get("/api/v2/audit_logs?page%5Bsize%5D=5").await;
    let pb = b.get("/api/v2/audit_logs?page%5Bsize%5D=5").await;
    let strip = |v: &Value| {
        v["audit_logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.as_object_mut().unwrap().remove("created_at");
                e
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&pa.body), strip(&pb.body));
    let other = start(ZendeskConfig {
        seed: 2,
        ..config(300)
    })
    .await;
    assert_ne!(a.zd.event_ids(), other.zd.event_ids());
    a.zd.shutdown().await;
    b.zd.shutdown().await;
    other.zd.shutdown().await;
}

//! The Okta stand-in, exercised over real HTTPS the way a connector sees it:
//! the real hostname, resolved to the loopback port, trusting the test CA.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use serde_json::Value;
use ward_standins::{OktaConfig, OktaStandIn, TestCa};

const TOKEN: &str = "00test-token-abc";

struct Org {
    okta: OktaStandIn,
    http: reqwest::Client,
    _ca: TestCa,
}

struct Page {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Page {
    fn links(&self) -> Vec<String> {
        self.headers
            .get_all("link")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    fn next(&self) -> Option<String> {
        self.links().iter().find_map(|l| {
            l.strip_suffix(">; rel=\"next\"")
                .map(|u| u.trim_start_matches('<').to_owned())
        })
    }

    fn items(&self) -> &Vec<Value> {
        self.body.as_array().expect("array body")
    }

    fn uuids(&self) -> Vec<String> {
        self.items()
            .iter()
            .map(|e| e["uuid"].as_str().unwrap().to_owned())
            .collect()
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).unwrap().to_str().unwrap()
    }
}

fn config(events: usize) -> OktaConfig {
    OktaConfig {
        api_token: TOKEN.to_owned(),
        events,
        ..OktaConfig::default()
    }
}

async fn start(cfg: OktaConfig) -> Org {
    let ca = TestCa::generate().unwrap();
    let okta = OktaStandIn::start(cfg, &ca).await.unwrap();
    let root = reqwest::Certificate::from_pem(ca.ca_pem().as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([root])
        .resolve(&okta.host(), okta.addr())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    Org {
        okta,
        http,
        _ca: ca,
    }
}

impl Org {
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
        let url = format!("{}{path_and_query}", self.okta.base_url());
        self.get_with(&url, Some(&format!("SSWS {TOKEN}"))).await
    }

    async fn follow(&self, url: &str) -> Page {
        self.get_with(url, Some(&format!("SSWS {TOKEN}"))).await
    }
}

fn iso(t: time::OffsetDateTime) -> String {
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).unwrap();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn days_ago(days: i64) -> String {
    iso(time::OffsetDateTime::now_utc() - time::Duration::days(days))
}

fn parse_ms(s: &str) -> i128 {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp_nanos()
        / 1_000_000
}

fn published_ms(e: &Value) -> i128 {
    let s = e["published"].as_str().unwrap();
    // Okta always sends milliseconds and `Z`: `2024-01-02T03:04:05.000Z`.
    assert!(
        s.ends_with('Z') && s.len() == 24 && &s[19..20] == ".",
        "{s}"
    );
    parse_ms(s)
}

fn assert_error(page: &Page, status: u16, code: &str) {
    assert_eq!(page.status, status, "{:?}", page.body);
    assert_eq!(page.header("content-type"), "application/json");
    assert_eq!(page.body["errorCode"], code);
    assert_eq!(page.body["errorLink"], code);
    assert!(page.body["errorId"].as_str().unwrap().starts_with("oae"));
    assert!(page.body["errorCauses"].is_array());
    assert!(page.body["errorSummary"].is_string());
}

#[tokio::test]
async fn polling_walk_pages_then_keeps_a_next_link_that_sees_new_events() {
    let org = start(config(2500)).await;
    let mut url = format!(
        "{}/api/v1/logs?since={}&limit=1000",
        org.okta.base_url(),
        days_ago(60)
    );
    let mut sizes = Vec::new();
    let mut seen = Vec::new();
    let empty = loop {
        let page = org.follow(&url).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        assert_eq!(page.header("content-type"), "application/json");
        for h in [
            "x-rate-limit-limit",
            "x-rate-limit-remaining",
            "x-rate-limit-reset",
        ] {
            page.header(h).parse::<i64>().unwrap();
        }
        let links = page.links();
        assert_eq!(links.len(), 2, "self and next are separate header lines");
        assert!(links[0].starts_with("<https://ward-demo.okta.com/api/v1/logs"));
        assert!(links[0].ends_with(">; rel=\"self\""));
        let next = page.next().expect("a polling page always has a next link");
        assert!(
            next.starts_with("https://ward-demo.okta.com/api/v1/logs?after="),
            "{next}"
        );
        assert!(next.ends_with("&limit=1000"), "{next}");
        sizes.push(page.items().len());
        seen.extend(page.uuids());
        if page.items().is_empty() {
            break page;
        }
        url = next;
    };
    assert_eq!(sizes, vec![1000, 1000, 500, 0]);
    assert_eq!(seen, org.okta.event_ids());

    // The empty page's next link is the poller's bookmark: asking again
    // returns nothing, and appended events appear behind it.
    let bookmark = empty.next().unwrap();
    let again = org.follow(&bookmark).await;
    assert!(again.items().is_empty());
    assert_eq!(again.next().as_deref(), Some(bookmark.as_str()));
    org.okta.append_events(7);
    assert_eq!(org.okta.event_count(), 2507);
    let fresh = org.follow(&bookmark).await;
    assert_eq!(fresh.uuids(), org.okta.event_ids()[2500..].to_vec());
    let after = org.follow(&fresh.next().unwrap()).await;
    assert!(after.items().is_empty());
    assert!(after.next().is_some());
    org.okta.shutdown().await;
}

#[tokio::test]
async fn events_have_the_full_log_event_shape() {
    let org = start(config(300)).await;
    let page = org
        .get(&format!("/api/v1/logs?since={}&limit=300", days_ago(31)))
        .await;
    let users = org.okta.user_ids();
    let mut last = 0;
    for e in page.items() {
        let p = published_ms(e);
        assert!(
            p >= last,
            "polling order follows persistence, here also published"
        );
        last = p;
        let uuid = e["uuid"].as_str().unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        assert_eq!(e["version"], "0");
        assert!(matches!(e["severity"].as_str().unwrap(), "INFO" | "WARN"));
        assert!(e["displayMessage"].is_string());
        assert!(e["eventType"].is_string());
        let actor = &e["actor"];
        for k in ["id", "type", "alternateId", "displayName"] {
            assert!(actor[k].is_string(), "actor.{k}");
        }
        assert!(actor["detailEntry"].is_null());
        if actor["type"] == "User" {
            assert!(users.contains(&actor["id"].as_str().unwrap().to_owned()));
        }
        let client = &e["client"];
        assert_eq!(client["zone"], "null");
        assert!(client["userAgent"]["rawUserAgent"].is_string());
        let ip = client["ipAddress"].as_str().unwrap();
        assert!(
            ip.starts_with("198.51.100.") || ip.starts_with("203.0.113."),
            "{ip}"
        );
        let geo = &client["geographicalContext"];
        assert!(geo["postalCode"].is_string());
        assert!(geo["geolocation"]["lat"].is_f64());
        assert!(e["device"].is_null());
        assert_eq!(e["authenticationContext"]["authenticationStep"], 0);
        assert!(matches!(
            e["outcome"]["result"].as_str().unwrap(),
            "SUCCESS" | "FAILURE" | "ALLOW" | "DENY" | "CHALLENGE"
        ));
        assert!(e["target"].is_array() || e["target"].is_null());
        assert_eq!(e["transaction"]["type"], "WEB");
        assert_eq!(e["transaction"]["detail"], serde_json::json!({}));
        assert_eq!(
            e["debugContext"]["debugData"]["requestId"],
            e["transaction"]["id"]
        );
        assert_eq!(e["request"]["ipChain"][0]["ip"], ip);
        assert!(e["securityContext"]["asNumber"].is_u64());
        assert!(e.get("legacyEventType").is_some());
    }
    let types: std::collections::HashSet<_> = page
        .items()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap().to_owned())
        .collect();
    assert!(types.len() >= 8, "a realistic mix, got {types:?}");
    org.okta.shutdown().await;
}

#[tokio::test]
async fn polling_defaults_to_the_last_seven_days_and_ninety_day_retention() {
    let org = start(OktaConfig {
        backfill_span_days: 120,
        ..config(1200)
    })
    .await;
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let day = 86_400_000i128;

    let recent = org.get("/api/v1/logs?limit=1000").await;
    assert!(!recent.items().is_empty());
    assert!(
        recent
            .items()
            .iter()
            .all(|e| published_ms(e) >= now_ms - 7 * day - 5000)
    );
    assert!(recent.items().len() < 100);

    let mut url = format!(
        "{}/api/v1/logs?since={}&limit=1000",
        org.okta.base_url(),
        days_ago(170)
    );
    let mut all = Vec::new();
    loop {
        let page = org.follow(&url).await;
        if page.items().is_empty() {
            break;
        }
        all.extend(page.items().iter().map(published_ms));
        url = page.next().unwrap();
    }
    assert!(all.iter().all(|p| *p >= now_ms - 90 * day - 5000));
    // 90 of the 120 days survive retention.
    assert!((880..=920).contains(&all.len()), "{}", all.len());

    let too_old = org
        .get(&format!("/api/v1/logs?since={}", days_ago(200)))
        .await;
    assert_error(&too_old, 400, "E0000053");
    org.okta.shutdown().await;
}

#[tokio::test]
async fn bounded_queries_are_ordered_finite_and_descend() {
    let org = start(config(2500)).await;
    let range = format!("since={}&until={}", days_ago(40), days_ago(0));
    for (order, asc) in [("ASCENDING", true), ("DESCENDING", false)] {
        let mut url = format!(
            "{}/api/v1/logs?{range}&limit=1000&sortOrder={order}",
            org.okta.base_url()
        );
        let mut sizes = Vec::new();
        let mut published = Vec::new();
        let mut uuids = Vec::new();
        loop {
            let page = org.follow(&url).await;
            assert_eq!(page.status, 200, "{:?}", page.body);
            sizes.push(page.items().len());
            published.extend(page.items().iter().map(published_ms));
            uuids.extend(page.uuids());
            match page.next() {
                Some(next) => {
                    assert_eq!(page.links().len(), 2);
                    url = next;
                }
                None => {
                    assert_eq!(page.links().len(), 1, "only self on the last page");
                    break;
                }
            }
        }
        assert_eq!(sizes, vec![1000, 1000, 500], "{order}");
        let mut sorted = published.clone();
        sorted.sort();
        if !asc {
            sorted.reverse();
        }
        assert_eq!(published, sorted, "{order}");
        let mut expected = org.okta.event_ids();
        if !asc {
            expected.reverse();
        }
        assert_eq!(uuids, expected, "{order}");
    }

    // A window that ends in the past stays finite and excludes newer events.
    let early = org
        .get(&format!(
            "/api/v1/logs?since={}&until={}&limit=1000",
            days_ago(31),
            days_ago(15)
        ))
        .await;
    assert_eq!(early.items().len(), 1000);
    let rest = org.follow(&early.next().unwrap()).await;
    let n = 1000 + rest.items().len();
    assert!((1200..=1300).contains(&n), "{n}");
    assert!(rest.next().is_none());
    let cutoff = parse_ms(&days_ago(15));
    assert!(rest.items().iter().all(|e| published_ms(e) < cutoff));
    org.okta.shutdown().await;
}

#[tokio::test]
async fn delayed_events_reach_pollers_but_not_since_based_paging() {
    let org = start(config(50)).await;
    let first = org
        .get(&format!("/api/v1/logs?since={}&limit=1000", days_ago(31)))
        .await;
    assert_eq!(first.items().len(), 50);
    let newest = first.items().iter().map(published_ms).max().unwrap();
    org.okta
        .append_delayed_events(3, Duration::from_secs(3600 * 24 * 2));
    let polled = org.follow(&first.next().unwrap()).await;
    assert_eq!(polled.items().len(), 3);
    assert!(polled.items().iter().all(|e| published_ms(e) < newest));
    // A client that asks for everything published after the newest event it
    // saw misses them, as it would against Okta.
    let newest_iso =
        iso(time::OffsetDateTime::from_unix_timestamp_nanos((newest + 1) * 1_000_000).unwrap());
    let naive = org
        .get(&format!(
            "/api/v1/logs?since={newest_iso}&until={}",
            days_ago(0)
        ))
        .await;
    assert!(naive.items().is_empty());
    org.okta.shutdown().await;
}

#[tokio::test]
async fn event_type_filter_is_carried_by_the_cursor() {
    let org = start(config(2000)).await;
    let filter = "eventType%20eq%20%22user.session.start%22";
    let mut url = format!(
        "{}/api/v1/logs?since={}&limit=100&filter={filter}",
        org.okta.base_url(),
        days_ago(31)
    );
    let mut count = 0;
    loop {
        let page = org.follow(&url).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        if page.items().is_empty() {
            break;
        }
        assert!(
            page.items()
                .iter()
                .all(|e| e["eventType"] == "user.session.start")
        );
        count += page.items().len();
        url = page.next().unwrap();
    }
    assert!((400..=720).contains(&count), "{count}");
    let bad = org
        .get("/api/v1/logs?filter=published%20gt%20%222024-01-01T00:00:00Z%22")
        .await;
    assert_error(&bad, 400, "E0000053");
    org.okta.shutdown().await;
}

#[tokio::test]
async fn invalid_requests_get_okta_errors() {
    let org = start(config(10)).await;
    assert_error(
        &org.get("/api/v1/logs?since=yesterday").await,
        400,
        "E0000001",
    );
    assert_error(
        &org.get("/api/v1/logs?until=2024-13-01").await,
        400,
        "E0000001",
    );
    assert_error(&org.get("/api/v1/logs?limit=1001").await, 400, "E0000001");
    assert_error(&org.get("/api/v1/logs?limit=-1").await, 400, "E0000001");
    assert_error(&org.get("/api/v1/logs?sortOrder=UP").await, 400, "E0000001");
    assert_error(&org.get("/api/v1/logs?after=12345").await, 400, "E0000001");
    let first = org.get("/api/v1/logs").await;
    let next = first.next().unwrap();
    let cursor = next
        .split("after=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(cursor.parse::<u64>().is_err(), "cursors are opaque");
    let both = org
        .get(&format!(
            "/api/v1/logs?after={cursor}&since={}",
            days_ago(1)
        ))
        .await;
    assert_error(&both, 400, "E0000001");
    let ok = org.get("/api/v1/logs?limit=0").await;
    assert_eq!(ok.status, 200);
    assert!(ok.items().is_empty() && ok.next().is_some());

    assert_error(&org.get("/api/v1/nope").await, 404, "E0000007");
    assert_error(
        &org.get("/api/v1/users/00uDoesNotExist12345").await,
        404,
        "E0000007",
    );
    let post = org
        .http
        .post(format!("{}/api/v1/logs", org.okta.base_url()))
        .header("authorization", format!("SSWS {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 405);
    let body: Value = post.json().await.unwrap();
    assert_eq!(body["errorCode"], "E0000022");
    org.okta.shutdown().await;
}

#[tokio::test]
async fn bad_missing_or_revoked_tokens_get_401() {
    let org = start(config(10)).await;
    let url = format!("{}/api/v1/logs", org.okta.base_url());
    for auth in [
        None,
        Some("SSWS wrong"),
        Some(&*format!("Bearer {TOKEN}")),
        Some(TOKEN),
    ] {
        let page = org.get_with(&url, auth).await;
        assert_error(&page, 401, "E0000011");
        assert_eq!(page.body["errorSummary"], "Invalid token provided");
        assert_eq!(page.body["errorCauses"], serde_json::json!([]));
    }
    assert_eq!(org.get("/api/v1/users/me").await.status, 200);
    org.okta.revoke_token();
    assert_error(&org.get("/api/v1/users/me").await, 401, "E0000011");
    assert_error(&org.get("/api/v1/logs").await, 401, "E0000011");
    org.okta.restore_token();
    assert_eq!(org.get("/api/v1/logs").await.status, 200);
    org.okta.shutdown().await;
}

#[tokio::test]
async fn rate_limits_and_server_errors_on_demand() {
    let org = start(OktaConfig {
        rate_limit_per_minute: 50,
        ..config(10)
    })
    .await;
    let ok = org.get("/api/v1/logs").await;
    assert_eq!(ok.header("x-rate-limit-limit"), "50");
    assert_eq!(ok.header("x-rate-limit-remaining"), "49");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let reset: i64 = ok.header("x-rate-limit-reset").parse().unwrap();
    assert!((now..=now + 61).contains(&reset));
    let second = org.get("/api/v1/logs").await;
    assert_eq!(second.header("x-rate-limit-remaining"), "48");

    org.okta.rate_limit_next(2, 30);
    for _ in 0..2 {
        let limited = org.get("/api/v1/logs").await;
        assert_error(&limited, 429, "E0000047");
        assert_eq!(
            limited.body["errorSummary"],
            "API call exceeded rate limit due to too many requests."
        );
        assert_eq!(limited.header("x-rate-limit-remaining"), "0");
        assert_eq!(limited.header("x-rate-limit-limit"), "50");
        let reset: i64 = limited.header("x-rate-limit-reset").parse().unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!((now + 28..=now + 31).contains(&reset), "{reset} vs {now}");
    }
    assert_eq!(org.get("/api/v1/logs").await.status, 200);

    org.okta.fail_next(1, 500);
    org.okta.fail_next(1, 503);
    let e500 = org.get("/api/v1/logs").await;
    assert_error(&e500, 500, "E0000009");
    assert_error(&org.get("/api/v1/users").await, 503, "E0000009");
    assert_eq!(org.get("/api/v1/logs").await.status, 200);

    let statuses: Vec<u16> = org.okta.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 200, 429, 429, 200, 500, 503, 200]);
    org.okta.shutdown().await;
}

#[tokio::test]
async fn users_page_by_id_and_hide_deprovisioned() {
    let org = start(OktaConfig {
        users: 450,
        ..config(10)
    })
    .await;
    let mut url = format!("{}/api/v1/users", org.okta.base_url());
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let page = org.follow(&url).await;
        assert_eq!(page.status, 200);
        pages += 1;
        assert!(page.items().len() <= 200);
        for u in page.items() {
            assert_ne!(u["status"], "DEPROVISIONED");
            ids.push(u["id"].as_str().unwrap().to_owned());
        }
        match page.next() {
            Some(next) => {
                assert!(
                    next.starts_with("https://ward-demo.okta.com/api/v1/users?after=200u"),
                    "{next}"
                );
                assert!(next.ends_with("&limit=200"));
                url = next;
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    let all = org.okta.user_ids();
    assert!(ids.len() < all.len(), "some users are deprovisioned");

    let deprovisioned = org
        .get("/api/v1/users?filter=status%20eq%20%22DEPROVISIONED%22")
        .await;
    assert!(!deprovisioned.items().is_empty());
    assert!(
        deprovisioned
            .items()
            .iter()
            .all(|u| u["status"] == "DEPROVISIONED")
    );
    assert_eq!(ids.len() + deprovisioned.items().len(), all.len());

    let small = org.get("/api/v1/users?limit=1").await;
    let u = &small.items()[0];
    for k in [
        "id",
        "status",
        "created",
        "lastUpdated",
        "activated",
        "statusChanged",
        "lastLogin",
        "passwordChanged",
    ] {
        assert!(u.get(k).is_some(), "user.{k}");
    }
    let id = u["id"].as_str().unwrap();
    assert!(id.starts_with("00u") && id.len() == 20);
    assert!(u["type"]["id"].as_str().unwrap().starts_with("oty"));
    assert!(u["profile"]["mobilePhone"].is_null());
    assert!(u["profile"]["secondEmail"].is_null());
    assert_eq!(u["profile"]["login"], u["profile"]["email"]);
    assert_eq!(u["credentials"]["provider"]["type"], "OKTA");
    assert_eq!(
        u["_links"]["self"]["href"],
        format!("https://ward-demo.okta.com/api/v1/users/{id}")
    );
    assert_eq!(
        small.next().unwrap(),
        format!("https://ward-demo.okta.com/api/v1/users?after=2{id}&limit=1")
    );
    assert_eq!(
        small.links()[0],
        "<https://ward-demo.okta.com/api/v1/users?limit=1>; rel=\"self\""
    );

    let me = org.get("/api/v1/users/me").await;
    assert_eq!(me.body["id"], all[0].as_str());
    assert_eq!(me.body["status"], "ACTIVE");
    let roles = org.get("/api/v1/users/me/roles").await;
    assert_eq!(roles.items().len(), 1);
    assert_eq!(roles.body[0]["type"], "SUPER_ADMIN");
    assert_eq!(roles.body[0]["label"], "Super Organization Administrator");
    assert_eq!(roles.body[0]["status"], "ACTIVE");
    assert_eq!(roles.body[0]["assignmentType"], "USER");
    assert!(roles.body[0]["id"].as_str().unwrap().starts_with("ra"));
    let by_id = org.get(&format!("/api/v1/users/{}/roles", all[0])).await;
    assert_eq!(by_id.body, roles.body);
    let other = org.get(&format!("/api/v1/users/{}/roles", all[1])).await;
    assert_eq!(other.body, serde_json::json!([]));

    let org_obj = org.get("/api/v1/org").await;
    assert_eq!(org_obj.body["subdomain"], "ward-demo");
    assert_eq!(org_obj.body["companyName"], "Ward Demo Inc");
    assert_eq!(org_obj.body["status"], "ACTIVE");
    assert!(org_obj.body["id"].as_str().unwrap().starts_with("00o"));
    org.okta.shutdown().await;
}

#[tokio::test]
async fn a_token_without_an_admin_role_cannot_read_logs_or_org() {
    let org = start(OktaConfig {
        admin_role: None,
        ..config(10)
    })
    .await;
    let logs = org.get("/api/v1/logs").await;
    assert_error(&logs, 403, "E0000006");
    assert_eq!(
        logs.body["errorSummary"],
        "You do not have permission to perform the requested action"
    );
    assert_error(&org.get("/api/v1/org").await, 403, "E0000006");
    assert_eq!(org.get("/api/v1/users/me").await.status, 200);
    let roles = org.get("/api/v1/users/me/roles").await;
    assert_eq!(roles.status, 200);
    assert_eq!(roles.body, serde_json::json!([]));
    org.okta.shutdown().await;
}

#[tokio::test]
async fn roles_that_cannot_read_the_system_log_get_403() {
    let org = start(OktaConfig {
        admin_role: Some("APP_ADMIN".to_owned()),
        ..config(10)
    })
    .await;
    assert_error(&org.get("/api/v1/logs").await, 403, "E0000006");
    let roles = org.get("/api/v1/users/me/roles").await;
    assert_eq!(roles.body[0]["type"], "APP_ADMIN");
    assert_eq!(roles.body[0]["label"], "Application Administrator");
    org.okta.shutdown().await;

    let reader = start(OktaConfig {
        admin_role: Some("REPORT_ADMIN".to_owned()),
        ..config(10)
    })
    .await;
    assert_eq!(reader.get("/api/v1/logs").await.status, 200);
    assert_error(&reader.get("/api/v1/org").await, 403, "E0000006");
    reader.okta.shutdown().await;
}

#[tokio::test]
async fn same_seed_same_data() {
    let a = start(config(500)).await;
    let b = start(config(500)).await;
    let c = start(OktaConfig {
        seed: 2,
        ..config(500)
    })
    .await;
    assert_eq!(a.okta.event_ids(), b.okta.event_ids());
    assert_eq!(a.okta.user_ids(), b.okta.user_ids());
    assert_ne!(a.okta.event_ids()[..5], c.okta.event_ids()[..5]);
    let q = format!("/api/v1/logs?since={}&limit=20", days_ago(31));
    let pa = a.get(&q).await;
    let pb = b.get(&q).await;
    assert_eq!(pa.uuids(), a.okta.event_ids()[..20].to_vec());
    let strip = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e["published"] = Value::Null;
                e
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&pa.body), strip(&pb.body));
    for org in [a, b, c] {
        org.okta.shutdown().await;
    }
}

#[tokio::test]
async fn requests_are_recorded_with_the_real_hostname() {
    let org = start(config(5)).await;
    org.get("/api/v1/logs?limit=5").await;
    org.get_with(&format!("{}/api/v1/org", org.okta.base_url()), None)
        .await;
    let reqs = org.okta.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].path_and_query, "/api/v1/logs?limit=5");
    assert_eq!(reqs[0].host.as_deref(), Some("ward-demo.okta.com"));
    assert!(reqs[0].has_authorization);
    assert_eq!(reqs[0].auth_scheme.as_deref(), Some("SSWS"));
    assert_eq!(reqs[0].status, 200);
    assert!(!reqs[1].has_authorization);
    assert_eq!(reqs[1].status, 401);
    org.okta.shutdown().await;
}

#[tokio::test]
async fn a_hundred_thousand_events_start_fast_and_serve_big_pages() {
    let ca = TestCa::generate().unwrap();
    let t = Instant::now();
    let okta = OktaStandIn::start(config(100_000), &ca).await.unwrap();
    let started = t.elapsed();
    let root = reqwest::Certificate::from_pem(ca.ca_pem().as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([root])
        .resolve(&okta.host(), okta.addr())
        .build()
        .unwrap();
    let url = format!(
        "{}/api/v1/logs?since={}&limit=1000",
        okta.base_url(),
        days_ago(31)
    );
    let fetch = || async {
        let t = Instant::now();
        let resp = http
            .get(&url)
            .header("authorization", format!("SSWS {TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let body: Vec<Value> = resp.json().await.unwrap();
        assert_eq!(body.len(), 1000);
        t.elapsed()
    };
    let cold = fetch().await;
    let warm = fetch().await;
    eprintln!("start {started:?}, first 1000-event page {cold:?}, again {warm:?}");
    assert!(started < Duration::from_secs(2), "start took {started:?}");
    assert!(cold < Duration::from_secs(2), "first page took {cold:?}");
    okta.shutdown().await;
}

#[test]
fn handles_can_be_shared_across_tasks() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<OktaStandIn>();
    assert_send_sync::<TestCa>();
}

//! Egnyte connector: the Audit Reporting API v2 stream
//! (`/pubapi/v2/audit/stream`) and the SCIM-style users listing
//! (`/pubapi/v2/users`), with an OAuth 2.0 token (authorization code flow at
//! `https://{domain}.egnyte.com/puboauth/token`, scopes `Egnyte.audit
//! Egnyte.user`).
//!
//! The stream is read the way Egnyte describes it: the first call carries
//! `startDate` (at most 7 days back) and the audit types, every later call
//! only the `nextCursor` of the previous answer; `moreEvents` says whether
//! to call again at once. A page with `moreEvents: false` still returns the
//! cursor, which is where the next poll resumes.
//!
//! Egnyte's stream events carry no id. Each event's id is derived from its
//! content: a SHA-256 over the event's JSON in a canonical form (keys sorted,
//! no whitespace), so the same event read twice (after a restart, or when a
//! refused cursor makes us re-read from a date) gets the same id and Ward's
//! store keeps it once. Two events identical in every field (same
//! millisecond, user, path, action, IP...) are indistinguishable to any
//! reader; within one page the second and later copies get `-2`, `-3`...
//! appended so none is lost.

use std::collections::HashMap;
use std::fmt::Write as _;

use api::*;
use audit::*;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use ward_sdk::check::{ADMIN_ROLE, CREDENTIALS_VALID, PLAN_INCLUDES_AUDIT, SCOPE_PRESENT};
use ward_sdk::http::{Request, Response, with_query};
use ward_sdk::oauth::{self, OAuthClient};
use ward_sdk::time::{format_rfc3339, now, parse_rfc3339};
use ward_sdk::{
    Actor, ActorKind, AuditPage, Check, Config, Connector, Error, Event, Outcome, Result, Target,
    TestReport, Timestamp, User, UserPage, secret_ref,
};

/// OAuth: the audit stream and the user directory, with the key of an
/// application registered at developers.egnyte.com.
const OAUTH: OAuthClient = OAuthClient {
    scopes: &["Egnyte.audit", "Egnyte.user"],
    missing_client_id: "OAuth needs the API key of an application registered at developers.egnyte.com: set config field `client_id` (apiKey in the API) and give its secret as apiSecret",
};
/// Audit types requested on the first stream call: everything a security
/// team reads (the quality-docs types are product-specific and left out).
const AUDIT_TYPES: &[&str] = &[
    "FILE_AUDIT",
    "LOGIN_AUDIT",
    "PERMISSION_AUDIT",
    "USER_AUDIT",
    "GROUP_AUDIT",
    "WG_SETTINGS_AUDIT",
    "WORKFLOW_AUDIT",
];
/// Egnyte's largest users page.
const USER_PAGE: usize = 100;
const DAY_MS: i64 = 86_400_000;
/// The stream only starts within the last 7 days.
const STREAM_WINDOW_MS: i64 = 7 * DAY_MS;
/// Kept inside the window so a clock ahead of Egnyte's is not refused.
const WINDOW_MARGIN_MS: i64 = 10 * 60_000;
/// How far back "Test now" reads to see whether the audit API answers.
const PROBE_WINDOW_MS: i64 = 60_000;
/// Longest `nextCursor` we store; Egnyte's are a few dozen characters.
const MAX_CURSOR_LEN: usize = 4096;
/// Prefix of every audit cursor this connector writes.
const CURSOR_PREFIX: &str = "egnyte-v2:";
/// Prefix of users cursors.
const USERS_PREFIX: &str = "users:";

struct Egnyte;

mod api;
mod audit;
mod checks;
mod users;

impl Connector for Egnyte {
    fn auth_url(config: &Config, redirect_uri: &str, state: &str) -> Result<String> {
        // Egnyte serves the consent page at the token endpoint's URL.
        OAUTH.auth_url(
            config,
            &format!("{}/puboauth/token", base(config)?),
            redirect_uri,
            state,
        )
    }

    fn test(config: &Config) -> Result<TestReport> {
        checks::run(config)
    }

    fn fetch_audit(config: &Config, since: Timestamp, cursor: Option<String>) -> Result<AuditPage> {
        audit::fetch(config, since, cursor)
    }

    fn fetch_users(config: &Config, cursor: Option<String>) -> Result<UserPage> {
        users::fetch(config, cursor)
    }
}

ward_sdk::export_connector!(Egnyte);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::users::*;
    use super::*;

    // Event shapes from Egnyte's Audit Reporting API v2 example.
    const FILE_EVENT: &str = r#"{"date":1638936585716,"sourcePath":"/Shared/Departments/Marketing/Branding/Logo.jpg","targetPath":"N/A","user":"Jack Smith ( jsmith@company.com )","userId":"101","action":"Preview","access":"Web UI","ipAddress":"173.226.89.189","actionInfo":"","auditSource":"FILE_AUDIT"}"#;
    const USER_EVENT: &str = r#"{"date":1638940605824,"actor":"Jennifer Watkins ( jwatkins@company.com )","subject":"Paul Chen ( pchen@company.com )","action":"Disable","actionInfo":"","source":"Web UI","auditSource":"USER_AUDIT"}"#;
    const GROUP_EVENT: &str = r#"{"date":1638942414189,"actor":"Jennifer Watkins ( jwatkins@company.com )","group":"Engineering","action":"Create","actionInfo":"","source":"Web UI","auditSource":"GROUP_AUDIT"}"#;

    fn raw(s: &str) -> Box<RawValue> {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn maps_file_user_and_group_events() {
        let r = [raw(FILE_EVENT), raw(USER_EVENT), raw(GROUP_EVENT)];
        let refs: Vec<&RawValue> = r.iter().map(|b| b.as_ref()).collect();
        let events = map_events(&refs).unwrap();
        let file = &events[0];
        assert_eq!(file.time, 1_638_936_585_716);
        assert_eq!(file.action, "file.Preview");
        assert_eq!(file.actor.id.as_deref(), Some("101"));
        assert_eq!(file.actor.name.as_deref(), Some("Jack Smith"));
        assert_eq!(file.actor.email.as_deref(), Some("jsmith@company.com"));
        assert_eq!(file.targets.len(), 1, "N/A target path is no target");
        assert_eq!(file.targets[0].kind.as_deref(), Some("file"));
        assert_eq!(file.ip.as_deref(), Some("173.226.89.189"));
        assert_eq!(file.user_agent.as_deref(), Some("Web UI"));
        assert!(matches!(file.outcome, Outcome::Success));
        assert_eq!(file.raw, FILE_EVENT);
        let user = &events[1];
        assert_eq!(user.action, "user.Disable");
        assert_eq!(user.actor.email.as_deref(), Some("jwatkins@company.com"));
        assert_eq!(user.targets[0].kind.as_deref(), Some("user"));
        assert_eq!(user.targets[0].id.as_deref(), Some("pchen@company.com"));
        assert_eq!(events[2].targets[0].name.as_deref(), Some("Engineering"));
        assert!(
            events
                .iter()
                .all(|e| e.id.starts_with("eg-") && e.id.len() == 35)
        );
    }

    #[test]
    fn ids_ignore_key_order_and_spacing_but_not_content() {
        let a: Value =
            serde_json::from_str(r#"{"date":1,"action":"Upload","user":"A ( a@x.com )"}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{ "user": "A ( a@x.com )", "action": "Upload", "date": 1 }"#)
                .unwrap();
        let c: Value =
            serde_json::from_str(r#"{"date":2,"action":"Upload","user":"A ( a@x.com )"}"#).unwrap();
        assert_eq!(event_id(&a), event_id(&b));
        assert_ne!(event_id(&a), event_id(&c));
        // Identical copies within a page stay distinct.
        let r = [raw(FILE_EVENT), raw(FILE_EVENT)];
        let refs: Vec<&RawValue> = r.iter().map(|b| b.as_ref()).collect();
        let events = map_events(&refs).unwrap();
        assert_eq!(events[1].id, format!("{}-2", events[0].id));
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        for c in [
            StreamCursor::From(1_700_000_000_000),
            StreamCursor::Next {
                newest: 5,
                cursor: "AAN_lwABAX1zZe9AAAAAAAAAAAAAAAAAAAAAAA".into(),
            },
            StreamCursor::Next {
                newest: 5,
                cursor: "QmlnVGFibGVLZXk=".into(),
            },
        ] {
            assert_eq!(StreamCursor::parse(&c.encode()).unwrap(), c);
        }
        for bad in [
            "",
            "https://evil.example/",
            "egnyte-v2:from:yesterday",
            "egnyte-v2:next:12",
            "egnyte-v2:next:12:",
            "egnyte-v2:next:x:abc",
            "egnyte-v2:next:1:has space",
            "egnyte-v2:other:1",
        ] {
            let e = StreamCursor::parse(bad).unwrap_err();
            assert!(
                matches!(&e, Error::Internal(m) if m.contains("reset")),
                "{bad}: {e:?}"
            );
        }
        assert_eq!(parse_users_cursor("users:101").unwrap(), 101);
        assert!(parse_users_cursor("users:0").is_err());
        assert!(parse_users_cursor("101").is_err());
    }

    #[test]
    fn dates_in_any_reasonable_form() {
        for date in [
            "1638936585716",
            "\"1638936585716\"",
            "\"2021-12-08T04:09:45.716Z\"",
        ] {
            let v: Value =
                serde_json::from_str(&format!(r#"{{"date":{date},"action":"Login"}}"#)).unwrap();
            assert_eq!(
                map_event(&v, "{}", "x".into()).unwrap().time,
                1_638_936_585_716
            );
        }
        let v: Value = serde_json::from_str(r#"{"date":"yesterday"}"#).unwrap();
        assert!(matches!(
            map_event(&v, "{}", "x".into()),
            Err(Error::Internal(_))
        ));
    }

    #[test]
    fn people_and_flags() {
        assert_eq!(
            split_person("Jack Smith ( jsmith@company.com )"),
            (Some("Jack Smith".into()), Some("jsmith@company.com".into()))
        );
        assert_eq!(split_person("a@b.com"), (None, Some("a@b.com".into())));
        assert_eq!(
            split_person("Engineering"),
            (Some("Engineering".into()), None)
        );
        let v: Value = serde_json::from_str(r#"{"a":"true","b":false,"c":"x"}"#).unwrap();
        assert_eq!(flag(&v, "a"), Some(true));
        assert_eq!(flag(&v, "b"), Some(false));
        assert_eq!(flag(&v, "c"), None);
    }

    #[test]
    fn users_from_either_fixture_shape() {
        // Numbers and booleans (single-user example) or strings (list example).
        let one = raw(
            r#"{"id":12824215693,"userName":"mik","email":"mik@egnyte.com","name":{"formatted":"Michael Caine","familyName":"Caine","givenName":"Michael"},"active":true,"locked":false,"userType":"power"}"#,
        );
        let u = map_user(&one).unwrap();
        assert_eq!(u.id, "12824215693");
        assert_eq!(u.name.as_deref(), Some("Michael Caine"));
        assert_eq!(u.status.as_deref(), Some("active"));
        assert!(!u.is_admin);
        let two = raw(
            r#"{"id":"12345678","userName":"jmiller","email":"john.miller@example.com","name":{"familyName":"Miller","givenName":"John"},"active":"true","locked":"false","userType":"admin"}"#,
        );
        let u = map_user(&two).unwrap();
        assert_eq!(u.id, "12345678");
        assert_eq!(u.name.as_deref(), Some("John Miller"));
        assert_eq!(u.login.as_deref(), Some("jmiller"));
        assert!(u.is_admin);
    }

    #[test]
    fn errors_are_classified() {
        let resp = |status: u16, headers: Vec<(&str, &str)>, body: &str| Response {
            status,
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        };
        let qps = resp(
            403,
            vec![("x-mashery-error-code", "ERR_403_DEVELOPER_OVER_QPS")],
            "<h1>Developer Over Qps</h1>",
        );
        match error_for(&qps, "x") {
            Error::RateLimited(r) => {
                assert_eq!(r.retry_after_ms, 1000);
                assert!(r.message.contains("Developer Over Qps"), "{}", r.message);
            }
            e => panic!("{e:?}"),
        }
        let rate = resp(
            403,
            vec![
                ("x-mashery-error-code", "ERR_403_DEVELOPER_OVER_RATE"),
                ("retry-after", "20"),
            ],
            "<h1>Developer Over Rate</h1>",
        );
        assert!(
            matches!(error_for(&rate, "x"), Error::RateLimited(r) if r.retry_after_ms == 20_000)
        );
        let audit = resp(
            429,
            vec![("retry-after", "7")],
            "<h1>Developer Over AuditV2 Rate Limit</h1>",
        );
        assert!(
            matches!(error_for(&audit, "x"), Error::RateLimited(r) if r.retry_after_ms == 7_000)
        );
        let inactive = resp(
            403,
            vec![("x-mashery-error-code", "ERR_403_DEVELOPER_INACTIVE")],
            "<h1>Developer Inactive</h1>",
        );
        assert!(matches!(error_for(&inactive, "x"), Error::Unauthorized(_)));
        let plan = resp(
            403,
            vec![],
            r#"{"errorMessage":"Audit Reporting is not available for your plan"}"#,
        );
        assert!(matches!(error_for(&plan, "x"), Error::Forbidden(m) if m.contains("plan")));
        let users = resp(
            404,
            vec![],
            r#"{"Errors":[{"description":"User 12345678 not found.","code":"404"}]}"#,
        );
        assert!(
            matches!(error_for(&users, "x"), Error::Internal(m) if m.contains("User 12345678 not found."))
        );
        assert!(
            matches!(error_for(&resp(401, vec![], ""), "x"), Error::Unauthorized(m) if m.contains("reconnect"))
        );
        assert!(matches!(
            error_for(&resp(502, vec![], "bad gateway"), "x"),
            Error::Unavailable(_)
        ));
    }

    #[test]
    fn auth_url_and_start_date() {
        let config = Config::from_pairs([("domain", "acme"), ("client_id", "k3y")]);
        let url = Egnyte::auth_url(&config, "https://ward.local/cb", "s").unwrap();
        assert!(url.starts_with("https://acme.egnyte.com/puboauth/token?client_id=k3y&"));
        assert!(url.contains("response_type=code"));
        assert!(url.contains("scope=Egnyte.audit+Egnyte.user"));
        assert_eq!(start_date(1_638_936_585_716), "2021-12-08T04:09:45Z");
    }
}

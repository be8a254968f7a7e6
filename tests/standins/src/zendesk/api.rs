//! HTTP behaviour: routing, credentials, scopes, roles and plan, error
//! bodies, rate-limit headers, and the two pagination styles.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine as _;
use url::form_urlencoded;

use super::data::Directory;
use super::{RateHeaderStyle, ZendeskState, cursor, oauth};
use crate::server::{Fault, RateStatus};
use crate::synth::{now_ms, parse_iso};

/// Largest page in either pagination style.
const MAX_PAGE: usize = 100;
/// Offset pagination stops after this many records.
const OFFSET_LIMIT: usize = 10_000;
const FORBIDDEN_PAGE: &str = "You do not have access to this page. Please contact the account owner of this help desk for further help.";
const JSON: &str = "application/json; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

/// A response before the common headers are added.
struct Reply {
    status: StatusCode,
    body: String,
    content_type: &'static str,
    retry_after: Option<u64>,
    /// Rate-limit state to report instead of counting this request.
    rate: Option<RateStatus>,
}

impl Reply {
    fn json(status: StatusCode, body: String) -> Reply {
        Reply {
            status,
            body,
            content_type: JSON,
            retry_after: None,
            rate: None,
        }
    }

    fn ok(body: String) -> Reply {
        Reply::json(StatusCode::OK, body)
    }
}

/// `{"error": "...", "description": "..."}`, Zendesk's usual error body.
fn error(status: StatusCode, error: &str, description: &str) -> Reply {
    Reply::json(
        status,
        serde_json::json!({ "error": error, "description": description }).to_string(),
    )
}

fn bad_pagination(description: &str) -> Reply {
    error(
        StatusCode::BAD_REQUEST,
        "InvalidPaginationParameter",
        description,
    )
}

fn bad_value(description: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, "InvalidValue", description)
}

fn not_found() -> Reply {
    error(StatusCode::NOT_FOUND, "InvalidEndpoint", "Not found")
}

fn record_not_found() -> Reply {
    error(StatusCode::NOT_FOUND, "RecordNotFound", "Not found")
}

/// The generic 403 for features outside the plan or the caller's role.
fn forbidden_page() -> Reply {
    Reply::json(
        StatusCode::FORBIDDEN,
        serde_json::json!({ "error": { "title": "Forbidden", "message": FORBIDDEN_PAGE } })
            .to_string(),
    )
}

fn missing_scope(scope: &str) -> Reply {
    error(
        StatusCode::FORBIDDEN,
        "Forbidden",
        &format!("Missing the following required scopes: {scope}"),
    )
}

fn unauthenticated() -> Reply {
    Reply::json(
        StatusCode::UNAUTHORIZED,
        r#"{"error":"Couldn't authenticate you"}"#.to_owned(),
    )
}

fn invalid_token() -> Reply {
    Reply::json(
        StatusCode::UNAUTHORIZED,
        serde_json::json!({
            "error": "invalid_token",
            "error_description": "The access token provided is expired, revoked, malformed or invalid for other reasons."
        })
        .to_string(),
    )
}

/// Who a request acts as.
enum Caller {
    /// The owner; with the token's scopes for OAuth, `None` for an API token.
    Owner(Option<Vec<String>>),
    Anonymous,
    BadBasic,
    BadBearer,
}

fn authenticate(st: &ZendeskState, headers: &HeaderMap, now: i64) -> Caller {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Caller::Anonymous;
    };
    if let Some(token) = value.strip_prefix("Bearer ") {
        return match st.oauth.bearer(token.trim(), now) {
            Some(scopes) => Caller::Owner(Some(scopes)),
            None => Caller::BadBearer,
        };
    }
    let pair = value
        .strip_prefix("Basic ")
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok());
    let ok = pair
        .as_deref()
        .and_then(|p| p.split_once(':'))
        .is_some_and(|(user, pass)| {
            user.strip_suffix("/token")
                .is_some_and(|email| email.eq_ignore_ascii_case(&st.owner_email))
                && pass == st.api_token
                && !st.token_revoked.load(Ordering::SeqCst)
        });
    if ok {
        Caller::Owner(None)
    } else {
        Caller::BadBasic
    }
}

/// Handles every request: OAuth endpoints, then faults, then the API.
pub(super) async fn dispatch(
    State(st): State<Arc<ZendeskState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let query = uri.query().unwrap_or("");
    match (&method, path) {
        (&Method::GET, "/oauth/authorizations/new") => return st.oauth.authorize(query),
        (&Method::POST, "/oauth/tokens") => return st.oauth.token(&body),
        _ => {}
    }
    let now = now_ms();
    let reply = match st.faults.take() {
        Some(fault) => fault_reply(&st, fault, now),
        None => handle(&st, &method, path, query, &headers, now),
    };
    finish(&st, reply, now)
}

fn fault_reply(st: &ZendeskState, fault: Fault, now: i64) -> Reply {
    match fault {
        Fault::RetryAfter { secs }
        | Fault::RateLimited {
            reset_in_secs: secs,
        } => {
            let reset = now / 1000 + i64::try_from(secs).unwrap_or(i64::MAX / 4);
            Reply {
                status: StatusCode::TOO_MANY_REQUESTS,
                body: format!(
                    "Too many requests: the API rate limit for this account was exceeded. Please wait {secs} seconds before making another request."
                ),
                content_type: HTML,
                retry_after: matches!(fault, Fault::RetryAfter { .. }).then_some(secs),
                rate: Some(st.rates.exhaust("account", reset)),
            }
        }
        Fault::Status(code) => {
            let status = StatusCode::from_u16(code)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Reply {
                status,
                body: format!(
                    "<html><body><h1>{} {}</h1></body></html>",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("Error")
                ),
                content_type: HTML,
                retry_after: None,
                rate: None,
            }
        }
    }
}

fn handle(
    st: &ZendeskState,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    now: i64,
) -> Reply {
    let Some(rest) = path.strip_prefix("/api/v2/") else {
        return not_found();
    };
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".json").unwrap_or(rest);
    let segments: Vec<&str> = rest.split('/').collect();
    let is_me = segments == ["users", "me"];
    let scopes = match authenticate(st, headers, now) {
        Caller::Owner(scopes) => scopes,
        Caller::Anonymous if is_me => return anonymous(),
        Caller::BadBasic if is_me && st.anonymous_for_bad_basic.load(Ordering::SeqCst) => {
            return anonymous();
        }
        Caller::BadBearer => return invalid_token(),
        Caller::Anonymous | Caller::BadBasic => return unauthenticated(),
    };
    if method != Method::GET {
        return not_found();
    }
    let (role, plan) = {
        let s = st.switches();
        (s.role.clone(), s.plan)
    };
    let scope_ok = |resource: Option<&str>| {
        scopes
            .as_deref()
            .is_none_or(|s| oauth::can_read(s, resource))
    };
    let staff = role == "admin" || role == "agent";
    match segments.as_slice() {
        ["users", ..] if !scope_ok(Some("users")) => missing_scope("users:read"),
        ["audit_logs", ..] if !scope_ok(Some("auditlogs")) => missing_scope("auditlogs:read"),
        ["brands"] if !scope_ok(None) => missing_scope("read"),
        ["users", "me"] => Reply::ok(format!(
            "{{\"user\":{}}}",
            st.dir.user_json(st.dir.owner(), &role)
        )),
        ["users", ..] | ["brands"] if !staff => forbidden_page(),
        ["audit_logs", ..] if role != "admin" || !plan.has_audit_logs() => forbidden_page(),
        ["users"] => list_users(st, path, query, &role),
        ["users", id] => match id.parse().ok().and_then(|id| st.dir.find(id)) {
            Some(u) => Reply::ok(format!("{{\"user\":{}}}", user_json(st, u, &role))),
            None => record_not_found(),
        },
        ["audit_logs"] => list_audit(st, path, query),
        ["audit_logs", id] => {
            let log = st.events();
            match id
                .parse::<u64>()
                .ok()
                .and_then(|id| log.iter().find(|e| e.id == id))
            {
                Some(e) => Reply::ok(format!("{{\"audit_log\":{}}}", st.rendered(e).json)),
                None => record_not_found(),
            }
        }
        ["brands"] => Reply::ok(st.dir.brands_json()),
        _ => not_found(),
    }
}

fn anonymous() -> Reply {
    Reply::ok(format!("{{\"user\":{}}}", Directory::anonymous_json()))
}

fn user_json(st: &ZendeskState, u: &super::data::User, owner_role: &str) -> String {
    let role = if u.id == st.dir.owner().id {
        owner_role
    } else {
        u.role
    };
    st.dir.user_json(u, role)
}

fn finish(st: &ZendeskState, reply: Reply, now: i64) -> Response {
    let rate = reply
        .rate
        .unwrap_or_else(|| st.rates.hit("account", now / 1000));
    let reset_in = (rate.reset_epoch_secs - now / 1000).max(0);
    let mut response = Response::new(Body::from(reply.body));
    *response.status_mut() = reply.status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(reply.content_type),
    );
    let spelled = match st.rate_headers {
        RateHeaderStyle::Documented => {
            ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"]
        }
        RateHeaderStyle::Recorded => ["rate-limit", "rate-limit-remaining", "rate-limit-reset"],
    };
    let values = [
        ("x-zendesk-api-version", "v2".to_owned()),
        ("x-rate-limit", rate.limit.to_string()),
        ("x-rate-limit-remaining", rate.remaining.to_string()),
        (spelled[0], rate.limit.to_string()),
        (spelled[1], rate.remaining.to_string()),
        (spelled[2], reset_in.to_string()),
    ];
    for (name, value) in values {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    }
    if let Some(secs) = reply.retry_after {
        h.insert(header::RETRY_AFTER, secs.into());
    }
    response
}

/// Query parameters in order, repeated keys kept.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Params {
        Params(
            form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn has_cursor_params(&self) -> bool {
        self.0.iter().any(|(k, _)| k.starts_with("page["))
    }

    /// `https://{host}{path}?` with this query minus `drop`, plus `set`.
    fn link(&self, host: &str, path: &str, drop: &[&str], set: &[(&str, &str)]) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            if !drop.contains(&k.as_str()) && !set.iter().any(|(s, _)| s == k) {
                q.append_pair(k, v);
            }
        }
        for (k, v) in set {
            q.append_pair(k, v);
        }
        format!("https://{host}{path}?{}", q.finish())
    }
}

/// A sorted list served page by page: rows `range` of it, in ascending key
/// order, of which `matches` are listed.
struct Listing<'a> {
    /// Key of the JSON array (`audit_logs`, `users`).
    name: &'static str,
    /// The sort field (`created_at`, `id`); cursors carry its value, then
    /// the id for `created_at`.
    field: &'static str,
    range: Range<usize>,
    /// Number of values in a key.
    key_len: usize,
    key: &'a dyn Fn(usize) -> Vec<i64>,
    matches: &'a dyn Fn(usize) -> bool,
    render: &'a dyn Fn(usize) -> String,
    /// Default sort is descending (audit logs: `-created_at`).
    desc_by_default: bool,
}

impl Listing<'_> {
    /// First index in the range whose key is not `below` the given key.
    fn partition(&self, below: impl Fn(&[i64]) -> bool) -> usize {
        let (mut lo, mut hi) = (self.range.start, self.range.end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if below(&(self.key)(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    fn order(&self, desc: bool) -> String {
        let fields = if self.field == "id" {
            "id".to_owned()
        } else {
            format!("{},id", self.field)
        };
        if desc { format!("-{fields}") } else { fields }
    }

    fn rows_json(&self, rows: &[usize]) -> String {
        let mut out = String::from("[");
        for (k, &i) in rows.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            out.push_str(&(self.render)(i));
        }
        out.push(']');
        out
    }

    fn serve(&self, st: &ZendeskState, path: &str, p: &Params) -> Reply {
        if p.has_cursor_params() {
            self.cursor_page(st, path, p)
        } else {
            self.offset_page(st, path, p)
        }
    }

    fn cursor_page(&self, st: &ZendeskState, path: &str, p: &Params) -> Reply {
        let size = match p.get("page[size]") {
            None => MAX_PAGE,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
                _ => {
                    return bad_pagination(&format!(
                        "page[size] must be an integer between 1 and {MAX_PAGE}"
                    ));
                }
            },
        };
        let desc = match p.get("sort") {
            None => self.desc_by_default,
            Some(s) if s == self.field => false,
            Some(s) if s.strip_prefix('-') == Some(self.field) => true,
            Some(s) => {
                return bad_value(&format!("sort must be {0} or -{0}, got {s:?}", self.field));
            }
        };
        let order = self.order(desc);
        let (after, before) = (p.get("page[after]"), p.get("page[before]"));
        let anchor = match (after, before) {
            (Some(_), Some(_)) => {
                return bad_pagination("page[after] and page[before] cannot be combined");
            }
            (Some(c), None) | (None, Some(c)) => match cursor::decode(c) {
                Some((o, key)) if o == order && key.len() == self.key_len => {
                    Some((after.is_some(), key))
                }
                _ => {
                    return bad_pagination(&format!(
                        "page[{}] is not a valid cursor for this listing",
                        if after.is_some() { "after" } else { "before" }
                    ));
                }
            },
            (None, None) => None,
        };
        // Walk forward from an index, or backward from just before one, in
        // ascending index order; `flip` restores the listing's order.
        let (forward, start, flip) = match (&anchor, desc) {
            (None, false) => (true, self.range.start, false),
            (None, true) => (false, self.range.end, false),
            (Some((true, k)), false) => (true, self.partition(|x| x <= k.as_slice()), false),
            (Some((false, k)), false) => (false, self.partition(|x| x < k.as_slice()), true),
            (Some((true, k)), true) => (false, self.partition(|x| x < k.as_slice()), false),
            (Some((false, k)), true) => (true, self.partition(|x| x <= k.as_slice()), true),
        };
        let mut rows = Vec::with_capacity(size);
        let mut more = false;
        let mut take = |i: usize| {
            if (self.matches)(i) {
                if rows.len() == size {
                    more = true;
                    return false;
                }
                rows.push(i);
            }
            true
        };
        if forward {
            for i in start..self.range.end {
                if !take(i) {
                    break;
                }
            }
        } else {
            for i in (self.range.start..start).rev() {
                if !take(i) {
                    break;
                }
            }
        }
        if flip {
            rows.reverse();
        }
        let cursor_of = |i: usize| cursor::encode(&order, &(self.key)(i));
        let after_cursor = rows.last().map(|&i| cursor_of(i));
        let before_cursor = rows.first().map(|&i| cursor_of(i));
        let drop = ["page[after]", "page[before]", "page[size]"];
        let size_text = size.to_string();
        let link = |rel: &str, c: &Option<String>| {
            c.as_ref().map(|c| {
                p.link(
                    &st.dir.host,
                    path,
                    &drop,
                    &[(rel, c.as_str()), ("page[size]", &size_text)],
                )
            })
        };
        let body = serde_json::json!({
            "meta": {
                "has_more": more,
                "after_cursor": after_cursor,
                "before_cursor": before_cursor,
            },
            "links": {
                "prev": link("page[before]", &before_cursor),
                "next": link("page[after]", &after_cursor),
            },
        });
        // The rows are spliced in as rendered so their field order survives.
        let mut text = format!("{{\"{}\":{},", self.name, self.rows_json(&rows));
        text.push_str(body.to_string().trim_start_matches('{'));
        Reply::ok(text)
    }

    fn offset_page(&self, st: &ZendeskState, path: &str, p: &Params) -> Reply {
        let page = match p.get("page").map(str::parse::<usize>) {
            None => 1,
            Some(Ok(n)) if n >= 1 => n,
            Some(_) => return bad_pagination("page must be a positive integer"),
        };
        let per_page = match p.get("per_page").map(str::parse::<usize>) {
            None => MAX_PAGE,
            Some(Ok(n)) if n >= 1 => n.min(MAX_PAGE),
            Some(_) => return bad_pagination("per_page must be a positive integer"),
        };
        let skip = (page - 1).saturating_mul(per_page);
        if skip >= OFFSET_LIMIT {
            return bad_pagination(&format!(
                "Offset pagination is limited to the first {OFFSET_LIMIT} records; use cursor pagination (page[size]) instead"
            ));
        }
        let desc = match p.get("sort_order") {
            None => self.desc_by_default,
            Some("asc") => false,
            Some("desc") => true,
            Some(o) => return bad_value(&format!("sort_order must be asc or desc, got {o:?}")),
        };
        let mut all: Vec<usize> = self.range.clone().filter(|&i| (self.matches)(i)).collect();
        if desc {
            all.reverse();
        }
        let count = all.len();
        let rows: Vec<usize> = all.into_iter().skip(skip).take(per_page).collect();
        let page_link =
            |n: usize| p.link(&st.dir.host, path, &["page"], &[("page", &n.to_string())]);
        let next = (skip + rows.len() < count).then(|| page_link(page + 1));
        let prev = (page > 1).then(|| page_link(page - 1));
        let tail = serde_json::json!({
            "next_page": next,
            "previous_page": prev,
            "count": count,
        });
        let mut text = format!("{{\"{}\":{},", self.name, self.rows_json(&rows));
        text.push_str(tail.to_string().trim_start_matches('{'));
        Reply::ok(text)
    }
}

fn time_param(v: &str) -> Option<i64> {
    parse_iso(v).map(|ms| ms.div_euclid(1000))
}

fn list_audit(st: &ZendeskState, path: &str, query: &str) -> Reply {
    let p = Params::parse(query);
    let created = p.all("filter[created_at][]");
    let window = match created.as_slice() {
        [] => None,
        [start, end] => match (time_param(start), time_param(end)) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => {
                return bad_value(
                    "filter[created_at][] values must be ISO 8601 timestamps such as 2024-01-01T00:00:00Z",
                );
            }
        },
        _ => {
            return bad_value(
                "filter[created_at][] must be given twice: the start and the end of the range",
            );
        }
    };
    let source_type = p.get("filter[source_type]");
    let source_id = match p.get("filter[source_id]") {
        None => None,
        Some(_) if source_type.is_none() => {
            return bad_value("filter[source_id] requires filter[source_type]");
        }
        Some(v) => match v.parse::<u64>() {
            Ok(id) => Some(id),
            Err(_) => return bad_value("filter[source_id] must be an integer"),
        },
    };
    let actor_id = match p.get("filter[actor_id]") {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => return bad_value("filter[actor_id] must be an integer"),
        },
    };
    let ip = p.get("filter[ip_address]");
    let action = p.get("filter[action]");
    let log = st.events();
    let range = match window {
        None => 0..log.len(),
        Some((a, b)) => {
            let lo = log.partition_point(|e| e.created_s < a);
            let hi = log.partition_point(|e| e.created_s <= b);
            lo..hi.max(lo)
        }
    };
    let filtered = source_type.is_some() || actor_id.is_some() || ip.is_some() || action.is_some();
    let matches = |i: usize| {
        if !filtered {
            return true;
        }
        let r = st.rendered(&log[i]);
        source_type.is_none_or(|t| t == r.source_type)
            && source_id.is_none_or(|id| r.source_id == Some(id))
            && actor_id.is_none_or(|id| r.actor_id == id)
            && ip.is_none_or(|ip| r.ip.as_deref() == Some(ip))
            && action.is_none_or(|a| a == r.action)
    };
    let key = |i: usize| vec![log[i].created_s, log[i].id as i64];
    let render = |i: usize| st.rendered(&log[i]).json.to_string();
    Listing {
        name: "audit_logs",
        field: "created_at",
        range,
        key_len: 2,
        key: &key,
        matches: &matches,
        render: &render,
        desc_by_default: true,
    }
    .serve(st, path, &p)
}

fn list_users(st: &ZendeskState, path: &str, query: &str, owner_role: &str) -> Reply {
    let p = Params::parse(query);
    let mut roles: Vec<&str> = p.all("role[]");
    roles.extend(p.get("role"));
    if let Some(bad) = roles
        .iter()
        .find(|r| !matches!(**r, "admin" | "agent" | "end-user"))
    {
        return bad_value(&format!(
            "role must be end-user, agent or admin, got {bad:?}"
        ));
    }
    let users = &st.dir.users;
    let owner = st.dir.owner().id;
    let role_of = |i: usize| {
        if users[i].id == owner {
            owner_role
        } else {
            users[i].role
        }
    };
    let matches = |i: usize| roles.is_empty() || roles.contains(&role_of(i));
    let key = |i: usize| vec![users[i].id as i64];
    let render = |i: usize| st.dir.user_json(&users[i], role_of(i));
    Listing {
        name: "users",
        field: "id",
        range: 0..users.len(),
        key_len: 1,
        key: &key,
        matches: &matches,
        render: &render,
        desc_by_default: false,
    }
    .serve(st, path, &p)
}

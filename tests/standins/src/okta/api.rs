//! HTTP behaviour: routing, authentication, errors, headers, paging.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use url::form_urlencoded;

use super::cursor::LogCursor;
use super::{OktaState, StoredEvent, events, oauth};
use crate::server::{Fault, RateStatus};
use crate::synth::{DAY_MS, Rng, now_ms, parse_iso};

const RETENTION_MS: i64 = 90 * DAY_MS;
const MAX_SINCE_AGE_MS: i64 = 180 * DAY_MS;
const DEFAULT_WINDOW_MS: i64 = 7 * DAY_MS;
const LOGS_DEFAULT_LIMIT: usize = 100;
const LOGS_MAX_LIMIT: usize = 1000;
const USERS_MAX_LIMIT: usize = 200;
const USERS_SEARCH_DEFAULT_LIMIT: usize = 10;

/// Streams for per-response ids.
mod stream {
    pub const ERROR_ID: u64 = 201;
    pub const REQUEST_ID: u64 = 202;
}

/// A response before the common headers are added.
struct Reply {
    status: StatusCode,
    body: String,
    links: Vec<String>,
    /// Rate-limit state to report instead of counting this request normally.
    rate: Option<RateStatus>,
}

impl Reply {
    fn ok(body: String) -> Reply {
        Reply {
            status: StatusCode::OK,
            body,
            links: Vec::new(),
            rate: None,
        }
    }
}

/// Handles every request: faults first, then the token, then the route.
pub(super) async fn dispatch(
    State(st): State<Arc<OktaState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = now_ms();
    let path = uri.path();
    let query = uri.query().unwrap_or("");
    match (&method, path) {
        (&Method::GET, "/oauth2/v1/authorize") => return st.oauth.authorize(query),
        (&Method::POST, "/oauth2/v1/token") => {
            if let Some(Fault::Status(status)) = st.token_faults.take() {
                return oauth::server_error(status);
            }
            return st.oauth.token(&headers, &body);
        }
        _ => {}
    }
    let bucket = bucket(path);
    let n = st.responses.fetch_add(1, Ordering::Relaxed);
    let mut challenge = None;
    let fault = st.faults.take();
    let retry_after = match fault {
        Some(Fault::RetryAfter { secs }) => Some(secs),
        _ => None,
    };
    let reply = if let Some(fault) = fault {
        fault_reply(&st, fault, now, bucket, n)
    } else {
        match authorized(&st, &headers, path, now) {
            Auth::Ok => route(&st, &method, path, query, now, n),
            Auth::Denied(www) => {
                challenge = www;
                error(
                    &st,
                    n,
                    StatusCode::UNAUTHORIZED,
                    "E0000011",
                    "Invalid token provided",
                    &[],
                )
            }
            Auth::MissingScope(scope) => {
                challenge = Some(oauth::challenge(
                    &st.dir.host,
                    "insufficient_scope",
                    "The access token provided does not contain the required scopes.",
                    Some(scope),
                ));
                error(
                    &st,
                    n,
                    StatusCode::FORBIDDEN,
                    "E0000006",
                    "You do not have permission to perform the requested action",
                    &[],
                )
            }
        }
    };
    let mut response = finish(&st, bucket, now, n, reply);
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, secs.into());
    }
    if let Some(v) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// How a request's credentials fared.
enum Auth {
    Ok,
    /// 401, with a `WWW-Authenticate` challenge for Bearer tokens.
    Denied(Option<String>),
    /// 403: a Bearer token without the scope the path needs.
    MissingScope(&'static str),
}

/// Okta counts rate limits per endpoint family.
fn bucket(path: &str) -> &'static str {
    if path.starts_with("/api/v1/logs") {
        "logs"
    } else if path == "/api/v1/users/me" {
        "users/me"
    } else if path.starts_with("/api/v1/users") {
        "users"
    } else if path.starts_with("/api/v1/org") {
        "org"
    } else {
        "other"
    }
}

fn fault_reply(st: &OktaState, fault: Fault, now: i64, bucket: &'static str, n: u64) -> Reply {
    match fault {
        Fault::RateLimited { reset_in_secs }
        | Fault::RetryAfter {
            secs: reset_in_secs,
        } => {
            let reset = now / 1000 + i64::try_from(reset_in_secs).unwrap_or(i64::MAX / 4);
            let mut r = error(
                st,
                n,
                StatusCode::TOO_MANY_REQUESTS,
                "E0000047",
                "API call exceeded rate limit due to too many requests.",
                &[],
            );
            r.rate = Some(st.rates.exhaust(bucket, reset));
            r
        }
        Fault::Status(code) => {
            let status = StatusCode::from_u16(code)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error(st, n, status, "E0000009", "Internal Server Error", &[])
        }
    }
}

fn route(st: &OktaState, method: &Method, path: &str, query: &str, now: i64, n: u64) -> Reply {
    let segments: Vec<&str> = path
        .strip_prefix("/api/v1/")
        .map(|rest| rest.trim_end_matches('/').split('/').collect())
        .unwrap_or_default();
    let get_only = |reply: &dyn Fn() -> Reply| {
        if method == Method::GET {
            reply()
        } else {
            error(
                st,
                n,
                StatusCode::METHOD_NOT_ALLOWED,
                "E0000022",
                "The endpoint does not support the provided HTTP method",
                &[],
            )
        }
    };
    match segments.as_slice() {
        ["logs"] => get_only(&|| {
            permitted(st, n, st.can_read_logs, || {
                list_logs(st, query, path, now, n)
            })
        }),
        ["org"] => get_only(&|| {
            permitted(st, n, st.can_read_org, || {
                Reply::ok(st.dir.org_json.to_string())
            })
        }),
        ["users"] => get_only(&|| list_users(st, query, path, n)),
        ["users", id] => get_only(&|| match find_user(st, id) {
            Some(u) => Reply::ok(u.json.to_string()),
            None => user_not_found(st, n, id),
        }),
        ["users", id, "roles"] => get_only(&|| match find_user(st, id) {
            Some(u) if Some(u.id.as_str()) == st.dir.owner().map(|o| o.id.as_str()) => {
                Reply::ok(st.dir.owner_roles_json.to_string())
            }
            Some(_) => Reply::ok("[]".to_owned()),
            None => user_not_found(st, n, id),
        }),
        _ => error(
            st,
            n,
            StatusCode::NOT_FOUND,
            "E0000007",
            &format!("Not found: Resource not found: {path} (Endpoint)"),
            &[],
        ),
    }
}

fn authorized(st: &OktaState, headers: &HeaderMap, path: &str, now: i64) -> Auth {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(token) = value.strip_prefix("Bearer ") {
        return match st.oauth.bearer(token.trim(), now) {
            oauth::Bearer::Valid(scopes) => match oauth::required_scope(path) {
                Some(needed) if !oauth::has_scope(&scopes, needed, path) => {
                    Auth::MissingScope(needed)
                }
                _ => Auth::Ok,
            },
            oauth::Bearer::Invalid(why) => Auth::Denied(Some(oauth::challenge(
                &st.dir.host,
                "invalid_token",
                why,
                None,
            ))),
        };
    }
    let ssws_ok = !st.revoked.load(Ordering::SeqCst)
        && value
            .strip_prefix("SSWS ")
            .is_some_and(|t| t.trim() == st.token);
    if ssws_ok {
        Auth::Ok
    } else {
        Auth::Denied(None)
    }
}

fn permitted(st: &OktaState, n: u64, allowed: bool, f: impl FnOnce() -> Reply) -> Reply {
    if allowed {
        f()
    } else {
        error(
            st,
            n,
            StatusCode::FORBIDDEN,
            "E0000006",
            "You do not have permission to perform the requested action",
            &[],
        )
    }
}

fn find_user<'a>(st: &'a OktaState, id: &str) -> Option<&'a super::directory::User> {
    if id == "me" {
        st.dir.owner()
    } else {
        st.dir.find_user(id)
    }
}

fn user_not_found(st: &OktaState, n: u64, id: &str) -> Reply {
    error(
        st,
        n,
        StatusCode::NOT_FOUND,
        "E0000007",
        &format!("Not found: Resource not found: {id} (User)"),
        &[],
    )
}

/// Okta's error body. `errorId` is random-looking per response, as in the
/// recordings (`oae` + 22 characters).
fn error(
    st: &OktaState,
    n: u64,
    status: StatusCode,
    code: &str,
    summary: &str,
    causes: &[String],
) -> Reply {
    let error_id = format!(
        "oae{}",
        Rng::for_item(st.seed, stream::ERROR_ID, n).base64url(22)
    );
    let causes: Vec<serde_json::Value> = causes
        .iter()
        .map(|c| serde_json::json!({ "errorSummary": c }))
        .collect();
    let body = serde_json::json!({
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": error_id,
        "errorCauses": causes,
    });
    Reply {
        status,
        body: body.to_string(),
        links: Vec::new(),
        rate: None,
    }
}

fn validation_error(st: &OktaState, n: u64, param: &str, cause: String) -> Reply {
    error(
        st,
        n,
        StatusCode::BAD_REQUEST,
        "E0000001",
        &format!("Api validation failed: {param}"),
        &[cause],
    )
}

fn finish(st: &OktaState, bucket: &'static str, now: i64, n: u64, reply: Reply) -> Response {
    let rate = reply
        .rate
        .unwrap_or_else(|| st.rates.hit(bucket, now / 1000));
    let ok = reply.status.is_success();
    let mut response = Response::new(Body::from(reply.body));
    *response.status_mut() = reply.status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if ok {
        // Okta marks API responses uncacheable; only successful ones carry
        // these in the recordings.
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-store"),
        );
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        h.insert(header::EXPIRES, HeaderValue::from_static("0"));
    }
    for link in reply.links {
        if let Ok(v) = HeaderValue::from_str(&link) {
            h.append(header::LINK, v);
        }
    }
    let request_id = Rng::for_item(st.seed, stream::REQUEST_ID, n).hex(32);
    let numbers = [
        ("x-okta-request-id", request_id),
        ("x-rate-limit-limit", rate.limit.to_string()),
        ("x-rate-limit-remaining", rate.remaining.to_string()),
        ("x-rate-limit-reset", rate.reset_epoch_secs.to_string()),
    ];
    for (name, value) in numbers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    }
    response
}

/// Query parameters, last occurrence winning.
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
}

fn self_link(st: &OktaState, path: &str, query: &str) -> String {
    if query.is_empty() {
        format!("<https://{}{path}>; rel=\"self\"", st.link_host)
    } else {
        format!("<https://{}{path}?{query}>; rel=\"self\"", st.link_host)
    }
}

fn next_link(st: &OktaState, path: &str, query: &str) -> String {
    format!("<https://{}{path}?{query}>; rel=\"next\"", st.link_host)
}

/// `eventType eq "a" [or eventType eq "b" ...]`, the part of Okta's SCIM
/// filter language the stand-in understands.
fn parse_filter(expr: &str) -> Result<Vec<String>, String> {
    let tokens: Vec<&str> = expr.split_whitespace().collect();
    let mut types = Vec::new();
    for (i, term) in tokens.split(|t| t.eq_ignore_ascii_case("or")).enumerate() {
        let [attr, op, value] = term else {
            return Err(format!("unsupported filter term {} in {expr:?}", i + 1));
        };
        let attr = attr.trim_start_matches('(');
        let value = value.trim_end_matches(')');
        if attr.eq_ignore_ascii_case("published") {
            return Err("published can't be used in a filter; use since and until".to_owned());
        }
        if !attr.eq_ignore_ascii_case("eventType") || !op.eq_ignore_ascii_case("eq") {
            return Err(format!(
                "the Ward stand-in only supports `eventType eq \"...\"` filters, got {expr:?}"
            ));
        }
        let Some(v) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
            return Err(format!("filter value must be a quoted string, got {value}"));
        };
        types.push(v.to_owned());
    }
    Ok(types)
}

fn parse_keywords(q: &str) -> Result<Vec<String>, String> {
    let words: Vec<String> = q.split_whitespace().map(str::to_lowercase).collect();
    if words.len() > 10 {
        return Err("q: at most 10 keywords".to_owned());
    }
    if words.iter().any(|w| w.chars().count() > 40) {
        return Err("q: each keyword must be at most 40 characters".to_owned());
    }
    Ok(words)
}

/// What a System Log request asks for, after defaults and cursor decoding.
enum LogPlan {
    Poll {
        /// Position to continue at, or `None` to start at `since`.
        pos: Option<u64>,
        since: i64,
    },
    Bounded {
        since: i64,
        until: i64,
        desc: bool,
        after: Option<(i64, u64)>,
    },
}

struct Matcher {
    types: Option<Vec<String>>,
    q: Option<Vec<String>>,
}

impl Matcher {
    fn cheap(&self, e: &StoredEvent) -> bool {
        self.types
            .as_ref()
            .is_none_or(|t| t.iter().any(|t| t == events::event_type(e.kind)))
    }

    fn full(&self, st: &OktaState, seq: usize, e: &StoredEvent) -> bool {
        self.cheap(e)
            && self.q.as_ref().is_none_or(|words| {
                let json = st.event_json(seq, e).to_lowercase();
                words.iter().all(|w| json.contains(w.as_str()))
            })
    }
}

fn list_logs(st: &OktaState, query: &str, path: &str, now: i64, n: u64) -> Reply {
    let p = Params::parse(query);
    let limit = match p.get("limit") {
        None => LOGS_DEFAULT_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(l) if l <= LOGS_MAX_LIMIT => l,
            _ => {
                return validation_error(
                    st,
                    n,
                    "limit",
                    format!("limit: The limit must be between 0 and {LOGS_MAX_LIMIT}, got {v:?}"),
                );
            }
        },
    };
    let desc = match p.get("sortOrder") {
        None | Some("ASCENDING") => false,
        Some("DESCENDING") => true,
        Some(other) => {
            return validation_error(
                st,
                n,
                "sortOrder",
                format!("sortOrder: must be ASCENDING or DESCENDING, got {other:?}"),
            );
        }
    };
    let time = |name: &str| -> Result<Option<i64>, Reply> {
        match p.get(name) {
            None => Ok(None),
            Some(v) => parse_iso(v).map(Some).ok_or_else(|| {
                validation_error(
                    st,
                    n,
                    name,
                    format!(
                        "{name}: The date format in your query is not recognized. \
                         Please enter dates using ISO8601 string format.. \
                         '{name}' must be an ISO 8601 compliant timestamp."
                    ),
                )
            }),
        }
    };
    let since = match time("since") {
        Ok(v) => v,
        Err(r) => return r,
    };
    let until = match time("until") {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(s) = since
        && s < now - MAX_SINCE_AGE_MS
    {
        return error(
            st,
            n,
            StatusCode::BAD_REQUEST,
            "E0000053",
            "The since parameter is over 180 days prior to the current day.",
            &[],
        );
    }
    let mut matcher = Matcher {
        types: None,
        q: None,
    };
    let plan = if let Some(after) = p.get("after") {
        if since.is_some() {
            return validation_error(
                st,
                n,
                "after",
                "after: since and after are mutually exclusive".to_owned(),
            );
        }
        match st.cursors.decode(after) {
            Some(LogCursor::Poll { pos, types, q }) => {
                matcher = Matcher { types, q };
                LogPlan::Poll {
                    pos: Some(pos),
                    since: 0,
                }
            }
            Some(LogCursor::Bounded {
                since,
                until,
                desc,
                last,
                types,
                q,
            }) => {
                matcher = Matcher { types, q };
                LogPlan::Bounded {
                    since,
                    until,
                    desc,
                    after: Some(last),
                }
            }
            None => {
                return validation_error(
                    st,
                    n,
                    "after",
                    "after: The cursor is invalid or has expired. Follow the next link from a previous response."
                        .to_owned(),
                );
            }
        }
    } else {
        if let Some(f) = p.get("filter") {
            match parse_filter(f) {
                Ok(t) => matcher.types = Some(t),
                Err(cause) => {
                    return error(
                        st,
                        n,
                        StatusCode::BAD_REQUEST,
                        "E0000053",
                        "Invalid filter expression",
                        &[cause],
                    );
                }
            }
        }
        if let Some(q) = p.get("q") {
            match parse_keywords(q) {
                Ok(words) if words.is_empty() => {}
                Ok(words) => matcher.q = Some(words),
                Err(cause) => return validation_error(st, n, "q", cause),
            }
        }
        // A descending listing has no "next" in time, so Okta treats it as
        // bounded at now.
        if until.is_some() || desc {
            let until = until.unwrap_or(now);
            LogPlan::Bounded {
                since: since.unwrap_or(until - DEFAULT_WINDOW_MS),
                until,
                desc,
                after: None,
            }
        } else {
            LogPlan::Poll {
                pos: None,
                since: since.unwrap_or(now - DEFAULT_WINDOW_MS),
            }
        }
    };

    let floor = now - RETENTION_MS;
    let log = st.events();
    let mut page: Vec<usize> = Vec::new();
    let next = match plan {
        LogPlan::Poll { pos, since } => {
            let start = match pos {
                Some(p) => usize::try_from(p).unwrap_or(usize::MAX).min(log.len()),
                None => log.partition_point(|e| e.persisted_ms < since),
            };
            let mut i = start;
            while i < log.len() && page.len() < limit {
                let e = &log[i];
                if e.published_ms >= floor && matcher.full(st, i, e) {
                    page.push(i);
                }
                i += 1;
            }
            // Polling never ends: the next link is there even on an empty
            // page, pointing where new events will appear.
            Some(LogCursor::Poll {
                pos: i as u64,
                types: matcher.types.clone(),
                q: matcher.q.clone(),
            })
        }
        LogPlan::Bounded {
            since,
            until,
            desc,
            after,
        } => {
            let low = since.max(floor);
            let mut keys: Vec<(i64, usize)> = log
                .iter()
                .enumerate()
                .filter(|(_, e)| {
                    e.published_ms >= low && e.published_ms < until && matcher.cheap(e)
                })
                .map(|(i, e)| (e.published_ms, i))
                .collect();
            keys.sort_unstable();
            if desc {
                keys.reverse();
            }
            let skip = match after {
                None => 0,
                Some((ms, seq)) => {
                    let last = (ms, usize::try_from(seq).unwrap_or(usize::MAX));
                    if desc {
                        keys.partition_point(|k| *k >= last)
                    } else {
                        keys.partition_point(|k| *k <= last)
                    }
                }
            };
            let mut more = false;
            for &(_, i) in &keys[skip..] {
                if !matcher.full(st, i, &log[i]) {
                    continue;
                }
                if page.len() == limit {
                    more = true;
                    break;
                }
                page.push(i);
            }
            match page.last() {
                Some(&last) if more => Some(LogCursor::Bounded {
                    since,
                    until,
                    desc,
                    last: (log[last].published_ms, last as u64),
                    types: matcher.types.clone(),
                    q: matcher.q.clone(),
                }),
                _ => None,
            }
        }
    };

    let parts: Vec<&str> = page.iter().map(|&i| st.event_json(i, &log[i])).collect();
    let mut body = String::with_capacity(parts.iter().map(|s| s.len() + 1).sum::<usize>() + 2);
    body.push('[');
    for (k, part) in parts.iter().enumerate() {
        if k > 0 {
            body.push(',');
        }
        body.push_str(part);
    }
    body.push(']');
    drop(parts);
    drop(log);

    let mut reply = Reply::ok(body);
    reply.links.push(self_link(st, path, query));
    if let Some(c) = next {
        let q = format!("after={}&limit={limit}", st.cursors.encode(&c));
        reply.links.push(next_link(st, path, &q));
    }
    reply
}

/// `status eq "X"`, the one user filter/search expression the stand-in
/// evaluates; anything else only switches on deprovisioned users.
fn status_filter(expr: &str) -> Option<String> {
    let tokens: Vec<&str> = expr.split_whitespace().collect();
    match tokens.as_slice() {
        [attr, op, value]
            if attr.eq_ignore_ascii_case("status") && op.eq_ignore_ascii_case("eq") =>
        {
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .map(str::to_owned)
        }
        _ => None,
    }
}

fn list_users(st: &OktaState, query: &str, path: &str, n: u64) -> Reply {
    let p = Params::parse(query);
    let filter = p.get("filter");
    let search = p.get("search");
    let q = p.get("q").map(str::to_lowercase).filter(|q| !q.is_empty());
    let default_limit = if q.is_some() {
        USERS_SEARCH_DEFAULT_LIMIT
    } else {
        USERS_MAX_LIMIT
    };
    let limit = match p.get("limit") {
        None => default_limit,
        Some(v) => match v.parse::<usize>() {
            // Okta caps oversized pages instead of rejecting them.
            Ok(l) if l >= 1 => l.min(USERS_MAX_LIMIT),
            _ => {
                return validation_error(
                    st,
                    n,
                    "limit",
                    format!("limit: must be a positive integer, got {v:?}"),
                );
            }
        },
    };
    let after_id = match p.get("after") {
        None => None,
        // The recorded cursor is the last user's id behind a `2`.
        Some(a) => match a.strip_prefix('2') {
            Some(id) if id.len() == 20 && id.bytes().all(|b| b.is_ascii_alphanumeric()) => Some(id),
            _ => {
                return validation_error(st, n, "after", "after: invalid cursor".to_owned());
            }
        },
    };
    let include_deprovisioned = filter.is_some() || search.is_some();
    let status = filter.or(search).and_then(status_filter);
    let dir = &st.dir;
    let start = after_id.map_or(0, |id| {
        dir.by_id
            .partition_point(|&i| dir.users[i].id.as_str() <= id)
    });
    let matches = |u: &super::directory::User| {
        (include_deprovisioned || u.status != "DEPROVISIONED")
            && status.as_deref().is_none_or(|s| u.status == s)
            && q.as_deref().is_none_or(|q| {
                u.first.to_lowercase().starts_with(q)
                    || u.last.to_lowercase().starts_with(q)
                    || u.login.starts_with(q)
            })
    };
    let mut page = Vec::new();
    let mut more = false;
    for &i in &dir.by_id[start.min(dir.by_id.len())..] {
        let u = &dir.users[i];
        if !matches(u) {
            continue;
        }
        if page.len() == limit {
            more = true;
            break;
        }
        page.push(u);
    }
    let body = format!(
        "[{}]",
        page.iter().map(|u| &*u.json).collect::<Vec<_>>().join(",")
    );
    let mut reply = Reply::ok(body);
    reply.links.push(self_link(st, path, query));
    if let (true, Some(last)) = (more, page.last()) {
        let mut next = form_urlencoded::Serializer::new(String::new());
        next.append_pair("after", &format!("2{}", last.id));
        next.append_pair("limit", &limit.to_string());
        for key in ["filter", "search", "q"] {
            if let Some(v) = p.get(key) {
                next.append_pair(key, v);
            }
        }
        reply.links.push(next_link(st, path, &next.finish()));
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        assert_eq!(
            parse_filter(r#"eventType eq "user.session.start""#).unwrap(),
            vec!["user.session.start"]
        );
        assert_eq!(
            parse_filter(r#"(eventType eq "a" or eventType eq "b")"#).unwrap(),
            vec!["a", "b"]
        );
        assert!(parse_filter(r#"published gt "2024-01-01T00:00:00Z""#).is_err());
        assert!(parse_filter(r#"actor.id eq "x""#).is_err());
        assert_eq!(
            status_filter(r#"status eq "DEPROVISIONED""#).as_deref(),
            Some("DEPROVISIONED")
        );
        assert_eq!(status_filter("lastUpdated gt \"x\""), None);
    }
}

//! HTTP behaviour: routing, the gateway (faults, tokens, usage headers),
//! the audit stream, users and userinfo.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use url::form_urlencoded;

use super::cursor::StreamCursor;
use super::data::{ALL_TYPES, AUDIT_TYPES, UsersListStyle, user_json, user_list_json};
use super::oauth::Bearer;
use super::{CallerRole, EgnyteState, GatewayFault};
use crate::synth::{DAY_MS, now_ms, parse_iso};

/// The stream only starts within the last 7 days.
const STREAM_WINDOW_MS: i64 = 7 * DAY_MS;
/// Egnyte's largest users page.
const USERS_MAX_COUNT: usize = 100;
/// Per-token allowances Egnyte advertises by default.
const QPS_ALLOTTED: u32 = 2;
const QUOTA_ALLOTTED: u32 = 1000;

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A Mashery gateway refusal: 403, `X-Mashery-Error-Code`, HTML body.
pub(crate) fn gateway_error(code: &str, title: &str, retry_after: Option<u64>) -> Response {
    let mut response = Response::new(Body::from(format!("<h1>{title}</h1>")));
    *response.status_mut() = StatusCode::FORBIDDEN;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(code) {
        h.insert(HeaderName::from_static("x-mashery-error-code"), v);
    }
    if let Some(secs) = retry_after {
        h.insert(header::RETRY_AFTER, secs.into());
    }
    response
}

fn error_message(status: StatusCode, message: &str) -> Response {
    json_response(
        status,
        serde_json::json!({ "errorMessage": message }).to_string(),
    )
}

/// The users API's error shape.
fn users_error(status: StatusCode, description: &str) -> Response {
    json_response(
        status,
        serde_json::json!({
            "Errors": [{ "description": description, "code": status.as_u16().to_string() }]
        })
        .to_string(),
    )
}

fn set(h: &mut HeaderMap, name: &'static str, value: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        h.insert(HeaderName::from_static(name), v);
    }
}

/// Handles every request: the OAuth endpoint, then gateway faults, the
/// token, and the route.
pub(super) async fn dispatch(
    State(st): State<Arc<EgnyteState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let query = uri.query().unwrap_or("");
    match (&method, path) {
        (&Method::GET, "/puboauth/token") => return st.oauth.authorize(query),
        (&Method::POST, "/puboauth/token") => return st.oauth.token(&body),
        _ => {}
    }
    if !path.starts_with("/pubapi/") {
        return error_message(StatusCode::NOT_FOUND, "Not Found");
    }
    if let Some(fault) = st.take_gateway_fault() {
        return match fault {
            GatewayFault::OverQps { secs } => {
                let mut r = gateway_error(
                    "ERR_403_DEVELOPER_OVER_QPS",
                    "Developer Over Qps",
                    Some(secs),
                );
                set(r.headers_mut(), "x-accesstoken-qps-allotted", QPS_ALLOTTED);
                set(
                    r.headers_mut(),
                    "x-accesstoken-qps-current",
                    QPS_ALLOTTED + 1,
                );
                r
            }
            GatewayFault::OverRate { secs } => {
                let mut r = gateway_error(
                    "ERR_403_DEVELOPER_OVER_RATE",
                    "Developer Over Rate",
                    Some(secs),
                );
                set(
                    r.headers_mut(),
                    "x-accesstoken-quota-allotted",
                    QUOTA_ALLOTTED,
                );
                set(
                    r.headers_mut(),
                    "x-accesstoken-quota-current",
                    QUOTA_ALLOTTED + 1,
                );
                r
            }
            GatewayFault::Status(code) => {
                let status = StatusCode::from_u16(code)
                    .ok()
                    .filter(|s| s.is_client_error() || s.is_server_error())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                error_message(status, status.canonical_reason().unwrap_or("Error"))
            }
        };
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let scopes = match token.map(|t| st.oauth.bearer(t)) {
        Some(Bearer::Valid(scopes)) => scopes,
        // Egnyte documents a 401 for revoked tokens but not its body.
        Some(Bearer::Rejected) => {
            return error_message(StatusCode::UNAUTHORIZED, "Invalid or expired access token");
        }
        None | Some(Bearer::Unknown) => {
            return gateway_error("ERR_403_DEVELOPER_INACTIVE", "Developer Inactive", None);
        }
    };
    let used = st.quota_used.fetch_add(1, Ordering::SeqCst) + 1;
    let mut response = route(&st, &method, path, query, &body, &scopes);
    let h = response.headers_mut();
    set(h, "x-accesstoken-qps-allotted", QPS_ALLOTTED);
    set(h, "x-accesstoken-qps-current", 1);
    set(h, "x-accesstoken-quota-allotted", QUOTA_ALLOTTED);
    set(h, "x-accesstoken-quota-current", used);
    response
}

fn route(
    st: &EgnyteState,
    method: &Method,
    path: &str,
    query: &str,
    body: &[u8],
    scopes: &[String],
) -> Response {
    let segments: Vec<&str> = path
        .trim_start_matches("/pubapi/")
        .trim_end_matches('/')
        .split('/')
        .collect();
    let has = |s: &str| scopes.iter().any(|g| g == s);
    match (method, segments.as_slice()) {
        (&Method::GET, ["v1", "userinfo"]) => userinfo(st),
        (&Method::GET, ["v2", "users"]) => {
            users_allowed(st, has("Egnyte.user")).unwrap_or_else(|| list_users(st, query))
        }
        (&Method::GET, ["v2", "users", id]) => {
            users_allowed(st, has("Egnyte.user")).unwrap_or_else(|| get_user(st, id))
        }
        (&Method::GET | &Method::POST, ["v2", "audit", "stream"]) => {
            audit_stream(st, method, query, body, has("Egnyte.audit"))
        }
        (_, ["v1", "userinfo"] | ["v2", "users", ..] | ["v2", "audit", "stream"]) => {
            error_message(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
        }
        _ => error_message(StatusCode::NOT_FOUND, "Not Found"),
    }
}

fn userinfo(st: &EgnyteState) -> Response {
    let me = &st.users[0];
    json_response(
        StatusCode::OK,
        serde_json::json!({
            "id": me.id,
            "username": me.user_name,
            "first_name": me.given,
            "last_name": me.family,
        })
        .to_string(),
    )
}

/// `None` when the caller may read users; the refusal otherwise.
fn users_allowed(st: &EgnyteState, scope: bool) -> Option<Response> {
    if !scope {
        return Some(users_error(
            StatusCode::FORBIDDEN,
            "Access denied: the access token does not have the Egnyte.user scope",
        ));
    }
    match st.caller() {
        CallerRole::Admin | CallerRole::PowerUser { .. } => None,
        CallerRole::StandardUser => Some(users_error(
            StatusCode::FORBIDDEN,
            "Access denied: user management requires an administrator or a power user",
        )),
    }
}

fn get_user(st: &EgnyteState, id: &str) -> Response {
    match st.users.iter().position(|u| u.id.to_string() == id) {
        Some(i) => json_response(StatusCode::OK, user_json(&st.users[i], st.user_type(i))),
        None => users_error(StatusCode::NOT_FOUND, &format!("User {id} not found.")),
    }
}

/// `userName eq "x"`, `email eq "x"`, `externalId eq "x"`.
fn parse_filter(expr: &str) -> Option<(String, String)> {
    let mut parts = expr.trim().splitn(3, ' ');
    let attr = parts.next()?;
    let op = parts.next()?;
    let value = parts.next()?.trim();
    if !op.eq_ignore_ascii_case("eq") || !["userName", "email", "externalId"].contains(&attr) {
        return None;
    }
    let value = value.strip_prefix('"')?.strip_suffix('"')?;
    Some((attr.to_owned(), value.to_owned()))
}

fn list_users(st: &EgnyteState, query: &str) -> Response {
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| {
        params
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let number = |k: &str, default: i64| -> Result<usize, String> {
        let n = match get(k) {
            None => default,
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map_err(|_| format!("{k} must be an integer, got {v:?}"))?,
        };
        Ok(usize::try_from(n).unwrap_or(0))
    };
    // SCIM: startIndex below 1 means 1; a count over the maximum is capped.
    let (start, count) = match (
        number("startIndex", 1),
        number("count", USERS_MAX_COUNT as i64),
    ) {
        (Ok(start), Ok(count)) => (start.max(1), count.min(USERS_MAX_COUNT)),
        (Err(m), _) | (_, Err(m)) => return users_error(StatusCode::BAD_REQUEST, &m),
    };
    let filter = match get("filter") {
        None => None,
        Some(f) => match parse_filter(f) {
            Some(f) => Some(f),
            None => {
                return users_error(
                    StatusCode::BAD_REQUEST,
                    &format!("Unsupported filter {f:?}: use userName, email or externalId with eq"),
                );
            }
        },
    };
    let matching: Vec<usize> = (0..st.users.len())
        .filter(|&i| {
            let u = &st.users[i];
            filter
                .as_ref()
                .is_none_or(|(attr, value)| match attr.as_str() {
                    "userName" => u.user_name.eq_ignore_ascii_case(value),
                    "email" => u.email.eq_ignore_ascii_case(value),
                    _ => u.external_id == *value,
                })
        })
        .collect();
    let style = st.list_style();
    let page: Vec<String> = matching
        .iter()
        .skip(start - 1)
        .take(count)
        .map(|&i| user_list_json(&st.users[i], st.user_type(i), style))
        .collect();
    let key = match style {
        UsersListStyle::Sdk => "resources",
        UsersListStyle::DotNetFixture => "Resources",
    };
    json_response(
        StatusCode::OK,
        format!(
            "{{\"totalResults\":{},\"itemsPerPage\":{},\"startIndex\":{start},\"{key}\":[{}]}}",
            matching.len(),
            page.len(),
            page.join(",")
        ),
    )
}

/// What a stream request asks for.
struct StreamRequest {
    start: Option<i64>,
    end: Option<i64>,
    types: Option<u16>,
    cursor: Option<String>,
}

fn type_bits(names: &[String]) -> Result<u16, String> {
    let mut bits = 0u16;
    for name in names {
        if name == "ANY" {
            bits = ALL_TYPES;
            continue;
        }
        let Some(i) = AUDIT_TYPES.iter().position(|t| t == name) else {
            return Err(format!("Unknown auditType {name:?}"));
        };
        bits |= 1 << i;
    }
    Ok(if bits == 0 { ALL_TYPES } else { bits })
}

fn date(field: &str, value: Option<&str>) -> Result<Option<i64>, String> {
    match value {
        None => Ok(None),
        Some(v) => parse_iso(v).map(Some).ok_or_else(|| {
            format!("Invalid {field} {v:?}: use ISO 8601, e.g. 2021-12-08T00:00:00Z")
        }),
    }
}

/// Reads the JSON body (POST, as Egnyte's SDK sends it) or the query
/// string (GET, as Egnyte's Splunk add-on sends it).
fn stream_request(method: &Method, query: &str, body: &[u8]) -> Result<StreamRequest, String> {
    let (start, end, types, cursor, any_filter);
    if method == Method::POST {
        let v: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| format!("The request body must be a JSON object: {e}"))?;
        let text = |k: &str| -> Result<Option<String>, String> {
            match v.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("{k} must be a string")),
            }
        };
        start = text("startDate")?;
        end = text("endDate")?;
        cursor = text("nextCursor")?;
        types = match v.get("auditType") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(vec![s.clone()]),
            Some(serde_json::Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| "auditType must list strings".to_owned())
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(_) => return Err("auditType must be a string or a list of strings".to_owned()),
        };
    } else {
        let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        start = get("startDate");
        end = get("endDate");
        cursor = get("nextCursor");
        let listed: Vec<String> = params
            .iter()
            .filter(|(k, _)| k == "auditType")
            .map(|(_, v)| v.clone())
            .collect();
        types = (!listed.is_empty()).then_some(listed);
    }
    any_filter = start.is_some() || end.is_some() || types.is_some();
    if cursor.is_some() && any_filter {
        return Err(
            "nextCursor cannot be combined with startDate, endDate or auditType: send only nextCursor"
                .to_owned(),
        );
    }
    Ok(StreamRequest {
        start: date("startDate", start.as_deref())?,
        end: date("endDate", end.as_deref())?,
        types: types.as_deref().map(type_bits).transpose()?,
        cursor,
    })
}

fn audit_stream(
    st: &EgnyteState,
    method: &Method,
    query: &str,
    body: &[u8],
    scope: bool,
) -> Response {
    if !scope {
        return error_message(
            StatusCode::FORBIDDEN,
            "Access denied: the access token does not have the Egnyte.audit scope",
        );
    }
    if !st.audit_reporting.load(Ordering::SeqCst) {
        return error_message(
            StatusCode::FORBIDDEN,
            "Audit Reporting is not available for your plan",
        );
    }
    match st.caller() {
        CallerRole::Admin
        | CallerRole::PowerUser {
            can_run_reports: true,
        } => {}
        _ => {
            return error_message(
                StatusCode::FORBIDDEN,
                "You are not allowed to run reports: only administrators and power users with the report permission can use the Audit Reporting API",
            );
        }
    }
    let now = now_ms();
    let forced = st.take_audit_fault();
    let window = st.audit_window(now / 1000, forced);
    if let Some(retry_after) = window.refused {
        let mut r = Response::new(Body::from("<h1>Developer Over AuditV2 Rate Limit</h1>"));
        *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        h.insert(header::RETRY_AFTER, retry_after.into());
        window.headers(h);
        return r;
    }
    let req = match stream_request(method, query, body) {
        Ok(r) => r,
        Err(m) => return error_message(StatusCode::BAD_REQUEST, &m),
    };
    let log = st.events();
    let (mut i, types, end) = match &req.cursor {
        Some(text) => match st.cursors.decode(text) {
            Some(c) => (
                usize::try_from(c.pos).unwrap_or(usize::MAX).min(log.len()),
                c.types,
                c.end,
            ),
            None => return error_message(StatusCode::BAD_REQUEST, "Invalid nextCursor"),
        },
        None => {
            let Some(start) = req.start else {
                return error_message(
                    StatusCode::BAD_REQUEST,
                    "startDate is required when nextCursor is not given",
                );
            };
            if start < now - STREAM_WINDOW_MS {
                return error_message(
                    StatusCode::BAD_REQUEST,
                    "startDate must be within the last 7 days; use the Audit Reporting API v1 for older events",
                );
            }
            if let Some(end) = req.end
                && end <= start
            {
                return error_message(StatusCode::BAD_REQUEST, "endDate must be after startDate");
            }
            (
                log.partition_point(|e| e.date_ms < start),
                req.types.unwrap_or(ALL_TYPES),
                req.end,
            )
        }
    };
    let matches = |e: &super::StoredEvent| {
        (types >> e.kind) & 1 == 1 && end.is_none_or(|end| e.date_ms < end)
    };
    let page_size = st.page_size.load(Ordering::SeqCst).max(1);
    let mut page = Vec::new();
    while i < log.len() && page.len() < page_size {
        if matches(&log[i]) {
            page.push(i);
        }
        i += 1;
    }
    let more = page.len() == page_size && log[i..].iter().any(matches);
    let next = st.cursors.encode(StreamCursor {
        pos: i as u64,
        types,
        end,
    });
    let mut out = String::with_capacity(64 + page.len() * 320);
    out.push_str("{\"nextCursor\":\"");
    out.push_str(&next);
    out.push_str("\",\"events\":[");
    for (k, &idx) in page.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        out.push_str(st.event_json(idx, &log[idx]));
    }
    out.push_str("],\"moreEvents\":");
    out.push_str(if more { "true" } else { "false" });
    out.push('}');
    drop(log);
    let mut r = json_response(StatusCode::OK, out);
    window.headers(r.headers_mut());
    r
}

/// The audit API's per-minute and per-hour windows after one request.
pub(super) struct WindowState {
    pub(super) remaining_minute: u32,
    pub(super) remaining_hour: u32,
    /// `Some(retry-after secs)` when the request is refused.
    pub(super) refused: Option<u64>,
}

impl WindowState {
    fn headers(&self, h: &mut HeaderMap) {
        set(h, "x-ratelimit-limit-minute", super::AUDIT_PER_MINUTE);
        set(h, "x-ratelimit-remaining-minute", self.remaining_minute);
        set(h, "x-ratelimit-limit-hour", super::AUDIT_PER_HOUR);
        set(h, "x-ratelimit-remaining-hour", self.remaining_hour);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_types() {
        assert_eq!(
            parse_filter(r#"email eq "a@b.com""#),
            Some(("email".into(), "a@b.com".into()))
        );
        assert_eq!(parse_filter("active eq true"), None);
        assert_eq!(type_bits(&["FILE_AUDIT".into()]), Ok(1));
        assert_eq!(type_bits(&["ANY".into()]), Ok(ALL_TYPES));
        assert!(type_bits(&["NOPE".into()]).is_err());
    }

    #[test]
    fn stream_requests_either_way() {
        let post = stream_request(
            &Method::POST,
            "",
            br#"{"startDate":"2021-12-08T00:00:00Z","endDate":"2021-12-10T00:00:00Z","auditType":["FILE_AUDIT","USER_AUDIT","GROUP_AUDIT"]}"#,
        )
        .unwrap();
        assert_eq!(post.start, Some(1_638_921_600_000));
        assert_eq!(post.types, Some(0b1101));
        let get = stream_request(&Method::GET, "nextCursor=abc", b"").unwrap();
        assert_eq!(get.cursor.as_deref(), Some("abc"));
        assert!(
            stream_request(
                &Method::POST,
                "",
                br#"{"nextCursor":"a","startDate":"2021-12-08T00:00:00Z"}"#
            )
            .is_err()
        );
    }
}

//! The handlers. Each carries its OpenAPI annotation; `lib.rs` registers
//! them through `utoipa_axum`, which builds the router and the document
//! from the same list.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use ward_daemon::connect::Connected;
use ward_daemon::consent::{self, Callback, ClientSettings, CodeGrant, RESTART};
use ward_daemon::instances::{self, Credentials, NewInstance, Update, lag_ms, now_ms};
use ward_daemon::metrics::Snapshot;
use ward_daemon::registry::LoadedPlugin;
use ward_runtime::types::{BasicCredentials, Grant};
use ward_store::{EventOrder, EventQuery};

use crate::AppState;
use crate::cursor;
use crate::error::{ApiError, ErrorBody};
use crate::secrets::sha256_hex;
use crate::views::*;

type ApiResult<T> = Result<T, ApiError>;

fn parse_body<T: DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the request body is not valid JSON for this route: {e}"
        ))
    })
}

pub(crate) fn query<T>(q: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::bad_request(format!("bad query string: {}", e.body_text())))
}

fn element(state: &AppState, key_or_id: &str) -> ApiResult<LoadedPlugin> {
    Ok(instances::element(&state.daemon, key_or_id)?)
}

fn element_view(p: &LoadedPlugin) -> ElementView {
    let m = p.plugin.manifest();
    ElementView {
        key: m.key.clone(),
        id: p.plugin.digest().to_owned(),
        name: m.name.clone(),
        version: m.version.clone(),
        vendor: m.vendor.clone(),
        source: serde_json::to_value(&p.source).unwrap_or_default(),
        signature: p.signature.to_string(),
        manifest: serde_json::to_value(m).unwrap_or_default(),
        effective_permissions: serde_json::to_value(&p.effective).unwrap_or_default(),
        status: "loaded".into(),
        widenings: Vec::new(),
    }
}

fn pending_view(p: &ward_daemon::registry::PendingPlugin) -> ElementView {
    ElementView {
        key: p.key.clone(),
        id: p.digest.clone(),
        name: p.key.clone(),
        version: p.version.clone(),
        vendor: String::new(),
        source: serde_json::to_value(&p.source).unwrap_or_default(),
        signature: String::new(),
        manifest: serde_json::Value::Null,
        effective_permissions: serde_json::Value::Null,
        status: "pending-approval".into(),
        widenings: p.widenings.clone(),
    }
}

async fn test_view(state: &AppState, c: Connected) -> ApiResult<TestView> {
    let (ok, checks, error, account_name, principal) = match c.report {
        Ok(r) => (
            r.checks.iter().all(|c| c.ok),
            r.checks
                .into_iter()
                .map(|c| CheckView {
                    name: c.name,
                    ok: c.ok,
                    message: c.message,
                })
                .collect(),
            None,
            r.account_name,
            r.principal,
        ),
        Err(e) => (false, Vec::new(), Some(e.to_string()), None, None),
    };
    let instance = instance_view(&state.daemon, c.instance, None).await?;
    Ok(TestView {
        ok,
        checks,
        error,
        account_name,
        principal,
        instance,
    })
}

/// The OAuth client settings under SAP Open Connectors' names, taken out of
/// a `configuration` (or query) map; `alternatives` are Ward's query names
/// (`apiKey`, `apiSecret`, `callbackUrl`), accepted too.
fn take_client_settings(
    map: &mut BTreeMap<String, String>,
    alternatives: bool,
) -> ApiResult<ClientSettings> {
    let mut take = |sap: &str, ward: &str| -> ApiResult<Option<String>> {
        let a = map.remove(sap).filter(|v| !v.is_empty());
        let b = if alternatives {
            map.remove(ward).filter(|v| !v.is_empty())
        } else {
            None
        };
        match (a, b) {
            (Some(a), Some(b)) if a != b => Err(ApiError::bad_request(format!(
                "{sap} and {ward} are the same setting and differ; give it once"
            ))),
            (a, b) => Ok(a.or(b)),
        }
    };
    Ok(ClientSettings {
        client_id: take("oauth.api.key", "apiKey")?,
        client_secret: take("oauth.api.secret", "apiSecret")?,
        callback_url: take("oauth.callback.url", "callbackUrl")?,
    })
}

/// Parses `providerData` (with the request's OAuth client settings).
fn provider_grant(data: ProviderData, client: ClientSettings) -> ApiResult<Credentials> {
    let direct = |grant| {
        if client == ClientSettings::default() {
            Ok(Credentials::Direct(grant))
        } else {
            Err(ApiError::bad_request(
                "oauth.api.key, oauth.api.secret and oauth.callback.url apply only to \
                 providerData {code}; remove them for an API token or user name and password",
            ))
        }
    };
    match data {
        ProviderData {
            code: Some(code),
            state,
            api_token: None,
            username: None,
            password: None,
        } => Ok(Credentials::Code(CodeGrant {
            code,
            state: state.filter(|s| !s.is_empty()),
            client,
        })),
        ProviderData {
            api_token: Some(token),
            code: None,
            state: None,
            username: None,
            password: None,
        } => direct(Grant::ApiToken(token)),
        ProviderData {
            username: Some(username),
            password: Some(password),
            code: None,
            state: None,
            api_token: None,
        } => direct(Grant::Basic(BasicCredentials { username, password })),
        _ => Err(ApiError::bad_request(
            "providerData must hold one of {code} (OAuth; with the `state` when the code came \
             through Ward's /oauth/callback), {apiToken}, or {username, password}",
        )),
    }
}

/// Installed plugins with their manifests and effective permissions, then
/// versions held for approval (`status: pending-approval`).
#[utoipa::path(get, path = "/elements", tag = "elements",
    security(("UserOrganization" = [])),
    responses((status = 200, body = Vec<ElementView>), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_elements(State(state): State<AppState>) -> Json<Vec<ElementView>> {
    let registry = &state.daemon.registry;
    let mut all: Vec<ElementView> = registry.list().iter().map(element_view).collect();
    all.extend(registry.pending().iter().map(pending_view));
    Json(all)
}

/// One installed plugin, by key or component digest.
#[utoipa::path(get, path = "/elements/{keyOrId}", tag = "elements",
    params(("keyOrId" = String, Path, description = "Plugin key or SHA-256 digest")),
    security(("UserOrganization" = [])),
    responses((status = 200, body = ElementView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_element(
    State(state): State<AppState>,
    Path(key_or_id): Path<String>,
) -> ApiResult<Json<ElementView>> {
    Ok(Json(element_view(&element(&state, &key_or_id)?)))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageParams {
    /// Window in days, 1 to 365 (default 30).
    days: Option<u32>,
}

/// Declared vs used: which effective grants, methods and secrets the
/// element's instances used (from the egress log, the newest 1000 requests
/// of each instance), and a `[policy.KEY]` narrowing it to that.
#[utoipa::path(get, path = "/elements/{keyOrId}/usage", tag = "elements",
    params(("keyOrId" = String, Path, description = "Plugin key or digest"), UsageParams),
    security(("UserOrganization" = [])),
    responses((status = 200, body = UsageView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn element_usage(
    State(state): State<AppState>,
    Path(key_or_id): Path<String>,
    q: Result<Query<UsageParams>, QueryRejection>,
) -> ApiResult<Json<UsageView>> {
    let days = match query(q)?.days {
        None => 30,
        Some(d @ 1..=365) => d,
        Some(d) => {
            return Err(ApiError::bad_request(format!("days {d}: ask for 1 to 365")));
        }
    };
    let usage = ward_daemon::usage::usage(&state.daemon, &key_or_id, days).await?;
    Ok(Json(UsageView::from(usage)))
}

/// Starts an OAuth authorization: issues a single-use `state` and returns
/// the provider's consent URL. Every query parameter other than the OAuth
/// client settings (`apiKey`, `apiSecret`, `callbackUrl` or SAP's
/// `oauth.api.key`, `oauth.api.secret`, `oauth.callback.url`) is a
/// configuration field of the element, or one of its aliases.
#[utoipa::path(get, path = "/elements/{keyOrId}/oauth/url", tag = "oauth",
    params(
        ("keyOrId" = String, Path, description = "Plugin key or digest"),
        ("apiKey" = Option<String>, Query, description = "OAuth client id (or `oauth.api.key`); required"),
        ("apiSecret" = Option<String>, Query, description = "OAuth client secret (or `oauth.api.secret`; kept encrypted, never returned)"),
        ("callbackUrl" = Option<String>, Query, description = "Redirect URI (or `oauth.callback.url`); default <public_url>/oauth/callback"),
    ),
    security(("UserOrganization" = [])),
    responses((status = 200, body = OauthUrlView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn oauth_url(
    State(state): State<AppState>,
    Path(key_or_id): Path<String>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> ApiResult<Json<OauthUrlView>> {
    let mut params: BTreeMap<String, String> = query(q)?.into_iter().collect();
    let loaded = element(&state, &key_or_id)?;
    let client = take_client_settings(&mut params, true)?;
    let begun = consent::begin(&state.daemon, &loaded, &params, client).await?;
    Ok(Json(OauthUrlView {
        element: begun.element,
        oauth_url: begun.oauth_url,
    }))
}

/// Where the provider sends the user's browser back. The `state` is the
/// credential: missing, unknown, expired or used → 401.
#[utoipa::path(get, path = "/oauth/callback", tag = "oauth",
    params(
        ("state" = String, Query, description = "The state issued with the OAuth URL"),
        ("code" = Option<String>, Query, description = "Authorization code"),
        ("error" = Option<String>, Query, description = "Set when the user declined"),
        ("error_description" = Option<String>, Query, description = "Provider's explanation"),
    ),
    security(("OauthState" = [])),
    responses(
        (status = 200, body = CallbackView),
        (status = 303, description = "A consent begun in the console: the browser continues there (`/console/oauth/returned?state=…[&error=…]`)"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
    ))]
pub(crate) async fn oauth_callback(
    State(state): State<AppState>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> ApiResult<Response> {
    let mut params =
        query(q).map_err(|e| ApiError::unauthorized(format!("{}; {RESTART}", e.message)))?;
    let oauth_state = params.remove("state");
    let result = consent::complete(
        &state.daemon,
        Callback {
            state: oauth_state.clone(),
            code: params.remove("code"),
            error: params.remove("error"),
            error_description: params.remove("error_description"),
        },
    )
    .await;
    // A consent the console began continues in the console, which
    // finishes it behind the session that began it.
    if let Some((oauth_state, to)) = oauth_state.and_then(|s| {
        let to = state.daemon.browser_returns.take(&s)?;
        Some((s, to))
    }) {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("state", &oauth_state);
        if let Err(e) = &result {
            query.append_pair("error", &e.to_string());
        }
        let location = format!("{to}?{}", query.finish());
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response());
    }
    let returned = result?;
    Ok(Json(CallbackView {
        element: returned.element,
        code: returned.code,
        state: returned.state,
    })
    .into_response())
}

/// Where the consent of an OAuth state stands, for the operator who
/// started it (`ward connect` polls this while the browser is at the
/// provider).
#[utoipa::path(get, path = "/oauth/states/{state}", tag = "oauth",
    params(("state" = String, Path, description = "The state issued with the OAuth URL")),
    security(("UserOrganization" = [])),
    responses((status = 200, body = OauthStateView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn oauth_state(
    State(state): State<AppState>,
    Path(oauth_state): Path<String>,
) -> ApiResult<Json<OauthStateView>> {
    let Some(outcome) = state
        .daemon
        .store
        .oauth_outcome(&sha256_hex(&oauth_state))
        .await?
    else {
        return Err(ApiError::not_found(
            "no such OAuth state (never issued, or pruned a day after it expired); start again \
             at GET /elements/{key}/oauth/url",
        ));
    };
    Ok(Json(oauth_state_view(outcome)))
}

/// Every instance with its status.
#[utoipa::path(get, path = "/instances", tag = "instances",
    security(("UserOrganization" = [])),
    responses((status = 200, body = Vec<InstanceView>), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_instances(
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<InstanceView>>> {
    let mut out = Vec::new();
    for i in state.daemon.store.instances().await? {
        out.push(instance_view(&state.daemon, i, None).await?);
    }
    Ok(Json(out))
}

/// Creates an instance: exchange the grant, store the credentials
/// encrypted, run the test, start ingestion. The response's `token` is
/// shown only here.
#[utoipa::path(post, path = "/instances", tag = "instances",
    request_body = CreateInstance,
    security(("UserOrganization" = [])),
    responses((status = 201, body = CreatedView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 502, body = ErrorBody)))]
pub(crate) async fn create_instance(
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: CreateInstance = parse_body(&body)?;
    let mut config = req.configuration;
    let client = take_client_settings(&mut config, false)?;
    let created = instances::create(
        &state.daemon,
        NewInstance {
            element: req.element.key,
            name: req.name,
            config,
            tags: req.tags,
            credentials: provider_grant(req.provider_data, client)?,
        },
    )
    .await?;
    let view = test_view(&state, created.connected).await?;
    let mut instance = view.instance;
    instance.token = Some(created.token);
    let created = CreatedView {
        instance,
        checks: view.checks,
        test_error: view.error,
        account_name: view.account_name,
        principal: view.principal,
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// One instance with its status.
#[utoipa::path(get, path = "/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "Instance id")),
    security(("UserOrganization" = []), ("Element" = [])),
    responses((status = 200, body = InstanceView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_instance(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<InstanceView>> {
    let i = instances::get(&state.daemon, &id).await?;
    Ok(Json(instance_view(&state.daemon, i, None).await?))
}

/// Renames, retags, disables/enables an instance or overrides its rate budget.
#[utoipa::path(patch, path = "/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "Instance id")),
    request_body = PatchInstance,
    security(("UserOrganization" = [])),
    responses((status = 200, body = InstanceView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn patch_instance(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<InstanceView>> {
    let patch: PatchInstance = parse_body(&body)?;
    let i = instances::update(
        &state.daemon,
        &id,
        Update {
            name: patch.name,
            tags: patch.tags,
            requests_per_minute: patch.requests_per_minute,
            disabled: patch.disabled,
        },
    )
    .await?;
    Ok(Json(instance_view(&state.daemon, i, None).await?))
}

/// Deletes an instance with its credentials, cursors, events, users and egress log.
#[utoipa::path(delete, path = "/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "Instance id")),
    security(("UserOrganization" = [])),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_instance(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    instances::delete(&state.daemon, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// "Test now": runs the element's checks and updates the status.
#[utoipa::path(post, path = "/instances/{id}/test", tag = "instances",
    params(("id" = String, Path, description = "Instance id")),
    security(("UserOrganization" = []), ("Element" = [])),
    responses((status = 200, body = TestView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn test_instance(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<TestView>> {
    let connected = instances::test_now(&state.daemon, &id).await?;
    Ok(Json(test_view(&state, connected).await?))
}

/// Reconnect or rotate: new credentials, cursors and events kept.
#[utoipa::path(put, path = "/instances/{id}/credentials", tag = "instances",
    params(("id" = String, Path, description = "Instance id")),
    request_body = Reconnect,
    security(("UserOrganization" = [])),
    responses((status = 200, body = TestView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub(crate) async fn put_credentials(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<TestView>> {
    let req: Reconnect = parse_body(&body)?;
    // The instance must exist before its body is judged (404 first).
    instances::get(&state.daemon, &id).await?;
    let mut configuration = req.configuration;
    let client = take_client_settings(&mut configuration, false)?;
    if let Some(field) = configuration.keys().next() {
        return Err(ApiError::bad_request(format!(
            "configuration field {field:?}: a reconnect keeps the instance's configuration and \
             takes only oauth.api.key, oauth.api.secret and oauth.callback.url; create a new \
             instance to change it"
        )));
    }
    let credentials = provider_grant(req.provider_data, client)?;
    let connected = instances::reconnect(&state.daemon, &id, credentials).await?;
    Ok(Json(test_view(&state, connected).await?))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsParams {
    /// Only events at or after this time (RFC 3339 or ms since epoch).
    from: Option<String>,
    /// Only events before this time (RFC 3339 or ms since epoch).
    to: Option<String>,
    /// Only this action, e.g. `user.session.start`.
    action: Option<String>,
    /// Only this actor (id, email or display name).
    actor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<u32>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
    /// `newest` (default) or `oldest` first.
    order: Option<String>,
}

pub(crate) fn parse_time(name: &str, v: &str) -> ApiResult<i64> {
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(ms);
    }
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
        .map_err(|_| {
            ApiError::bad_request(format!(
                "{name} {v:?} is neither RFC 3339 (2026-01-31T12:00:00Z) nor milliseconds since the epoch"
            ))
        })
}

/// The page size a `limit` asks for: absent means the default, and
/// anything outside 1..=MAX_PAGE is refused rather than silently changed.
fn page_size(limit: Option<u32>) -> ApiResult<u32> {
    match limit {
        None => Ok(ward_store::DEFAULT_PAGE),
        Some(n @ 1..=ward_store::MAX_PAGE) => Ok(n),
        Some(n) => Err(ApiError::bad_request(format!(
            "limit {n}: ask for 1 to {} items per page (default {})",
            ward_store::MAX_PAGE,
            ward_store::DEFAULT_PAGE
        ))),
    }
}

/// The instance's audit events, filtered, with keyset pagination.
#[utoipa::path(get, path = "/instances/{id}/events", tag = "instances",
    params(("id" = String, Path, description = "Instance id"), EventsParams),
    security(("UserOrganization" = []), ("Element" = [])),
    responses((status = 200, body = EventsPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn instance_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<EventsParams>, QueryRejection>,
) -> ApiResult<Json<EventsPage>> {
    let p = query(q)?;
    instances::get(&state.daemon, &id).await?;
    let order = match p.order.as_deref() {
        None | Some("newest") => EventOrder::NewestFirst,
        Some("oldest") => EventOrder::OldestFirst,
        Some(o) => {
            return Err(ApiError::bad_request(format!(
                "order {o:?}: use newest or oldest"
            )));
        }
    };
    let effective = page_size(p.limit)?;
    let eq = EventQuery {
        since_ms: p
            .from
            .as_deref()
            .map(|v| parse_time("from", v))
            .transpose()?,
        until_ms: p.to.as_deref().map(|v| parse_time("to", v)).transpose()?,
        action: p.action,
        actor: p.actor,
        limit: effective,
        after: p.cursor.as_deref().map(cursor::decode_keyed).transpose()?,
        order,
    };
    let events = state.daemon.store.events(&id, &eq).await?;
    // Given for every non-empty page, even a short one, so a follower can
    // keep asking from where it stopped as new events arrive.
    let next_cursor = events
        .last()
        .map(|e| cursor::encode_keyed(e.time_ms, &e.event_id));
    Ok(Json(EventsPage {
        events: events.into_iter().map(EventView::from).collect(),
        next_cursor,
    }))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageParams {
    /// Page size, 1 to 1000 (default 100).
    limit: Option<u32>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

/// The instance's directory users.
#[utoipa::path(get, path = "/instances/{id}/users", tag = "instances",
    params(("id" = String, Path, description = "Instance id"), PageParams),
    security(("UserOrganization" = []), ("Element" = [])),
    responses((status = 200, body = UsersPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn instance_users(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<PageParams>, QueryRejection>,
) -> ApiResult<Json<UsersPage>> {
    let p = query(q)?;
    instances::get(&state.daemon, &id).await?;
    let effective = page_size(p.limit)?;
    let after = p.cursor.as_deref().map(cursor::decode).transpose()?;
    let users = state
        .daemon
        .store
        .users(&id, effective, after.as_deref())
        .await?;
    let next_cursor = (users.len() == effective as usize)
        .then(|| users.last().map(|u| cursor::encode(&u.user_id)))
        .flatten();
    Ok(Json(UsersPage {
        users: users.into_iter().map(UserView::from).collect(),
        next_cursor,
    }))
}

/// What the instance's plugin accessed (allowed and denied), newest first.
#[utoipa::path(get, path = "/instances/{id}/egress", tag = "instances",
    params(("id" = String, Path, description = "Instance id"), PageParams),
    security(("UserOrganization" = []), ("Element" = [])),
    responses((status = 200, body = EgressPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn instance_egress(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<PageParams>, QueryRejection>,
) -> ApiResult<Json<EgressPage>> {
    let p = query(q)?;
    instances::get(&state.daemon, &id).await?;
    let effective = page_size(p.limit)?;
    let before = p
        .cursor
        .as_deref()
        .map(|c| {
            let (at_ms, row) = cursor::decode_keyed(c)?;
            let row: i64 = row.parse().map_err(|_| {
                ApiError::bad_request("cursor is not one this API returned; start again")
            })?;
            Ok::<_, ApiError>((at_ms, row))
        })
        .transpose()?;
    let page = state
        .daemon
        .store
        .egress_page(&id, effective, before)
        .await?;
    let next_cursor = (page.len() == effective as usize)
        .then(|| {
            page.last()
                .map(|(row, r)| cursor::encode_keyed(r.at_ms, &row.to_string()))
        })
        .flatten();
    Ok(Json(EgressPage {
        egress: page.into_iter().map(|(_, r)| EgressView::from(r)).collect(),
        next_cursor,
    }))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "system",
    security(("UserOrganization" = [])),
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json"), (status = 401, body = ErrorBody)))]
pub(crate) async fn openapi_json(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json((*state.openapi).clone())
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "system",
    security(("UserOrganization" = [])),
    responses((status = 200, description = "OpenMetrics text exposition (Prometheus scrapes it)",
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"), (status = 401, body = ErrorBody)))]
pub(crate) async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let daemon = &state.daemon;
    let stats = daemon.store.stats().await?;
    let now = now_ms();
    let mut lag_secs = BTreeMap::new();
    for id in stats.events.keys() {
        let progress = daemon.scheduler.progress(id);
        let newest = daemon.store.newest_event_ms(id).await?;
        if let Some(lag) = lag_ms(progress.as_ref(), newest, now) {
            lag_secs.insert(id.clone(), lag / 1000);
        }
    }
    let snapshot = Snapshot {
        instances_by_status: stats
            .by_status
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
        events_stored: stats.events,
        lag_secs,
    };
    let body = daemon.metrics.render(&snapshot);
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

/// Liveness for load balancers and orchestrators: the process serves
/// HTTP. Unauthenticated, so it says nothing else; `/healthz` has the
/// details.
#[utoipa::path(get, path = "/livez", tag = "system",
    security(()),
    responses((status = 200, description = "Alive: `{\"status\": \"ok\"}`", content_type = "application/json")))]
pub(crate) async fn livez() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Health: the store answers; plugin and dev-mode details.
#[utoipa::path(get, path = "/healthz", tag = "system",
    security(("UserOrganization" = [])),
    responses((status = 200, description = "Healthy"), (status = 401, body = ErrorBody)))]
pub(crate) async fn healthz(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let n = state.daemon.store.instances().await?.len();
    let registry = &state.daemon.registry;
    let mut body = serde_json::json!({
        "status": "ok",
        "store": state.daemon.store.backend().as_str(),
        "daemon": state.daemon.scheduler.daemon_id(),
        "instances": n,
        "plugins": registry.list().len(),
        "pending_plugins": registry.pending().len(),
        "refused_plugins": registry.refused().len(),
        "dev_mode": registry.dev_mode(),
    });
    if registry.dev_mode() {
        body["warning"] = serde_json::Value::String(
            "DEV MODE: plugins are loaded without signature checks; restart without --dev for production"
                .into(),
        );
    }
    Ok(Json(body))
}

/// Unknown routes.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such route; GET /openapi.json lists every route")
}

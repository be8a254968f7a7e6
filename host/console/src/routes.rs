//! The console's handlers: parse the request, call the daemon's service
//! layer, render. Every route but sign-in and the assets sits behind
//! [`session::require`].

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use maud::Markup;
use serde::Deserialize;
use ward_api::{EgressView, EventView, SinkView};
use ward_daemon::instances::{self, InstanceError};
use ward_store::{EventOrder, EventQuery, StoreError};

use crate::Console;
use crate::render;
use crate::session::{self, SIGN_IN_COOKIE, Session};
use crate::wizard;

/// The sign-in page.
pub(crate) const SIGN_IN: &str = "/console/sign-in";
/// Where a one-time link signs in.
pub(crate) const LINK: &str = "/console/sign-in/link";

const HTMX: &[u8] = include_bytes!("../assets/htmx-2.0.11.min.js");
const CSS: &[u8] = include_bytes!("../assets/console.css");

/// Why a console page could not be shown.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConsoleError {
    /// An operation on an instance failed.
    #[error(transparent)]
    Instance(#[from] InstanceError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request cannot be served as given.
    #[error("{0}")]
    BadRequest(String),
    /// Nothing there.
    #[error("{0}")]
    NotFound(String),
    /// The plugin registry refused.
    #[error(transparent)]
    Registry(#[from] ward_daemon::registry::RegistryError),
    /// A sink operation failed.
    #[error(transparent)]
    Sink(#[from] ward_sinks::SinkError),
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = match &self {
            ConsoleError::Instance(
                InstanceError::NotFound(_) | InstanceError::UnknownElement(_),
            )
            | ConsoleError::NotFound(_)
            | ConsoleError::Sink(ward_sinks::SinkError::NotFound(_)) => StatusCode::NOT_FOUND,
            ConsoleError::Instance(InstanceError::Tags(_) | InstanceError::EmptyName)
            | ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::Instance(InstanceError::PluginGone { .. })
            | ConsoleError::Registry(_) => StatusCode::CONFLICT,
            ConsoleError::Instance(InstanceError::Store(_))
            | ConsoleError::Store(_)
            | ConsoleError::Sink(_) => {
                tracing::error!(error = %self, "store error in a console request");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ConsoleError::Instance(_) => StatusCode::BAD_GATEWAY,
        };
        (status, render::error(status, &self.to_string())).into_response()
    }
}

type Page = Result<Markup, ConsoleError>;

pub(crate) fn router(console: Console) -> Router {
    let private = Router::new()
        .route("/", get(instances_page))
        .route("/console", get(instances_page))
        .route("/console/instances", get(instances_page))
        .route("/console/instances/{id}", get(instance_page))
        .route("/console/instances/{id}/status", get(status_fragment))
        .route("/console/instances/{id}/test", post(test_now))
        .route("/console/instances/{id}/disable", post(disable))
        .route("/console/instances/{id}/enable", post(enable))
        .route(
            "/console/instances/{id}/delete",
            get(confirm_delete).post(delete),
        )
        .route(
            "/console/instances/{id}/reconnect",
            get(wizard::reconnect_form).post(wizard::reconnect),
        )
        .route("/console/instances/{id}/rate", post(wizard::rate))
        .route("/console/connect", get(wizard::choose))
        .route(wizard::FINISH, get(wizard::finish))
        .route(
            "/console/connect/{key}",
            get(wizard::form).post(wizard::submit),
        )
        .route("/console/instances/{id}/events", get(events_page))
        .route("/console/instances/{id}/event", get(event_page))
        .route("/console/instances/{id}/events.ndjson", get(export))
        .route("/console/instances/{id}/egress", get(egress_page))
        .route("/console/connectors", get(connectors_page))
        .route("/console/sinks", get(sinks_page))
        .route("/console/sinks/{name}/resume", post(resume_sink))
        .route("/console/connectors/{key}/usage", get(usage_page))
        .route("/console/connectors/{key}/approve", post(approve))
        .route("/console/connectors/{key}/diff", get(diff_page))
        .route("/console/sign-out", post(sign_out))
        .route_layer(from_fn_with_state(console.clone(), session::require));
    Router::new()
        .route(SIGN_IN, get(sign_in_page).post(sign_in))
        .route(LINK, get(link))
        .route(wizard::RETURNED, get(wizard::returned))
        .route("/console/assets/{name}", get(asset))
        .merge(private)
        .with_state(console)
}

async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "htmx.min.js" => (HTMX, "text/javascript; charset=utf-8"),
        "console.css" => (CSS, "text/css; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn sign_in_page(State(console): State<Console>) -> Response {
    let token = ward_daemon::consent::random_token();
    let cookie = console
        .sessions
        .cookie(SIGN_IN_COOKIE, &token, session::LINK_TTL.as_secs());
    (
        [(header::SET_COOKIE, cookie)],
        render::sign_in(&token, None),
    )
        .into_response()
}

#[derive(Deserialize)]
struct SignInForm {
    user: String,
    organization: String,
    csrf: String,
}

async fn sign_in(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, ConsoleError> {
    let expected = session::cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !session::same(&form.csrf, &expected) {
        return Ok((
            StatusCode::FORBIDDEN,
            "the sign-in form's CSRF token is missing or stale: reload the sign-in page",
        )
            .into_response());
    }
    let hashes = console.daemon.store.api_secret_hashes().await?;
    let matches = |name: &str, secret: &str| {
        hashes
            .get(name)
            .is_some_and(|h| session::same(h, &ward_daemon::consent::sha256_hex(secret)))
    };
    // Both are checked, whatever the first says.
    let user_ok = matches("user", &form.user);
    let org_ok = matches("organization", &form.organization);
    if !(user_ok && org_ok) {
        return Ok((
            StatusCode::UNAUTHORIZED,
            render::sign_in(
                &expected,
                Some(
                    "those are not the operator's secrets: use the `user` and `organization` \
                     values of <data_dir>/api-secrets.toml",
                ),
            ),
        )
            .into_response());
    }
    let cookie = console.sessions.start();
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response())
}

#[derive(Deserialize)]
struct LinkQuery {
    token: String,
}

async fn link(State(console): State<Console>, Query(q): Query<LinkQuery>) -> Response {
    if !console.sessions.redeem_link(&q.token) {
        return (
            StatusCode::UNAUTHORIZED,
            render::error(
                StatusCode::UNAUTHORIZED,
                "this sign-in link is unknown, expired or already used: sign in with the \
                 operator secrets, or restart `ward demo` for a new link",
            ),
        )
            .into_response();
    }
    let cookie = console.sessions.start();
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

async fn sign_out(State(console): State<Console>, headers: HeaderMap) -> Response {
    let cookie = console.sessions.end(&headers);
    ([(header::SET_COOKIE, cookie)], Redirect::to(SIGN_IN)).into_response()
}

async fn instances_page(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
) -> Page {
    let daemon = &console.daemon;
    let mut all = Vec::new();
    for i in daemon.store.instances().await? {
        all.push(instances::overview(daemon, i).await?);
    }
    Ok(render::instances(&session, &all))
}

async fn instance_page(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Page {
    let daemon = &console.daemon;
    let o = instances::overview(daemon, instances::get(daemon, &id).await?).await?;
    Ok(render::instance(&session, &o, None, None))
}

async fn status_fragment(State(console): State<Console>, Path(id): Path<String>) -> Page {
    let daemon = &console.daemon;
    let o = instances::overview(daemon, instances::get(daemon, &id).await?).await?;
    Ok(render::status(&o))
}

async fn test_now(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Page {
    let daemon = &console.daemon;
    let connected = instances::test_now(daemon, &id).await?;
    let report = render::TestOutcome::of(&connected);
    let o = instances::overview(daemon, connected.instance).await?;
    Ok(render::instance(&session, &o, Some(&report), None))
}

async fn disable(
    State(console): State<Console>,
    Path(id): Path<String>,
) -> Result<Redirect, ConsoleError> {
    instances::set_disabled(&console.daemon, &id, true).await?;
    Ok(Redirect::to(&format!("/console/instances/{id}")))
}

async fn enable(
    State(console): State<Console>,
    Path(id): Path<String>,
) -> Result<Redirect, ConsoleError> {
    instances::set_disabled(&console.daemon, &id, false).await?;
    Ok(Redirect::to(&format!("/console/instances/{id}")))
}

async fn confirm_delete(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Page {
    let instance = instances::get(&console.daemon, &id).await?;
    Ok(render::confirm_delete(&session, &instance))
}

async fn delete(
    State(console): State<Console>,
    Path(id): Path<String>,
) -> Result<Redirect, ConsoleError> {
    instances::delete(&console.daemon, &id).await?;
    Ok(Redirect::to("/console/instances"))
}

/// The events explorer's filters, as the form sends them.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct EventFilters {
    /// From (`YYYY-MM-DDTHH:MM`, UTC).
    #[serde(default)]
    pub from: String,
    /// To (`YYYY-MM-DDTHH:MM`, UTC).
    #[serde(default)]
    pub to: String,
    /// Exact action.
    #[serde(default)]
    pub action: String,
    /// Exact actor id, email or name.
    #[serde(default)]
    pub actor: String,
    /// `success`, `failure`, `unknown` or empty for all.
    #[serde(default)]
    pub outcome: String,
    /// Keyset position (the API's `nextCursor`).
    #[serde(default)]
    pub cursor: String,
}

fn minute(name: &str, v: &str) -> Result<Option<i64>, ConsoleError> {
    if v.is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    time::PrimitiveDateTime::parse(v, &format)
        .map(|t| {
            let nanos = t.assume_utc().unix_timestamp_nanos() / 1_000_000;
            Some(i64::try_from(nanos).unwrap_or(i64::MAX))
        })
        .map_err(|_| ConsoleError::BadRequest(format!("{name} {v:?}: use YYYY-MM-DDTHH:MM (UTC)")))
}

fn not_empty(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_owned())
}

/// One page of events matching the filters (outcome applied to the page).
async fn events_matching(
    console: &Console,
    id: &str,
    f: &EventFilters,
    limit: u32,
) -> Result<(Vec<EventView>, Option<String>), ConsoleError> {
    let after = not_empty(&f.cursor)
        .map(|c| ward_api::cursor::decode_keyed(&c))
        .transpose()
        .map_err(|e| ConsoleError::BadRequest(e.message))?;
    let q = EventQuery {
        since_ms: minute("from", &f.from)?,
        until_ms: minute("to", &f.to)?,
        action: not_empty(&f.action),
        actor: not_empty(&f.actor),
        limit,
        after,
        order: EventOrder::NewestFirst,
    };
    let rows = console.daemon.store.events(id, &q).await?;
    let next = (rows.len() == limit as usize)
        .then(|| {
            rows.last()
                .map(|e| ward_api::cursor::encode_keyed(e.time_ms, &e.event_id))
        })
        .flatten();
    let events = rows
        .into_iter()
        .filter(|e| f.outcome.is_empty() || e.outcome == f.outcome)
        .map(EventView::from)
        .collect();
    Ok((events, next))
}

async fn events_page(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Query(f): Query<EventFilters>,
) -> Page {
    let instance = instances::get(&console.daemon, &id).await?;
    let (events, next) = events_matching(&console, &id, &f, 50).await?;
    Ok(render::events(
        &session,
        &instance,
        &f,
        &events,
        next.as_deref(),
    ))
}

#[derive(Deserialize)]
struct EventRef {
    time_ms: i64,
    event_id: String,
}

async fn event_page(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Query(r): Query<EventRef>,
) -> Page {
    let instance = instances::get(&console.daemon, &id).await?;
    let q = EventQuery {
        since_ms: Some(r.time_ms),
        until_ms: Some(r.time_ms.saturating_add(1)),
        limit: ward_store::MAX_PAGE,
        ..EventQuery::default()
    };
    let event = console
        .daemon
        .store
        .events(&id, &q)
        .await?
        .into_iter()
        .find(|e| e.event_id == r.event_id)
        .map(EventView::from)
        .ok_or_else(|| {
            ConsoleError::NotFound(format!(
                "instance {id} has no event {:?} at that time",
                r.event_id
            ))
        })?;
    Ok(render::event(&session, &instance, &event))
}

async fn export(
    State(console): State<Console>,
    Path(id): Path<String>,
    Query(mut f): Query<EventFilters>,
) -> Result<Response, ConsoleError> {
    instances::get(&console.daemon, &id).await?;
    f.cursor.clear();
    let mut out = String::new();
    loop {
        let (events, next) = events_matching(&console, &id, &f, ward_store::MAX_PAGE).await?;
        for e in &events {
            let line = serde_json::to_string(e)
                .map_err(|e| ConsoleError::BadRequest(format!("cannot write an event: {e}")))?;
            out.push_str(&line);
            out.push('\n');
        }
        match next {
            Some(c) => f.cursor = c,
            None => break,
        }
    }
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"events-{id}.ndjson\""),
            ),
        ],
        out,
    )
        .into_response())
}

#[derive(Deserialize)]
struct EgressFilter {
    #[serde(default)]
    denied: String,
}

async fn egress_page(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Query(f): Query<EgressFilter>,
) -> Page {
    let instance = instances::get(&console.daemon, &id).await?;
    let denied_only = !f.denied.is_empty();
    let rows: Vec<EgressView> = console
        .daemon
        .store
        .egress(&id, ward_store::MAX_PAGE)
        .await?
        .into_iter()
        .filter(|r| !denied_only || !r.allowed)
        .map(EgressView::from)
        .collect();
    Ok(render::egress(&session, &instance, &rows, denied_only))
}

async fn sinks_page(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
) -> Page {
    let sinks = console.daemon.sinks.status().await?;
    let views: Vec<SinkView> = sinks.into_iter().map(SinkView::from).collect();
    Ok(render::sinks(&session, &views))
}

async fn resume_sink(
    State(console): State<Console>,
    Path(name): Path<String>,
) -> Result<Redirect, ConsoleError> {
    console.daemon.sinks.resume(&name).await?;
    Ok(Redirect::to("/console/sinks"))
}

async fn connectors_page(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
) -> Page {
    let registry = &console.daemon.registry;
    Ok(render::connectors(
        &session,
        &registry.list(),
        &registry.pending(),
    ))
}

#[derive(Deserialize)]
struct UsageQuery {
    #[serde(default)]
    days: Option<u32>,
}

async fn usage_page(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Path(key): Path<String>,
    Query(q): Query<UsageQuery>,
) -> Page {
    let days = q.days.unwrap_or(30).clamp(1, 365);
    let u = ward_daemon::usage::usage(&console.daemon, &key, days).await?;
    Ok(render::usage(&session, &u))
}

#[derive(Deserialize)]
struct ApproveForm {
    digest: String,
}

/// Approves a held upgrade (the same as `ward plugin approve KEY DIGEST`):
/// recorded in the store and loaded at once.
async fn approve(
    State(console): State<Console>,
    Path(key): Path<String>,
    Form(form): Form<ApproveForm>,
) -> Result<Redirect, ConsoleError> {
    let daemon = &console.daemon;
    daemon
        .registry
        .approve(&daemon.store, &key, &form.digest)
        .await?;
    Ok(Redirect::to("/console/connectors"))
}

#[derive(Deserialize)]
struct DiffQuery {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

/// The permission changes between two known versions of a connector (the
/// same comparison that holds upgrades and `ward plugin diff` prints).
/// Defaults: from the running version to the newest other one.
async fn diff_page(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Path(key): Path<String>,
    Query(q): Query<DiffQuery>,
) -> Page {
    let daemon = &console.daemon;
    let versions = daemon.registry.versions(&daemon.store, &key).await?;
    let pick = |digest: Option<&String>, fallback: Option<usize>| {
        match digest {
            Some(d) => versions.iter().find(|v| &v.digest == d),
            None => fallback.and_then(|i| versions.get(i)),
        }
        .ok_or_else(|| {
            ConsoleError::NotFound(format!(
                "connector {key:?} has no known version {}: the Connectors page lists them",
                digest.map_or("to compare", String::as_str)
            ))
        })
    };
    let from = pick(q.from.as_ref(), Some(0))?;
    let other = versions.iter().position(|v| v.digest != from.digest);
    let to = pick(q.to.as_ref(), other.or(Some(0)))?;
    let changes = ward_manifest::diff(&from.manifest, &to.manifest);
    Ok(render::diff(&session, &key, &versions, from, to, &changes))
}

//! Sinks and exports: `GET /sinks`, `POST /sinks/{name}/resume`,
//! `PUT /sink-secrets/{name}`, `GET /events/export`.
//!
//! Handlers parse, call the daemon's [`ward_sinks::Sinks`] or the store,
//! and render view types; delivery itself lives in `ward-sinks`.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use ward_sinks::{Format, Renderer, SinkError, SinkKind, SinkStatus};
use ward_store::{SeqQuery, Store};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::routes::{parse_time, query};

type ApiResult<T> = Result<T, ApiError>;

/// Events read from the store per step of an export.
const EXPORT_STEP: u32 = 1000;

fn sink_error(e: SinkError) -> ApiError {
    match e {
        SinkError::NotFound(_) | SinkError::UnknownSecret(_) => ApiError::not_found(e.to_string()),
        SinkError::Config { .. } => ApiError::unprocessable(e.to_string()),
        SinkError::Store(e) => e.into(),
    }
}

/// One sink's delivery state.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SinkView {
    /// Name in `ward.toml`.
    pub name: String,
    /// `file` or `http`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `ocsf` or `ward`.
    pub format: String,
    /// The URL or directory.
    pub target: String,
    /// `active`, `retrying` or `dead_letter` (held until resumed).
    pub state: String,
    /// Events acknowledged by the sink (re-sent events count again).
    pub delivered: u64,
    /// Events stored and not yet acknowledged.
    pub lag_events: u64,
    /// Age of the oldest of them, in seconds.
    pub lag_seconds: i64,
    /// Ingestion sequence acknowledged up to.
    pub cursor: i64,
    /// The last delivery error (cleared by the next acknowledged batch).
    pub last_error: Option<String>,
    /// When it happened (ms since the epoch).
    pub last_error_at: Option<i64>,
    /// When the sink last acknowledged a batch (ms since the epoch).
    pub last_success_at: Option<i64>,
}

impl From<SinkStatus> for SinkView {
    fn from(s: SinkStatus) -> SinkView {
        SinkView {
            name: s.name,
            kind: match s.kind {
                SinkKind::File => "file",
                SinkKind::Http => "http",
            }
            .into(),
            format: format_name(s.format).into(),
            target: s.target,
            state: s.state.into(),
            delivered: s.delivered,
            lag_events: s.lag_events,
            lag_seconds: s.lag_seconds,
            cursor: s.cursor_seq,
            last_error: s.last_error,
            last_error_at: s.last_error_ms,
            last_success_at: s.last_success_ms,
        }
    }
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Ocsf => "ocsf",
        Format::Ward => "ward",
    }
}

/// Every configured sink.
#[derive(Debug, Serialize, ToSchema)]
pub struct SinksList {
    /// Sinks in `ward.toml` order.
    pub sinks: Vec<SinkView>,
}

/// Every sink's delivery state: lag, last error, delivered count.
#[utoipa::path(get, path = "/sinks", tag = "sinks",
    security(("UserOrganization" = [])),
    responses((status = 200, body = SinksList), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_sinks(State(state): State<AppState>) -> ApiResult<Json<SinksList>> {
    let sinks = state.daemon.sinks.status().await.map_err(sink_error)?;
    Ok(Json(SinksList {
        sinks: sinks.into_iter().map(SinkView::from).collect(),
    }))
}

/// Takes a sink out of dead-letter: it retries the batch it refused.
#[utoipa::path(post, path = "/sinks/{name}/resume", tag = "sinks",
    params(("name" = String, Path, description = "Sink name")),
    security(("UserOrganization" = [])),
    responses((status = 200, body = SinkView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn resume_sink(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<SinkView>> {
    let sinks = &state.daemon.sinks;
    sinks.resume(&name).await.map_err(sink_error)?;
    let status = sinks.sink_status(&name).await.map_err(sink_error)?;
    Ok(Json(status.into()))
}

/// A sink secret to store.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SinkSecretBody {
    /// The secret (e.g. a Splunk HEC token); stored encrypted, never shown.
    pub value: String,
}

/// Stores the secret a sink names with `secret = "NAME"` (encrypted with
/// the master key; never returned).
#[utoipa::path(put, path = "/sink-secrets/{name}", tag = "sinks",
    params(("name" = String, Path, description = "Secret name, as a sink's `secret` names it")),
    request_body = SinkSecretBody,
    security(("UserOrganization" = [])),
    responses((status = 204, description = "Stored"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn put_sink_secret(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let body: SinkSecretBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!("the body must be {{\"value\": \"…\"}}: {e}"))
    })?;
    if body.value.is_empty() {
        return Err(ApiError::bad_request("the secret is empty"));
    }
    state
        .daemon
        .sinks
        .set_secret(&name, &body.value)
        .await
        .map_err(sink_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// What `GET /events/export` streams.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// Only this instance (default: every instance).
    instance: Option<String>,
    /// Only events at or after this time (RFC 3339 or ms since the epoch).
    since: Option<String>,
    /// `ocsf` (default) or `ward`.
    format: Option<String>,
}

/// Every stored event (filtered) as NDJSON, in ingestion order, streamed:
/// one OCSF or Ward JSON object per line, the same bytes a sink would get.
#[utoipa::path(get, path = "/events/export", tag = "sinks",
    params(ExportParams),
    security(("UserOrganization" = [])),
    responses((status = 200, description = "NDJSON, one event per line", content_type = "application/x-ndjson"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn export_events(
    State(state): State<AppState>,
    q: Result<Query<ExportParams>, QueryRejection>,
) -> ApiResult<Response> {
    let p = query(q)?;
    let format = match p.format.as_deref() {
        None | Some("ocsf") => Format::Ocsf,
        Some("ward") => Format::Ward,
        Some(f) => {
            return Err(ApiError::bad_request(format!(
                "format {f:?}: use ocsf or ward"
            )));
        }
    };
    let since_ms = p
        .since
        .as_deref()
        .map(|v| parse_time("since", v))
        .transpose()?;
    let store = state.daemon.store.clone();
    if let Some(id) = &p.instance
        && store.instance(id).await?.is_none()
    {
        return Err(ApiError::not_found(format!(
            "no instance with id {id}; GET /instances lists them"
        )));
    }
    let export = Export {
        store,
        renderer: state.daemon.sinks.renderer(),
        format,
        query: SeqQuery {
            after_seq: 0,
            instances: p.instance.into_iter().collect(),
            since_ms,
            limit: EXPORT_STEP,
        },
        done: false,
    };
    let stream = futures::stream::try_unfold(export, |mut export| async move {
        let chunk = export.next_chunk().await;
        chunk.map(|c| c.map(|bytes| (bytes, export)))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

struct Export {
    store: Store,
    renderer: Renderer,
    format: Format,
    query: SeqQuery,
    done: bool,
}

impl Export {
    /// The next step's lines; `None` at the end. An error aborts the
    /// response mid-stream, so a client never mistakes a cut export for a
    /// complete one.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, std::io::Error> {
        if self.done {
            return Ok(None);
        }
        let batch = self
            .store
            .events_after_seq(&self.query)
            .await
            .map_err(std::io::Error::other)?;
        let Some(last) = batch.last() else {
            return Ok(None);
        };
        self.query.after_seq = last.seq;
        self.done = batch.len() < EXPORT_STEP as usize;
        let mut out = Vec::with_capacity(batch.len() * 512);
        for e in &batch {
            let value = self
                .renderer
                .render(self.format, &e.event)
                .await
                .map_err(std::io::Error::other)?;
            serde_json::to_writer(&mut out, &value).map_err(std::io::Error::other)?;
            out.push(b'\n');
        }
        Ok(Some(Bytes::from(out)))
    }
}

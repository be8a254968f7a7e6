//! The API's error responses: JSON `{"error", "message"}` with a 4xx for
//! anything the caller can fix and 502 when the provider failed.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use ward_daemon::connect::ConnectError;
use ward_daemon::consent::ConsentError;
use ward_daemon::instances::InstanceError;
use ward_runtime::CallError;
use ward_runtime::types::PluginError;
use ward_store::StoreError;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `unauthorized`, `not_found`.
    pub error: String,
    /// What failed and what to do next.
    pub message: String,
}

/// An error the API turns into a JSON response.
#[derive(Debug, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: &'static str,
    /// Human message.
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    pub(crate) fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.code.to_owned(),
                message: self.message,
            }),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::InstanceNotFound { .. } => ApiError::not_found(e.to_string()),
            StoreError::Rejected { .. } => ApiError::unprocessable(e.to_string()),
            other => {
                tracing::error!(error = %other, "store error in API request");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "store",
                    other.to_string(),
                )
            }
        }
    }
}

/// Maps a plugin call failure: the caller's input (credentials, config,
/// permissions) is a 422; the provider or the plugin failing is a 502.
pub(crate) fn call_error(plugin: &str, e: &CallError) -> ApiError {
    match e {
        CallError::Plugin(
            PluginError::Unauthorized(_)
            | PluginError::Forbidden(_)
            | PluginError::InvalidConfig(_),
        ) => ApiError::unprocessable(format!("{plugin}: {e}")),
        _ => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "provider",
            format!("{plugin}: {e}; try again later"),
        ),
    }
}

impl From<ConnectError> for ApiError {
    fn from(e: ConnectError) -> ApiError {
        match e {
            ConnectError::Config(m) => ApiError::unprocessable(m.to_string()),
            ConnectError::Call { plugin, source } => call_error(&plugin, &source),
            ConnectError::Store(s) => s.into(),
            ConnectError::NoCredentials(_) => ApiError::conflict(e.to_string()),
        }
    }
}

impl From<ConsentError> for ApiError {
    fn from(e: ConsentError) -> ApiError {
        match e {
            ConsentError::UnknownState
            | ConsentError::CodeNotReturned { .. }
            | ConsentError::CodeMismatch => ApiError::unauthorized(e.to_string()),
            ConsentError::OtherElement { .. } | ConsentError::Mismatch { .. } => {
                ApiError::conflict(e.to_string())
            }
            ConsentError::MissingState => ApiError::unauthorized(e.to_string()),
            ConsentError::MissingClient { .. }
            | ConsentError::BadCallback(_)
            | ConsentError::MissingClientId
            | ConsentError::NoCallbackUrl
            | ConsentError::MalformedCallback => ApiError::bad_request(e.to_string()),
            ConsentError::Declined { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "access_denied", e.to_string())
            }
            ConsentError::Connect(c) => c.into(),
            ConsentError::Store(s) => s.into(),
        }
    }
}

impl From<InstanceError> for ApiError {
    fn from(e: InstanceError) -> ApiError {
        match e {
            InstanceError::NotFound(_) | InstanceError::UnknownElement(_) => {
                ApiError::not_found(e.to_string())
            }
            InstanceError::PluginGone { .. } => ApiError::conflict(e.to_string()),
            InstanceError::Tags(_) => ApiError::unprocessable(e.to_string()),
            InstanceError::EmptyName => ApiError::bad_request(e.to_string()),
            InstanceError::Rejected { plugin, source } => call_error(&plugin, &source),
            InstanceError::Consent(c) => c.into(),
            InstanceError::Connect(c) => c.into(),
            InstanceError::Store(s) => s.into(),
        }
    }
}

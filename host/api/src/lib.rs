//! Ward's REST API, modelled on SAP Open Connectors.
//!
//! Every route but `/livez` is authenticated (see [`auth`]): `User <secret>,
//! Organization <secret>` for the operator, `Element <token>` for one
//! instance's read and test routes, and the single-use OAuth `state` on
//! `/oauth/callback`. Errors are JSON `{"error", "message"}`; bad input is
//! a 4xx, never a 500. The OpenAPI document is generated from the same
//! handler annotations that build the router, so the two cannot drift.

mod auth;
pub mod cursor;
mod error;
pub mod layers;
mod routes;
mod secrets;
mod server;
mod sinks;
mod views;

use std::sync::Arc;

use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use ward_daemon::Daemon;

pub use error::{ApiError, ErrorBody};
pub use secrets::{
    ApiSecrets, SECRETS_FILE, SecretsError, SecretsSetup, ensure_api_secrets, sha256_hex,
};
pub use server::serve;
pub use sinks::SinkView;
pub use views::{ActorView, EgressView, EventView, UserView, rfc3339};

/// Shared state of the handlers.
#[derive(Clone)]
pub(crate) struct AppState {
    pub daemon: Daemon,
    pub openapi: Arc<serde_json::Value>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ward API",
        description = "Connect SaaS providers to Ward, test and reconnect instances, and read \
                       their audit events, users and egress log."
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "elements", description = "Installed plugins"),
        (name = "oauth", description = "OAuth consent"),
        (name = "instances", description = "Connected instances"),
        (name = "sinks", description = "Event delivery to SIEMs and files, exports"),
        (name = "system", description = "Health, metrics, this document"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            auth::SCHEME_ORGANIZATION,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`User <secret>, Organization <secret>`: the operator's API secrets",
            ))),
        );
        components.add_security_scheme(
            auth::SCHEME_ELEMENT,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Element <instance token>` (or `User <secret>, Organization <secret>, Element <instance token>`): read and test one instance",
            ))),
        );
        components.add_security_scheme(
            auth::SCHEME_STATE,
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "state",
                "The single-use OAuth state issued by GET /elements/{keyOrId}/oauth/url",
            ))),
        );
    }
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::list_elements))
        .routes(routes!(routes::get_element))
        .routes(routes!(routes::element_usage))
        .routes(routes!(routes::oauth_url))
        .routes(routes!(routes::oauth_callback))
        .routes(routes!(routes::oauth_state))
        .routes(routes!(routes::list_instances, routes::create_instance))
        .routes(routes!(
            routes::get_instance,
            routes::patch_instance,
            routes::delete_instance
        ))
        .routes(routes!(routes::test_instance))
        .routes(routes!(routes::put_credentials))
        .routes(routes!(routes::instance_events))
        .routes(routes!(routes::instance_users))
        .routes(routes!(routes::instance_egress))
        .routes(routes!(sinks::list_sinks))
        .routes(routes!(sinks::resume_sink))
        .routes(routes!(sinks::put_sink_secret))
        .routes(routes!(sinks::export_events))
        .routes(routes!(routes::openapi_json))
        .routes(routes!(routes::metrics))
        .routes(routes!(routes::healthz))
        .routes(routes!(routes::livez))
}

/// The OpenAPI 3.1 document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().into_openapi()
}

/// The API router over a running daemon. Call [`ensure_api_secrets`]
/// first: without stored secret hashes every operator request is refused.
pub fn router(daemon: Daemon) -> Router {
    let (router, doc) = api_router().split_for_parts();
    let openapi = serde_json::to_value(&doc).unwrap_or_default();
    let state = AppState {
        daemon,
        openapi: Arc::new(openapi),
    };
    router
        .fallback(routes::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(layers::MAX_BODY_BYTES))
        .with_state(state)
        .layer(axum::middleware::from_fn(layers::shape))
}

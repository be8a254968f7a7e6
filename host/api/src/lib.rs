//! Ward's REST API, modelled on SAP Open Connectors. SKELETON.

use axum::Router;
use ward_daemon::Daemon;

/// The API router over a running daemon.
pub fn router(daemon: Daemon) -> Router {
    let _ = daemon;
    Router::new()
}

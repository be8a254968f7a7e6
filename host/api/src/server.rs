//! Serving the API: HTTP/1.1 and HTTP/2 over a TCP listener until a stop
//! signal, then a graceful end (idle connections closed, requests in flight
//! answered). The HTTP server's own limits are set wider than the API's
//! (see [`crate::layers`]), so that a request over the API's limits gets
//! the API's JSON answer instead of the server's empty one.

use std::future::Future;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::layers::{MAX_HEADER_BYTES, MAX_HEADERS};

/// Serves `app` on `listener` until `stop` completes, then waits for the
/// connections in flight to finish their requests.
pub async fn serve(listener: TcpListener, app: Router, stop: impl Future<Output = ()> + Send) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_headers(MAX_HEADERS * 4)
        .max_buf_size(MAX_HEADER_BYTES * 8 + 64 * 1024);
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving
                    // the connections already open, try again shortly.
                    tracing::warn!(error = %e, "the API cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "API connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

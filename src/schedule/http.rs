//! `/healthz` and `/metrics` of the scheduler, for the Deployment's probes and for Prometheus.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::metrics::ScheduleMetrics;

/// The content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Errors of the HTTP endpoint.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The address cannot be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}\nhint: choose another address with --listen")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("the HTTP endpoint stopped: {0}")]
    Serve(#[source] std::io::Error),
}

/// A bound listener, so the caller learns the port before serving (`--listen 127.0.0.1:0`).
///
/// # Errors
/// [`HttpError::Bind`] when the address cannot be bound.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HttpError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })
}

/// Serves `/healthz` and `/metrics` on `listener` until `stop` fires.
///
/// # Errors
/// [`HttpError::Serve`] when the server fails.
pub async fn serve(
    listener: TcpListener,
    metrics: ScheduleMetrics,
    stop: CancellationToken,
) -> Result<(), HttpError> {
    let router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(render))
        .with_state(metrics);
    axum::serve(listener, router)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
        .map_err(HttpError::Serve)
}

async fn render(State(metrics): State<ScheduleMetrics>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], metrics.render())
}

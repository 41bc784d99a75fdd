//! `run --metrics-listen ADDR`: the live metrics served on `/metrics` for as long as the run
//! goes, for a Prometheus that scrapes the runner's pod directly instead of a Pushgateway.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::live::LiveMetrics;

/// The content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds `addr`, so a taken port is refused before any fault acts.
///
/// # Errors
/// A one-line message with a hint when the address cannot be bound.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr).await.map_err(|err| {
        format!(
            "--metrics-listen {addr}: cannot listen: {err}\nhint: choose a free address, e.g. --metrics-listen 0.0.0.0:9465"
        )
    })
}

/// Serves `/metrics` (the live metrics) and `/healthz` on `listener` until `stop`.
pub fn spawn(
    listener: TcpListener,
    live: Arc<LiveMetrics>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(render))
        .with_state(live);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
        {
            warn!("live metrics endpoint stopped: {err}");
        }
    })
}

async fn render(State(live): State<Arc<LiveMetrics>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
        live.render_at(Instant::now()),
    )
}
